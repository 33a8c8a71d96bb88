#pragma once
// The named handlers of the route table (internal to certctrl_handlers): each answers one route family.

#include "certctrl/handlers/routes.hpp"

namespace certctrl::handlers {

// acme_accounts.cpp
http::awaitable<http::response> list_acme_accounts(http::request_context& ctx, services& s);
http::awaitable<http::response> create_acme_account(http::request_context& ctx, services& s);
http::awaitable<http::response> get_acme_account(http::request_context& ctx, services& s);
http::awaitable<http::response> update_acme_account(http::request_context& ctx, services& s);
http::awaitable<http::response> delete_acme_account(http::request_context& ctx, services& s);

// api_keys.cpp
http::awaitable<http::response> list_api_keys(http::request_context& ctx, services& s);
http::awaitable<http::response> create_api_key(http::request_context& ctx, services& s);
http::awaitable<http::response> get_api_key(http::request_context& ctx, services& s);
http::awaitable<http::response> delete_api_key(http::request_context& ctx, services& s);
http::awaitable<http::response> list_audit(http::request_context& ctx, services& s);

// auth.cpp
http::awaitable<http::response> auth_general(http::request_context& ctx, services& s);
http::awaitable<http::response> auth_logout(http::request_context& ctx, services& s);
http::awaitable<http::response> auth_status(http::request_context& ctx, services& s);

// device_onboarding.cpp
http::awaitable<http::response> device_grant(http::request_context& ctx, services& s);
http::awaitable<http::response> register_with_code(http::request_context& ctx, services& s);
http::awaitable<http::response> refresh_device_tokens(http::request_context& ctx, services& s);
http::awaitable<http::response> device_approval_page(http::request_context& ctx, services& s);

// device_socket.cpp
http::awaitable<http::response> device_websocket(http::request_context& ctx, services& s);

// devices.cpp
http::awaitable<http::response> device_updates(http::request_context& ctx, services& s);
http::awaitable<http::response> get_install_config(http::request_context& ctx, services& s);
http::awaitable<http::response> get_own_certificate(http::request_context& ctx, services& s);
http::awaitable<http::response> get_deploy_materials(http::request_context& ctx, services& s);
http::awaitable<http::response> get_ca_bundle(http::request_context& ctx, services& s);
http::awaitable<http::response> device_notify(http::request_context& ctx, services& s);
http::awaitable<http::response> put_install_config(http::request_context& ctx, services& s);
http::awaitable<http::response> list_install_config_history(http::request_context& ctx, services& s);
http::awaitable<http::response> restore_install_config(http::request_context& ctx, services& s);
http::awaitable<http::response> list_device_cas(http::request_context& ctx, services& s);
http::awaitable<http::response> assign_device_ca(http::request_context& ctx, services& s);
http::awaitable<http::response> unassign_device_ca(http::request_context& ctx, services& s);
http::awaitable<http::response> get_device_bundle(http::request_context& ctx, services& s);
http::awaitable<http::response> update_device(http::request_context& ctx, services& s);
http::awaitable<http::response> patch_install_config(http::request_context& ctx, services& s);
http::awaitable<http::response> push_agent_config(http::request_context& ctx, services& s);

// domains.cpp
http::awaitable<http::response> list_domains(http::request_context& ctx, services& s);
http::awaitable<http::response> release_domain(http::request_context& ctx, services& s);
http::awaitable<http::response> verify_domain(http::request_context& ctx, services& s);
http::awaitable<http::response> admin_get_domain(http::request_context& ctx, services& s);
http::awaitable<http::response> admin_transfer_domain(http::request_context& ctx, services& s);
http::awaitable<http::response> admin_share_domain(http::request_context& ctx, services& s);
http::awaitable<http::response> admin_unshare_domain(http::request_context& ctx, services& s);

// dns_providers.cpp
http::awaitable<http::response> list_dns_providers(http::request_context& ctx, services& s);
http::awaitable<http::response> create_dns_provider(http::request_context& ctx, services& s);
http::awaitable<http::response> get_dns_provider(http::request_context& ctx, services& s);
http::awaitable<http::response> replace_dns_provider(http::request_context& ctx, services& s);
http::awaitable<http::response> delete_dns_provider(http::request_context& ctx, services& s);

// webhooks.cpp
http::awaitable<http::response> list_webhooks(http::request_context& ctx, services& s);
http::awaitable<http::response> create_webhook(http::request_context& ctx, services& s);
http::awaitable<http::response> get_webhook(http::request_context& ctx, services& s);
http::awaitable<http::response> update_webhook(http::request_context& ctx, services& s);
http::awaitable<http::response> delete_webhook(http::request_context& ctx, services& s);
http::awaitable<http::response> rotate_webhook_secret(http::request_context& ctx, services& s);
http::awaitable<http::response> ping_webhook(http::request_context& ctx, services& s);
http::awaitable<http::response> list_webhook_deliveries(http::request_context& ctx, services& s);
http::awaitable<http::response> get_webhook_delivery(http::request_context& ctx, services& s);
http::awaitable<http::response> redeliver_webhook_delivery(http::request_context& ctx, services& s);

// issuance.cpp
http::awaitable<http::response> request_issuance(http::request_context& ctx, services& s);
http::awaitable<http::response> request_renewal(http::request_context& ctx, services& s);
http::awaitable<http::response> list_issue_history(http::request_context& ctx, services& s);
http::awaitable<http::response> refuse_worker_callback(http::request_context& ctx, services& s);
http::awaitable<http::response> cancel_issuance(http::request_context& ctx, services& s);
http::awaitable<http::response> get_issue_result(http::request_context& ctx, services& s);
http::awaitable<http::response> export_certificate(http::request_context& ctx, services& s);

// resources.cpp
http::awaitable<http::response> list_cas(http::request_context& ctx, services& s);
http::awaitable<http::response> create_ca(http::request_context& ctx, services& s);
http::awaitable<http::response> get_ca(http::request_context& ctx, services& s);
http::awaitable<http::response> delete_ca(http::request_context& ctx, services& s);
http::awaitable<http::response> list_certificates(http::request_context& ctx, services& s);
http::awaitable<http::response> update_certificate(http::request_context& ctx, services& s);
http::awaitable<http::response> create_certificate(http::request_context& ctx, services& s);
http::awaitable<http::response> get_certificate(http::request_context& ctx, services& s);
http::awaitable<http::response> delete_certificate(http::request_context& ctx, services& s);
http::awaitable<http::response> list_certificate_devices(http::request_context& ctx, services& s);
http::awaitable<http::response> assign_certificate(http::request_context& ctx, services& s);
http::awaitable<http::response> list_devices(http::request_context& ctx, services& s);
http::awaitable<http::response> register_device(http::request_context& ctx, services& s);
http::awaitable<http::response> get_device(http::request_context& ctx, services& s);
http::awaitable<http::response> get_device_by_public_id(http::request_context& ctx, services& s);
http::awaitable<http::response> delete_device(http::request_context& ctx, services& s);
http::awaitable<http::response> list_device_certificates(http::request_context& ctx, services& s);
http::awaitable<http::response> get_device_certificate(http::request_context& ctx, services& s);
http::awaitable<http::response> assign_to_device(http::request_context& ctx, services& s);
http::awaitable<http::response> unassign_from_device(http::request_context& ctx, services& s);
http::awaitable<http::response> assign_by_key(http::request_context& ctx, services& s);

}  // namespace certctrl::handlers
