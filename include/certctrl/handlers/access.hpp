#pragma once

#include "certctrl/domain/principal.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/router.hpp"
#include "certctrl/worker/jobs.hpp"

#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <optional>
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
        admin,      // /apiv1/admin/...: the session of an admin user (never an API key)
    };
    who kind = who::anyone;
    std::string obtype;       // me: the scope's object type
    std::string action;       // me: the scope's action
    std::string id_param;     // me: the path id the scope's obid must match; empty: the scope needs obid "*"
    bool auth_limit = false;  // counts against the per-IP authentication budget
    bool token_in_query = false;
    bool own_budget = false;  // anyone: the handler applies its own budgets (the device flow)  // device:
                              // `?token=` stands in for the Authorization header (WebSocket)
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

/// Every guarded route with its rule, as the route table (routes.hpp) holds them: for docs/scopes.md and
/// tests.
std::vector<route_access> const& access_table();

struct services;

/// True when a cookie-authenticated write may proceed: its Origin is trusted, or (without Origin) the browser
/// says Sec-Fetch-Site: same-origin. The guard applies it to every /apiv1 write; handlers of anyone-routes
/// that act with a session (device_verify) call it themselves.
bool cookie_write_allowed(http::request_context const& ctx, services const& s);

/// How much request body the server reads for `header` (headers only, before the body): the full
/// server.body_limit_bytes when it carries valid credentials (API key, session, device token), else
/// server.unauthenticated_body_limit_bytes, so no one reads a megabyte into the server without credentials.
http::awaitable<std::size_t> body_limit_for(http::request const& header, services& s);

/// Answers 403 with `what` and audits the denial (permission.denied), for checks a handler makes itself.
http::awaitable<http::response> deny(http::request_context& ctx, services& s,
                                     std::optional<std::int64_t> user_id, std::string what);

/// The scope an API key lacks to seal certificate `cert_id`'s key to a device: `certificates:<id>[assign]` or
/// `[write]` (read never releases a key), and with `device_id`, `devices:<id>[write]`. Nothing for sessions.
std::optional<std::string> missing_assign_scope(domain::principal const& p, std::int64_t cert_id,
                                                std::optional<std::int64_t> device_id);

/// Runs `target` for `ctx` if `rule` lets the request's credentials through (authenticating them, spending
/// the budgets, auditing denials); else answers 401/403/429.
/// `key_rule`: on /apiv1/users/:user_id/... the rule an API key of that user is held to (its /apiv1/me
/// twin's), or null when keys cannot call the route.
http::awaitable<http::response> guarded(services& s, access const& rule, access const* key_rule,
                                        http::awaitable<http::response> (*target)(http::request_context&,
                                                                                  services&),
                                        http::request_context& ctx);

/// The Content-Security-Policy GET /device answers (its inline script allowed by hash).
std::string device_page_csp();

/// GET /.well-known/acme-challenge/{token} on the HTTP-01 listener: the key authorization any instance's
/// worker stored for the token (text/plain), else 404.
void add_acme_challenge_route(http::router& r, worker::issue_jobs& jobs);

/// "scheme://host[:port]" of a URL.
std::string origin_of(std::string const& url);

}  // namespace certctrl::handlers
