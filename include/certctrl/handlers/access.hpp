#pragma once

#include "certctrl/config/config.hpp"
#include "certctrl/http/router.hpp"
#include "certctrl/service/acme_accounts.hpp"
#include "certctrl/service/devices.hpp"
#include "certctrl/service/dns_providers.hpp"
#include "certctrl/service/identity.hpp"
#include "certctrl/service/issuance.hpp"
#include "certctrl/service/resources.hpp"
#include "certctrl/worker/jobs.hpp"

#include <boost/beast/http/verb.hpp>

#include <string>
#include <vector>

namespace certctrl::handlers {

/// Who may call a route, enforced by the guard for every route in one place.
struct access {
    enum class who {
        anyone,     // no credentials needed
        user_path,  // /apiv1/users/:user_id/...: a session whose user is :user_id, or an admin's session
        me,         // /apiv1/me/...: a session, or an API key holding `obtype:obid[action]`
        device,     // /apiv1/devices/self/...: a device access token (HS256 JWT) of an ACTIVE device
    };
    who kind = who::anyone;
    std::string obtype;       // me: the scope's object type
    std::string action;       // me: the scope's action
    std::string id_param;     // me: the path id the scope's obid must match; empty: the scope needs obid "*"
    bool auth_limit = false;  // counts against the per-IP authentication budget
    /// me: the id comes from the request body or the key itself, so the guard only asks for some
    /// `obtype` permission (any id; any action when `action` is "*") and the handler checks the id.
    bool id_in_body = false;
    /// me: another scope that also admits an API key (`alt_obtype:*[alt_action]`); user_path: a scope with
    /// which an API key of the path's user may call the route too (e.g. ForDeviceAuthenticate registration).
    std::string alt_obtype = "";
    std::string alt_action = "";
};

/// One row of the access table.
struct route_access {
    boost::beast::http::verb method;
    std::string pattern;
    access rule;
};

/// Every guarded route with its rule: the single source for enforcement and for docs/scopes.md.
std::vector<route_access> const& access_table();

/// The services the guard and the identity handlers use.
struct identity_context {
    service::auth_service& auth;
    service::api_key_service& keys;
    service::rate_limiter& limits;
    service::audit_service& audit;
    std::vector<std::string> trusted_origins;         // the server's own origin and auth.dashboard_origins
    service::device_auth_service* devices = nullptr;  // device tokens (the device routes need it)
};

/// True when a cookie-authenticated write may proceed: its Origin is trusted, or (without Origin) the browser
/// says Sec-Fetch-Site: same-origin. The guard applies it to every /apiv1 write; handlers of anyone-routes
/// that act with a session (device_verify) call it themselves.
bool cookie_write_allowed(http::request_context const& ctx, identity_context const& ids);

/// Registers `h` on the router behind the guard, with the rule the access table gives the route.
/// Throws std::logic_error for a route missing from the table (so no route goes unguarded by accident).
void add_guarded(http::router& r, identity_context& ids, boost::beast::http::verb method,
                 std::string const& pattern, http::router::handler h);

/// Auth routes: POST /auth/general and /auth (login, register, activate-user), POST /auth/logout,
/// GET /auth/status.
void add_auth_routes(http::router& r, identity_context& ids, config::config const& cfg);

/// API keys and the audit log, under /apiv1/users/:user_id and /apiv1/me.
void add_api_key_routes(http::router& r, identity_context& ids);

/// ACME accounts, under /apiv1/users/:user_id and /apiv1/me.
void add_acme_account_routes(http::router& r, identity_context& ids, service::acme_account_service& accounts);

/// DNS providers, under /apiv1/users/:user_id and /apiv1/me; secrets are only ever shown masked.
void add_dns_provider_routes(http::router& r, identity_context& ids,
                             service::dns_provider_service& providers);

/// Self-managed CAs, under /apiv1/users/:user_id and /apiv1/me.
void add_ca_routes(http::router& r, identity_context& ids, service::ca_service& cas);

/// Certificates, devices and assignments, under /apiv1/users/:user_id and /apiv1/me, plus
/// POST /apiv1/me/certificate-assign.
void add_certificate_routes(http::router& r, identity_context& ids, service::certificate_service& certs);

/// The device grant (POST /auth/device), POST /apiv1/device/registration, POST /auth/refresh, and GET /device
/// (the default verification_uri: a page where a user signs in and approves a user_code).
void add_device_auth_routes(http::router& r, identity_context& ids);

/// The Content-Security-Policy GET /device answers (its inline script allowed by hash).
std::string device_page_csp();

/// The agent's /apiv1/devices/self/... routes and the user-side install configs, device CAs, device
/// bundles, device status, and POST /apiv1/me/install-config-update/{device_public_id}.
void add_device_routes(http::router& r, identity_context& ids, service::device_service& svc,
                       service::install_config_service& configs, config::devices_config const& cfg);

/// Issuance and export: .../certificates/:id/issues (+ /issues/history, /issues/:id/cancel), /issue-result,
/// /renew, /export, under /apiv1/users/:user_id and /apiv1/me.
void add_issuance_routes(http::router& r, identity_context& ids, service::issuance_service& svc);

/// GET /.well-known/acme-challenge/{token} on the HTTP-01 listener: the key authorization any instance's
/// worker stored for the token (text/plain), else 404.
void add_acme_challenge_route(http::router& r, worker::issue_jobs& jobs);

/// "scheme://host[:port]" of a URL.
std::string origin_of(std::string const& url);

}  // namespace certctrl::handlers
