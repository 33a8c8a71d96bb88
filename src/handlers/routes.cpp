// The route table: every API route with its access rule and named handler.
#include "certctrl/handlers/routes.hpp"

#include "handlers.hpp"

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

using who = access::who;

access rule_of(who kind) {
    access a;
    a.kind = kind;
    return a;
}
access anyone() {
    return rule_of(who::anyone);
}
// Spends the caller's per-IP authentication budget (login, registration, refresh).
access anyone_counted() {
    access a = rule_of(who::anyone);
    a.auth_limit = true;
    return a;
}
// The device flow: no credentials, and budgets of its own that the handler applies (per address, device
// code or user; see rate_limits.device_flow_per_minute).
access device_flow() {
    access a = rule_of(who::anyone);
    a.own_budget = true;
    return a;
}
access user_path() {
    return rule_of(who::user_path);
}
// A session of :user_id, or an API key of that user holding `obtype:*[action]`.
access user_path_or_key(std::string obtype, std::string action) {
    access a = rule_of(who::user_path);
    a.alt_obtype = std::move(obtype);
    a.alt_action = std::move(action);
    return a;
}
// A session, or an API key holding `obtype:<id_param>[action]` (or the alternative scope).
access me(std::string obtype, std::string action, std::string id_param = "", std::string alt_obtype = "",
          std::string alt_action = "") {
    access a = rule_of(who::me);
    a.obtype = std::move(obtype);
    a.action = std::move(action);
    a.id_param = std::move(id_param);
    a.alt_obtype = std::move(alt_obtype);
    a.alt_action = std::move(alt_action);
    return a;
}
// A session, or an API key holding some `obtype` permission: the handler checks the id it names.
access me_id_in_body(std::string obtype) {
    access a = rule_of(who::me);
    a.obtype = std::move(obtype);
    a.action = "*";
    a.id_in_body = true;
    return a;
}
access device() {
    return rule_of(who::device);
}
// A device access token in the Authorization header or, for WebSockets, in ?token=.
access device_socket() {
    access a = rule_of(who::device);
    a.token_in_query = true;
    return a;
}
access admin() {
    return rule_of(who::admin);
}

}  // namespace

std::vector<route> const& route_table() {
    static std::vector<route> const table = {
        {bh::verb::post, "/auth/general", anyone_counted(), auth_general},
        {bh::verb::post, "/auth", anyone_counted(), auth_general},
        {bh::verb::post, "/auth/logout", anyone(), auth_logout},
        {bh::verb::get, "/auth/status", anyone(), auth_status},
        {bh::verb::get, "/apiv1/users/:user_id/apikeys", user_path(), list_api_keys},
        {bh::verb::post, "/apiv1/users/:user_id/apikeys", user_path(), create_api_key},
        {bh::verb::get, "/apiv1/users/:user_id/apikeys/:apikey_id", user_path(), get_api_key},
        {bh::verb::delete_, "/apiv1/users/:user_id/apikeys/:apikey_id", user_path(), delete_api_key},
        {bh::verb::get, "/apiv1/users/:user_id/audit", user_path(), list_audit},
        {bh::verb::get, "/apiv1/me/apikeys", me("apikeys", "read"), list_api_keys},
        {bh::verb::post, "/apiv1/me/apikeys", me("apikeys", "write"), create_api_key},
        {bh::verb::get, "/apiv1/me/apikeys/:apikey_id", me("apikeys", "read", "apikey_id"), get_api_key},
        {bh::verb::delete_, "/apiv1/me/apikeys/:apikey_id", me("apikeys", "write", "apikey_id"),
         delete_api_key},
        {bh::verb::get, "/apiv1/me/audit", me("audit", "read"), list_audit},
        {bh::verb::get, "/apiv1/users/:user_id/acme-accounts", user_path(), list_acme_accounts},
        {bh::verb::post, "/apiv1/users/:user_id/acme-accounts", user_path(), create_acme_account},
        {bh::verb::get, "/apiv1/users/:user_id/acme-accounts/:acct_id", user_path(), get_acme_account},
        {bh::verb::put, "/apiv1/users/:user_id/acme-accounts/:acct_id", user_path(), update_acme_account},
        {bh::verb::delete_, "/apiv1/users/:user_id/acme-accounts/:acct_id", user_path(), delete_acme_account},
        {bh::verb::get, "/apiv1/me/acme-accounts", me("acme_accounts", "read"), list_acme_accounts},
        {bh::verb::post, "/apiv1/me/acme-accounts", me("acme_accounts", "write"), create_acme_account},
        {bh::verb::get, "/apiv1/me/acme-accounts/:acme_account_id",
         me("acme_accounts", "read", "acme_account_id"), get_acme_account},
        {bh::verb::put, "/apiv1/me/acme-accounts/:acme_account_id",
         me("acme_accounts", "write", "acme_account_id"), update_acme_account},
        {bh::verb::delete_, "/apiv1/me/acme-accounts/:acme_account_id",
         me("acme_accounts", "write", "acme_account_id"), delete_acme_account},
        {bh::verb::get, "/apiv1/users/:user_id/dns-providers", user_path(), list_dns_providers},
        {bh::verb::post, "/apiv1/users/:user_id/dns-providers", user_path(), create_dns_provider},
        {bh::verb::get, "/apiv1/users/:user_id/dns-providers/:dns_provider_id", user_path(),
         get_dns_provider},
        {bh::verb::put, "/apiv1/users/:user_id/dns-providers/:dns_provider_id", user_path(),
         replace_dns_provider},
        {bh::verb::delete_, "/apiv1/users/:user_id/dns-providers/:dns_provider_id", user_path(),
         delete_dns_provider},
        {bh::verb::get, "/apiv1/users/:user_id/webhooks", user_path(), list_webhooks},
        {bh::verb::post, "/apiv1/users/:user_id/webhooks", user_path(), create_webhook},
        {bh::verb::get, "/apiv1/users/:user_id/webhooks/:webhook_id", user_path(), get_webhook},
        {bh::verb::patch, "/apiv1/users/:user_id/webhooks/:webhook_id", user_path(), update_webhook},
        {bh::verb::put, "/apiv1/users/:user_id/webhooks/:webhook_id", user_path(), update_webhook},
        {bh::verb::delete_, "/apiv1/users/:user_id/webhooks/:webhook_id", user_path(), delete_webhook},
        {bh::verb::post, "/apiv1/users/:user_id/webhooks/:webhook_id/rotate-secret", user_path(),
         rotate_webhook_secret},
        {bh::verb::post, "/apiv1/users/:user_id/webhooks/:webhook_id/ping", user_path(), ping_webhook},
        {bh::verb::get, "/apiv1/users/:user_id/webhooks/:webhook_id/deliveries", user_path(),
         list_webhook_deliveries},
        {bh::verb::get, "/apiv1/users/:user_id/webhooks/:webhook_id/deliveries/:delivery_id", user_path(),
         get_webhook_delivery},
        {bh::verb::post, "/apiv1/users/:user_id/webhooks/:webhook_id/deliveries/:delivery_id/redeliver",
         user_path(), redeliver_webhook_delivery},
        {bh::verb::get, "/apiv1/me/webhooks", me("webhooks", "read"), list_webhooks},
        {bh::verb::post, "/apiv1/me/webhooks", me("webhooks", "write"), create_webhook},
        {bh::verb::get, "/apiv1/me/webhooks/:webhook_id", me("webhooks", "read", "webhook_id"), get_webhook},
        {bh::verb::patch, "/apiv1/me/webhooks/:webhook_id", me("webhooks", "write", "webhook_id"),
         update_webhook},
        {bh::verb::put, "/apiv1/me/webhooks/:webhook_id", me("webhooks", "write", "webhook_id"),
         update_webhook},
        {bh::verb::delete_, "/apiv1/me/webhooks/:webhook_id", me("webhooks", "write", "webhook_id"),
         delete_webhook},
        {bh::verb::post, "/apiv1/me/webhooks/:webhook_id/rotate-secret",
         me("webhooks", "write", "webhook_id"), rotate_webhook_secret},
        {bh::verb::post, "/apiv1/me/webhooks/:webhook_id/ping", me("webhooks", "write", "webhook_id"),
         ping_webhook},
        {bh::verb::get, "/apiv1/me/webhooks/:webhook_id/deliveries", me("webhooks", "read", "webhook_id"),
         list_webhook_deliveries},
        {bh::verb::get, "/apiv1/me/webhooks/:webhook_id/deliveries/:delivery_id",
         me("webhooks", "read", "webhook_id"), get_webhook_delivery},
        {bh::verb::post, "/apiv1/me/webhooks/:webhook_id/deliveries/:delivery_id/redeliver",
         me("webhooks", "write", "webhook_id"), redeliver_webhook_delivery},
        {bh::verb::get, "/apiv1/me/dns-providers", me("dns_providers", "read"), list_dns_providers},
        {bh::verb::post, "/apiv1/me/dns-providers", me("dns_providers", "write"), create_dns_provider},
        {bh::verb::get, "/apiv1/me/dns-providers/:dns_provider_id",
         me("dns_providers", "read", "dns_provider_id"), get_dns_provider},
        {bh::verb::put, "/apiv1/me/dns-providers/:dns_provider_id",
         me("dns_providers", "write", "dns_provider_id"), replace_dns_provider},
        {bh::verb::delete_, "/apiv1/me/dns-providers/:dns_provider_id",
         me("dns_providers", "write", "dns_provider_id"), delete_dns_provider},
        {bh::verb::get, "/apiv1/users/:user_id/cas", user_path(), list_cas},
        {bh::verb::get, "/apiv1/me/cas", me("cas", "read"), list_cas},
        {bh::verb::post, "/apiv1/users/:user_id/cas", user_path(), create_ca},
        {bh::verb::post, "/apiv1/me/cas", me("cas", "write"), create_ca},
        {bh::verb::get, "/apiv1/users/:user_id/cas/:ca_id", user_path(), get_ca},
        {bh::verb::get, "/apiv1/me/cas/:ca_id", me("cas", "read", "ca_id"), get_ca},
        {bh::verb::delete_, "/apiv1/users/:user_id/cas/:ca_id", user_path(), delete_ca},
        {bh::verb::delete_, "/apiv1/me/cas/:ca_id", me("cas", "write", "ca_id"), delete_ca},
        {bh::verb::get, "/apiv1/users/:user_id/certificates", user_path(), list_certificates},
        {bh::verb::get, "/apiv1/me/certificates", me("certificates", "read"), list_certificates},
        {bh::verb::post, "/apiv1/users/:user_id/certificates", user_path(), create_certificate},
        {bh::verb::post, "/apiv1/me/certificates", me("certificates", "write"), create_certificate},
        {bh::verb::get, "/apiv1/users/:user_id/certificates/:cert_id", user_path(), get_certificate},
        {bh::verb::get, "/apiv1/me/certificates/:certificate_id",
         me("certificates", "read", "certificate_id"), get_certificate},
        {bh::verb::patch, "/apiv1/users/:user_id/certificates/:cert_id", user_path(), update_certificate},
        {bh::verb::put, "/apiv1/users/:user_id/certificates/:cert_id", user_path(), update_certificate},
        {bh::verb::patch, "/apiv1/me/certificates/:certificate_id",
         me("certificates", "write", "certificate_id"), update_certificate},
        {bh::verb::put, "/apiv1/me/certificates/:certificate_id",
         me("certificates", "write", "certificate_id"), update_certificate},
        {bh::verb::delete_, "/apiv1/users/:user_id/certificates/:cert_id", user_path(), delete_certificate},
        {bh::verb::delete_, "/apiv1/me/certificates/:certificate_id",
         me("certificates", "write", "certificate_id"), delete_certificate},
        {bh::verb::get, "/apiv1/users/:user_id/acme-accounts/:acct_id/certificates", user_path(),
         list_certificates},
        {bh::verb::get, "/apiv1/me/acme-accounts/:acme_account_id/certificates", me("certificates", "read"),
         list_certificates},
        {bh::verb::get, "/apiv1/users/:user_id/certificates/:cert_id/devices", user_path(),
         list_certificate_devices},
        {bh::verb::get, "/apiv1/me/certificates/:certificate_id/devices",
         me("certificates", "read", "certificate_id"), list_certificate_devices},
        {bh::verb::post, "/apiv1/users/:user_id/certificates/:cert_id/assign", user_path(),
         assign_certificate},
        {bh::verb::post, "/apiv1/me/certificates/:certificate_id/assign",
         me("certificates", "assign", "certificate_id", "certificates", "write"), assign_certificate},
        {bh::verb::get, "/apiv1/users/:user_id/devices", user_path(), list_devices},
        {bh::verb::get, "/apiv1/me/devices", me("devices", "read"), list_devices},
        {bh::verb::post, "/apiv1/users/:user_id/devices",
         user_path_or_key("ForDeviceAuthenticate", "authenticate"), register_device},
        {bh::verb::post, "/apiv1/me/devices",
         me("devices", "write", "", "ForDeviceAuthenticate", "authenticate"), register_device},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id", user_path(), get_device},
        {bh::verb::get, "/apiv1/me/devices/:device_id", me("devices", "read", "device_id"), get_device},
        {bh::verb::delete_, "/apiv1/users/:user_id/devices/:device_id", user_path(), delete_device},
        {bh::verb::delete_, "/apiv1/me/devices/:device_id", me("devices", "write", "device_id"),
         delete_device},
        {bh::verb::get, "/apiv1/users/:user_id/devices/by-public-id/{device_public_id}", user_path(),
         get_device_by_public_id},
        {bh::verb::get, "/apiv1/me/devices/by-public-id/{device_public_id}", me("devices", "read"),
         get_device_by_public_id},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id/certificates", user_path(),
         list_device_certificates},
        {bh::verb::get, "/apiv1/me/devices/:device_id/certificates", me("devices", "read", "device_id"),
         list_device_certificates},
        {bh::verb::post, "/apiv1/users/:user_id/devices/:device_id/certificates", user_path(),
         assign_to_device},
        {bh::verb::post, "/apiv1/me/devices/:device_id/certificates", me("devices", "write", "device_id"),
         assign_to_device},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id/certificates/:cert_id", user_path(),
         get_device_certificate},
        {bh::verb::get, "/apiv1/me/devices/:device_id/certificates/:certificate_id",
         me("devices", "read", "device_id"), get_device_certificate},
        {bh::verb::delete_, "/apiv1/users/:user_id/devices/:device_id/certificates/:cert_id", user_path(),
         unassign_from_device},
        {bh::verb::delete_, "/apiv1/me/devices/:device_id/certificates/:certificate_id",
         me("devices", "write", "device_id"), unassign_from_device},
        {bh::verb::post, "/apiv1/me/certificate-assign", me_id_in_body("certificates"), assign_by_key},
        {bh::verb::get, "/apiv1/users/:user_id/domains", user_path(), list_domains},
        {bh::verb::get, "/apiv1/me/domains", me("domains", "read"), list_domains},
        {bh::verb::delete_, "/apiv1/users/:user_id/domains/{name}", user_path(), release_domain},
        {bh::verb::delete_, "/apiv1/me/domains/{name}", me("domains", "write"), release_domain},
        {bh::verb::post, "/apiv1/users/:user_id/domains/{name}/verify", user_path(), verify_domain},
        {bh::verb::post, "/apiv1/me/domains/{name}/verify", me("domains", "write"), verify_domain},
        {bh::verb::get, "/apiv1/admin/domains/{name}", admin(), admin_get_domain},
        {bh::verb::post, "/apiv1/admin/domains/{name}/transfer", admin(), admin_transfer_domain},
        {bh::verb::post, "/apiv1/admin/domains/{name}/shares", admin(), admin_share_domain},
        {bh::verb::delete_, "/apiv1/admin/domains/{name}/shares/:user_id", admin(), admin_unshare_domain},
        {bh::verb::post, "/apiv1/users/:user_id/certificates/:cert_id/issues", user_path(), request_issuance},
        {bh::verb::post, "/apiv1/me/certificates/:certificate_id/issues",
         me("certificates", "issue", "certificate_id"), request_issuance},
        {bh::verb::get, "/apiv1/users/:user_id/certificates/:cert_id/issues", user_path(),
         list_issue_history},
        {bh::verb::get, "/apiv1/me/certificates/:certificate_id/issues",
         me("certificates", "read", "certificate_id"), list_issue_history},
        {bh::verb::get, "/apiv1/users/:user_id/certificates/:cert_id/issues/history", user_path(),
         list_issue_history},
        {bh::verb::get, "/apiv1/me/certificates/:certificate_id/issues/history",
         me("certificates", "read", "certificate_id"), list_issue_history},
        {bh::verb::post, "/apiv1/users/:user_id/certificates/:cert_id/issues/history", user_path(),
         refuse_worker_callback},
        {bh::verb::post, "/apiv1/me/certificates/:certificate_id/issues/history",
         me("certificates", "issue", "certificate_id"), refuse_worker_callback},
        {bh::verb::post, "/apiv1/users/:user_id/certificates/:cert_id/issues/:issue_history_id/cancel",
         user_path(), cancel_issuance},
        {bh::verb::post, "/apiv1/me/certificates/:certificate_id/issues/:issue_history_id/cancel",
         me("certificates", "issue", "certificate_id"), cancel_issuance},
        {bh::verb::get, "/apiv1/users/:user_id/certificates/:cert_id/issue-result", user_path(),
         get_issue_result},
        {bh::verb::get, "/apiv1/me/certificates/:certificate_id/issue-result",
         me("certificates", "read", "certificate_id"), get_issue_result},
        {bh::verb::post, "/apiv1/users/:user_id/certificates/:cert_id/renew", user_path(), request_renewal},
        {bh::verb::post, "/apiv1/me/certificates/:certificate_id/renew",
         me("certificates", "issue", "certificate_id"), request_renewal},
        {bh::verb::get, "/apiv1/users/:user_id/certificates/:cert_id/export", user_path(),
         export_certificate},
        {bh::verb::get, "/apiv1/me/certificates/:certificate_id/export",
         me("certificates", "read", "certificate_id", "certificates", "export"), export_certificate},
        {bh::verb::put, "/apiv1/users/:user_id/devices/:device_id", user_path(), update_device},
        {bh::verb::put, "/apiv1/me/devices/:device_id", me("devices", "write", "device_id"), update_device},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id/install-config", user_path(),
         get_install_config},
        {bh::verb::get, "/apiv1/me/devices/:device_id/install-config", me("devices", "read", "device_id"),
         get_install_config},
        {bh::verb::put, "/apiv1/users/:user_id/devices/:device_id/install-config", user_path(),
         put_install_config},
        {bh::verb::put, "/apiv1/me/devices/:device_id/install-config", me("devices", "write", "device_id"),
         put_install_config},
        {bh::verb::put, "/apiv1/users/:user_id/devices/:device_id/agent-config", user_path(),
         push_agent_config},
        {bh::verb::put, "/apiv1/me/devices/:device_id/agent-config", me("devices", "exec", "device_id"),
         push_agent_config},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id/install-config-histories", user_path(),
         list_install_config_history},
        {bh::verb::get, "/apiv1/me/devices/:device_id/install-config-histories",
         me("devices", "read", "device_id"), list_install_config_history},
        {bh::verb::post, "/apiv1/users/:user_id/devices/:device_id/install-config/restore", user_path(),
         restore_install_config},
        {bh::verb::post, "/apiv1/me/devices/:device_id/install-config/restore",
         me("devices", "write", "device_id"), restore_install_config},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id/cas", user_path(), list_device_cas},
        {bh::verb::get, "/apiv1/me/devices/:device_id/cas", me("devices", "read", "device_id"),
         list_device_cas},
        {bh::verb::post, "/apiv1/users/:user_id/devices/:device_id/cas", user_path(), assign_device_ca},
        {bh::verb::post, "/apiv1/me/devices/:device_id/cas", me("devices", "write", "device_id"),
         assign_device_ca},
        {bh::verb::delete_, "/apiv1/users/:user_id/devices/:device_id/cas/:ca_id", user_path(),
         unassign_device_ca},
        {bh::verb::delete_, "/apiv1/me/devices/:device_id/cas/:ca_id", me("devices", "write", "device_id"),
         unassign_device_ca},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id/cas/:ca_id/bundle", user_path(),
         get_ca_bundle},
        {bh::verb::get, "/apiv1/me/devices/:device_id/cas/:ca_id/bundle", me("devices", "read", "device_id"),
         get_ca_bundle},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id/certificates/:cert_id/bundle", user_path(),
         get_device_bundle},
        {bh::verb::get, "/apiv1/me/devices/:device_id/certificates/:certificate_id/bundle",
         me("devices", "read", "device_id"), get_device_bundle},
        {bh::verb::post, "/apiv1/me/install-config-update/{device_public_id}",
         me("ForInstallConfigUpdate", "update", "", "devices", "write"), patch_install_config},
        {bh::verb::post, "/auth/device", device_flow(), device_grant},
        {bh::verb::get, "/device", anyone(), device_approval_page},
        {bh::verb::post, "/auth/refresh", device_flow(), refresh_device_tokens},
        {bh::verb::post, "/apiv1/device/registration", device_flow(), register_with_code},
        {bh::verb::get, "/apiv1/devices/self/updates", device(), device_updates},
        {bh::verb::get, "/api/websocket", device_socket(), device_websocket},
        {bh::verb::get, "/api/websocket/:device_id", device_socket(), device_websocket},
        {bh::verb::get, "/api/tunnel", device_socket(), device_websocket},
        {bh::verb::get, "/api/tunnel/:device_id", device_socket(), device_websocket},
        {bh::verb::get, "/apiv1/devices/self/install-config", device(), get_install_config},
        {bh::verb::get, "/apiv1/devices/self/certificates/:cert_id", device(), get_own_certificate},
        {bh::verb::get, "/apiv1/devices/self/certificates/:cert_id/deploy-materials", device(),
         get_deploy_materials},
        {bh::verb::get, "/apiv1/devices/self/cas/:ca_id/bundle", device(), get_ca_bundle},
        {bh::verb::post, "/apiv1/devices/self/notify", device(), device_notify},
    };
    return table;
}

}  // namespace certctrl::handlers
