#include "certctrl/handlers/access.hpp"
#include "certctrl/handlers/routes.hpp"

#include "common.hpp"

#include "certctrl/http/client.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include <algorithm>
#include <stdexcept>

namespace certctrl::handlers {

namespace bh = boost::beast::http;
using who = access::who;

std::vector<route_access> const& access_table() {
    static std::vector<route_access> const table = [] {
        std::vector<route_access> out;
        for (auto const& r : route_table()) {
            out.push_back({r.method, r.pattern, r.rule});
        }
        return out;
    }();
    return table;
}

std::string origin_of(std::string const& url) {
    auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) {
        return url;
    }
    auto path = url.find('/', scheme_end + 3);
    std::string origin = path == std::string::npos ? url : url.substr(0, path);
    // Compared normalised: scheme and host are case-insensitive, and a default port is the same origin as
    // none (RFC 6454 §4).
    std::transform(origin.begin(), origin.end(), origin.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    auto const strip = [&origin](std::string_view scheme, std::string_view port) {
        if (origin.rfind(scheme, 0) == 0 && origin.size() > port.size() &&
            origin.compare(origin.size() - port.size(), port.size(), port) == 0 &&
            origin.find(']') == std::string::npos) {
            origin.resize(origin.size() - port.size());
        }
    };
    strip("https://", ":443");
    strip("http://", ":80");
    return origin;
}

namespace {

bool state_changing(bh::verb v) {
    return v != bh::verb::get && v != bh::verb::head && v != bh::verb::options;
}

// A cookie-authenticated write must not come from another site's page: the browser's Sec-Fetch-Site must
// say same-origin (a header pages cannot set: the dashboard this server serves, whatever address it was
// reached at), or the Origin must be trusted (server.public_url, auth.dashboard_origins). A request with
// neither header comes from a non-browser client (curl -b cookies.txt, as seed S0 shows): browsers send
// Origin on every cross-origin write (and on same-origin POST, PUT, PATCH, DELETE), and the session cookie is
// SameSite=Lax besides.
bool origin_allowed(http::request_context const& ctx, std::vector<std::string> const& trusted) {
    auto site = ctx.req.find("Sec-Fetch-Site");
    bool const same_origin = site != ctx.req.end() && site->value() == "same-origin";
    auto origin = ctx.req.find(bh::field::origin);
    if (origin != ctx.req.end()) {
        std::string const o = origin_of(std::string(origin->value()));
        return same_origin || std::find(trusted.begin(), trusted.end(), o) != trusted.end();
    }
    if (site != ctx.req.end()) {
        return same_origin;
    }
    // No Origin and no Sec-Fetch-Site: a non-browser client, unless a Referer names another site.
    auto referer = ctx.req.find(bh::field::referer);
    if (referer != ctx.req.end() && !referer->value().empty()) {
        std::string const o = origin_of(std::string(referer->value()));
        return std::find(trusted.begin(), trusted.end(), o) != trusted.end();
    }
    return true;
}

// The principal of the request's credentials: Bearer API key first, else the session cookie.
http::awaitable<result<std::optional<domain::principal>>> authenticate(http::request const& req,
                                                                       services& s) {
    auto auth = req.find(bh::field::authorization);
    if (auth != req.end()) {
        std::string_view v = auth->value();
        if (v.size() < 7 || !(v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) {
            co_return make_error(errc::unauthenticated, "Authorization must be 'Bearer <api key>'");
        }
        std::string token(v.substr(7));
        if (token.rfind("ak_", 0) != 0) {
            co_return make_error(errc::unauthenticated, "Unsupported bearer token (API keys start with ak_)");
        }
        auto aw_1 = s.keys.authenticate(token);
        auto p = co_await std::move(aw_1);
        if (!p) {
            co_return p.error();
        }
        co_return std::optional<domain::principal>(std::move(*p));
    }
    auto cookie = http::cookie_value(req[bh::field::cookie], s.auth.settings().cookie_name);
    if (!cookie) {
        co_return std::optional<domain::principal>{};
    }
    auto aw_2 = s.auth.from_session(*cookie);
    co_return co_await std::move(aw_2);
}

// The principal of a device route: `Authorization: Bearer <device access token>` (agent contract 2.4).
http::awaitable<result<domain::principal>> authenticate_device(http::request_context const& ctx, services& s,
                                                               bool token_in_query) {
    auto auth = ctx.req.find(bh::field::authorization);
    if (auth == ctx.req.end() && token_in_query) {
        // Browsers' WebSocket API cannot set headers; the agent contract (6.3) allows ?token= there.
        if (auto t = http::query_value(ctx.query, "token"); t && !t->empty()) {
            auto aw_q = s.device_auth.authenticate(*t);
            co_return co_await std::move(aw_q);
        }
    }
    if (auth == ctx.req.end()) {
        co_return make_error(errc::unauthenticated,
                             "Device routes need 'Authorization: Bearer <device access token>'");
    }
    std::string_view v = auth->value();
    if (v.size() < 8 || !(v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) {
        co_return make_error(errc::unauthenticated, "Authorization must be 'Bearer <device access token>'");
    }
    auto aw = s.device_auth.authenticate(std::string(v.substr(7)));
    co_return co_await std::move(aw);
}

}  // namespace

http::awaitable<http::response> deny(http::request_context& ctx, services& s,
                                     std::optional<std::int64_t> user_id, std::string what) {
    boost::json::object detail;
    detail["method"] = std::string(ctx.req.method_string());
    detail["route"] = ctx.route;
    detail["reason"] = what;
    auto aw_3 =
        s.audit.record(user_id, "permission.denied", "denied", detail::client_of(ctx), std::move(detail));
    co_await std::move(aw_3);
    co_return http::json_error(ctx.req, make_error(errc::forbidden, std::move(what)));
}

std::optional<std::string> missing_assign_scope(domain::principal const& p, std::int64_t cert_id,
                                                std::optional<std::int64_t> device_id) {
    if (!p.is_api_key()) {
        return std::nullopt;  // a session may do what its user may
    }
    if (!domain::allows(p.permissions, "certificates", cert_id, "assign") &&
        !domain::allows(p.permissions, "certificates", cert_id, "write")) {
        return "certificates:" + std::to_string(cert_id) + "[assign] (or [write])";
    }
    if (device_id && !domain::allows(p.permissions, "devices", *device_id, "write")) {
        return "devices:" + std::to_string(*device_id) + "[write]";
    }
    return std::nullopt;
}

http::awaitable<http::response> guarded(services& s, access const& rule, access const* key_rule,
                                        http::awaitable<http::response> (*target)(http::request_context&,
                                                                                  services&),
                                        http::request_context& ctx) {
    if (rule.auth_limit) {
        auto ok = s.limits.check(service::rate_limiter::limit::auth,
                                 "ip:" + service::client_budget_key(ctx.client_ip));
        if (!ok) {
            co_return http::error_response(ctx, ok.error());
        }
    }
    if (rule.kind == who::anyone) {
        if (!rule.auth_limit && !rule.own_budget) {
            // Routes without credentials that still reach the database (device_poll, /auth/status, logout,
            // refresh...) have a per-address budget of their own.
            auto ok = s.limits.check(service::rate_limiter::limit::anonymous,
                                     "ip:" + service::client_budget_key(ctx.client_ip));
            if (!ok) {
                co_return http::error_response(ctx, ok.error());
            }
        }
        auto aw_5 = target(ctx, s);
        co_return co_await std::move(aw_5);
    }
    if (rule.kind == who::device) {
        auto aw_dev = authenticate_device(ctx, s, rule.token_in_query);
        auto dev = co_await std::move(aw_dev);
        if (!dev) {
            if (dev.error().code == errc::unauthenticated) {
                auto budget = s.limits.check(service::rate_limiter::limit::auth,
                                             "ip:" + service::client_budget_key(ctx.client_ip));
                if (!budget) {
                    co_return http::error_response(ctx, budget.error());
                }
            }
            co_return http::error_response(ctx, dev.error());
        }
        // Each device has its own budget, so a user's fleet of agents does not share one.
        auto within =
            s.limits.check(service::rate_limiter::limit::api, "device:" + std::to_string(dev->device_id));
        if (!within) {
            co_return http::error_response(ctx, within.error());
        }
        ctx.principal = std::move(*dev);
        auto aw_dh = target(ctx, s);
        co_return co_await std::move(aw_dh);
    }
    auto aw_6 = authenticate(ctx.req, s);
    auto found = co_await std::move(aw_6);
    if (!found || !*found) {
        app_error err =
            !found ? found.error()
                   : make_error(errc::unauthenticated,
                                "Authentication required: a session cookie or 'Authorization: Bearer "
                                "ak_...'");
        if (err.code == errc::unauthenticated) {
            // Failed authentications spend the client's authentication budget, so guessing is throttled.
            auto budget = s.limits.check(service::rate_limiter::limit::auth,
                                         "ip:" + service::client_budget_key(ctx.client_ip));
            if (!budget) {
                co_return http::error_response(ctx, budget.error());
            }
        }
        co_return http::error_response(ctx, err);
    }
    domain::principal& p = **found;
    // The user's budget is spent before authorisation, so denied requests (each audited) are limited too.
    auto within = s.limits.check(service::rate_limiter::limit::api, "user:" + std::to_string(p.who.id));
    if (!within) {
        co_return http::error_response(ctx, within.error());
    }
    if (rule.kind == who::admin && (p.is_api_key() || !p.who.is_admin())) {
        auto aw_adm = deny(ctx, s, p.who.id, "Only an admin's session may call /apiv1/admin routes");
        co_return co_await std::move(aw_adm);
    }
    // The rule an API key is held to: the route's own, or on /apiv1/users/:user_id/... the twin /apiv1/me
    // route's (S1 recommends keys, S0 shows the users/ paths: a key may use them for its own user).
    access const* check = &rule;
    if (rule.kind == who::user_path) {
        auto uid = ctx.params.id("user_id");
        if (p.is_api_key()) {
            if (uid != p.who.id) {
                auto aw_7 = deny(ctx, s, p.who.id,
                                 "An API key acts only for its own user (/apiv1/users/" +
                                     std::to_string(p.who.id) + "/... or /apiv1/me/...)");
                co_return co_await std::move(aw_7);
            }
            bool const alt_ok = !rule.alt_obtype.empty() &&
                                domain::allows(p.permissions, rule.alt_obtype, std::nullopt, rule.alt_action);
            if (!alt_ok) {
                if (key_rule == nullptr) {
                    auto aw_nk =
                        deny(ctx, s, p.who.id, "This route needs a session; API keys cannot call it");
                    co_return co_await std::move(aw_nk);
                }
                check = key_rule;
            }
        } else if (!uid || (*uid != p.who.id && !p.who.is_admin())) {
            auto aw_8 = deny(ctx, s, p.who.id,
                             "This session may not act for user " + std::to_string(uid.value_or(0)));
            co_return co_await std::move(aw_8);
        }
    }
    if (check->kind == who::user_path) {
        // a session of the path's user (or an admin), or a key admitted by the alternative scope: checked
    } else if (p.is_api_key() && check->id_in_body) {
        bool const some = std::any_of(p.permissions.begin(), p.permissions.end(), [&](auto const& perm) {
            return perm.obtype == check->obtype &&
                   (check->action == "*" ||
                    std::find(perm.actions.begin(), perm.actions.end(), check->action) != perm.actions.end());
        });
        if (!some) {
            auto aw_14 = deny(ctx, s, p.who.id, "The API key holds no " + check->obtype + " permission");
            co_return co_await std::move(aw_14);
        }
    } else if (p.is_api_key()) {
        std::optional<std::int64_t> id;
        if (!check->id_param.empty()) {
            id = ctx.params.id(check->id_param);
        }
        if (!domain::allows(p.permissions, check->obtype, id, check->action) &&
            (check->alt_obtype.empty() ||
             !domain::allows(p.permissions, check->alt_obtype, id, check->alt_action))) {
            std::string const scope = check->obtype + ":" + (id ? std::to_string(*id) : std::string("*")) +
                                      "[" + check->action + "]";
            auto aw_9 = deny(ctx, s, p.who.id, "The API key lacks the scope " + scope);
            co_return co_await std::move(aw_9);
        }
    }
    if (!p.is_api_key() && state_changing(ctx.req.method()) && !origin_allowed(ctx, s.trusted_origins)) {
        auto aw_10 = deny(ctx, s, p.who.id,
                          "Cross-site request refused: a cookie-authenticated " +
                              std::string(ctx.req.method_string()) +
                              " from another origin needs an Origin of this server (or use an API key)");
        co_return co_await std::move(aw_10);
    }
    ctx.principal = std::move(p);
    auto aw_12 = target(ctx, s);
    co_return co_await std::move(aw_12);
}

http::awaitable<std::size_t> body_limit_for(http::request const& header, services& s) {
    std::size_t const full = s.cfg.server.body_limit_bytes;
    std::size_t const anonymous = std::min(full, s.cfg.server.unauthenticated_body_limit_bytes);
    auto auth = header.find(bh::field::authorization);
    if (auth != header.end()) {
        std::string_view v = auth->value();
        if (v.size() > 7 && (v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ") &&
            v.substr(7, 3) != "ak_") {
            // The signature decides the body size; the guard then checks the device and its session.
            co_return s.device_auth.signed_here(v.substr(7)) ? full : anonymous;
        }
    }
    auto aw = authenticate(header, s);
    auto p = co_await std::move(aw);
    co_return p&&* p ? full : anonymous;
}

bool cookie_write_allowed(http::request_context const& ctx, services const& s) {
    return origin_allowed(ctx, s.trusted_origins);
}

namespace {

// "/apiv1/users/:user_id/certificates/:cert_id" -> "/apiv1/me/certificates/:": the shape both twins share.
std::string shape_of(std::string const& pattern) {
    std::string out;
    std::size_t i = 0;
    while (i < pattern.size()) {
        if (pattern[i] == ':' || pattern[i] == '{') {
            out += ':';
            while (i < pattern.size() && pattern[i] != '/') {
                ++i;
            }
        } else {
            out += pattern[i++];
        }
    }
    return out;
}

std::vector<std::string> params_of(std::string const& pattern) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] == ':') {
            std::size_t const end = pattern.find('/', i);
            out.push_back(pattern.substr(i + 1, end == std::string::npos ? std::string::npos : end - i - 1));
        }
    }
    return out;
}

}  // namespace

std::optional<access> key_rule_for(route const& r, std::vector<route> const& table) {
    std::string const prefix = "/apiv1/users/:user_id/";
    if (r.rule.kind != who::user_path || r.pattern.rfind(prefix, 0) != 0) {
        return std::nullopt;
    }
    std::string const me_shape = shape_of("/apiv1/me/" + r.pattern.substr(prefix.size()));
    for (auto const& twin : table) {
        if (twin.method != r.method || twin.rule.kind != who::me || shape_of(twin.pattern) != me_shape) {
            continue;
        }
        access a = twin.rule;
        if (!a.id_param.empty()) {
            // The same position in the users/ pattern (its names differ: :cert_id vs :certificate_id).
            auto const mine = params_of(r.pattern);
            auto const theirs = params_of(twin.pattern);
            auto const at = std::find(theirs.begin(), theirs.end(), a.id_param) - theirs.begin();
            a.id_param =
                static_cast<std::size_t>(at) + 1 < mine.size() ? mine[static_cast<std::size_t>(at) + 1] : "";
        }
        return a;
    }
    return std::nullopt;
}

void add_routes(http::router& r, services& s) {
    static std::vector<std::optional<access>> const key_rules = [] {
        std::vector<std::optional<access>> out;
        for (auto const& route : route_table()) {
            out.push_back(key_rule_for(route, route_table()));
        }
        return out;
    }();
    for (std::size_t i = 0; i < route_table().size(); ++i) {
        auto const& route = route_table()[i];
        access const* key_rule = key_rules[i] ? &*key_rules[i] : nullptr;
        r.add(route.method, route.pattern, [&s, &route, key_rule](http::request_context& ctx) {
            return guarded(s, route.rule, key_rule, route.target, ctx);
        });
    }
}

}  // namespace certctrl::handlers
