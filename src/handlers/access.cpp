#include "certctrl/handlers/access.hpp"

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
    static std::vector<route_access> const table = {
        {bh::verb::post, "/auth/general", {who::anyone, "", "", "", true}},
        {bh::verb::post, "/auth", {who::anyone, "", "", "", true}},
        {bh::verb::post, "/auth/logout", {who::anyone, "", "", "", false}},
        {bh::verb::get, "/auth/status", {who::anyone, "", "", "", false}},
        {bh::verb::get, "/apiv1/users/:user_id/apikeys", {who::user_path, "", "", "", false}},
        {bh::verb::post, "/apiv1/users/:user_id/apikeys", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/users/:user_id/apikeys/:apikey_id", {who::user_path, "", "", "", false}},
        {bh::verb::delete_, "/apiv1/users/:user_id/apikeys/:apikey_id", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/users/:user_id/audit", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/me/apikeys", {who::me, "apikeys", "read", "", false}},
        {bh::verb::post, "/apiv1/me/apikeys", {who::me, "apikeys", "write", "", false}},
        {bh::verb::get, "/apiv1/me/apikeys/:apikey_id", {who::me, "apikeys", "read", "apikey_id", false}},
        {bh::verb::delete_,
         "/apiv1/me/apikeys/:apikey_id",
         {who::me, "apikeys", "write", "apikey_id", false}},
        {bh::verb::get, "/apiv1/me/audit", {who::me, "audit", "read", "", false}},
        {bh::verb::get, "/apiv1/users/:user_id/acme-accounts", {who::user_path, "", "", "", false}},
        {bh::verb::post, "/apiv1/users/:user_id/acme-accounts", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/users/:user_id/acme-accounts/:acct_id", {who::user_path, "", "", "", false}},
        {bh::verb::put, "/apiv1/users/:user_id/acme-accounts/:acct_id", {who::user_path, "", "", "", false}},
        {bh::verb::delete_,
         "/apiv1/users/:user_id/acme-accounts/:acct_id",
         {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/me/acme-accounts", {who::me, "acme_accounts", "read", "", false}},
        {bh::verb::post, "/apiv1/me/acme-accounts", {who::me, "acme_accounts", "write", "", false}},
        {bh::verb::get,
         "/apiv1/me/acme-accounts/:acme_account_id",
         {who::me, "acme_accounts", "read", "acme_account_id", false}},
        {bh::verb::put,
         "/apiv1/me/acme-accounts/:acme_account_id",
         {who::me, "acme_accounts", "write", "acme_account_id", false}},
        {bh::verb::delete_,
         "/apiv1/me/acme-accounts/:acme_account_id",
         {who::me, "acme_accounts", "write", "acme_account_id", false}},
        {bh::verb::get, "/apiv1/users/:user_id/dns-providers", {who::user_path, "", "", "", false}},
        {bh::verb::post, "/apiv1/users/:user_id/dns-providers", {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/dns-providers/:dns_provider_id",
         {who::user_path, "", "", "", false}},
        {bh::verb::put,
         "/apiv1/users/:user_id/dns-providers/:dns_provider_id",
         {who::user_path, "", "", "", false}},
        {bh::verb::delete_,
         "/apiv1/users/:user_id/dns-providers/:dns_provider_id",
         {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/me/dns-providers", {who::me, "dns_providers", "read", "", false}},
        {bh::verb::post, "/apiv1/me/dns-providers", {who::me, "dns_providers", "write", "", false}},
        {bh::verb::get,
         "/apiv1/me/dns-providers/:dns_provider_id",
         {who::me, "dns_providers", "read", "dns_provider_id", false}},
        {bh::verb::put,
         "/apiv1/me/dns-providers/:dns_provider_id",
         {who::me, "dns_providers", "write", "dns_provider_id", false}},
        {bh::verb::delete_,
         "/apiv1/me/dns-providers/:dns_provider_id",
         {who::me, "dns_providers", "write", "dns_provider_id", false}},
        {bh::verb::get, "/apiv1/users/:user_id/cas", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/me/cas", {who::me, "cas", "read", "", false}},
        {bh::verb::post, "/apiv1/users/:user_id/cas", {who::user_path, "", "", "", false}},
        {bh::verb::post, "/apiv1/me/cas", {who::me, "cas", "write", "", false}},
        {bh::verb::get, "/apiv1/users/:user_id/cas/:ca_id", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/me/cas/:ca_id", {who::me, "cas", "read", "ca_id", false}},
        {bh::verb::delete_, "/apiv1/users/:user_id/cas/:ca_id", {who::user_path, "", "", "", false}},
        {bh::verb::delete_, "/apiv1/me/cas/:ca_id", {who::me, "cas", "write", "ca_id", false}},
        {bh::verb::get, "/apiv1/users/:user_id/certificates", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/me/certificates", {who::me, "certificates", "read", "", false}},
        {bh::verb::post, "/apiv1/users/:user_id/certificates", {who::user_path, "", "", "", false}},
        {bh::verb::post, "/apiv1/me/certificates", {who::me, "certificates", "write", "", false}},
        {bh::verb::get, "/apiv1/users/:user_id/certificates/:cert_id", {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/certificates/:certificate_id",
         {who::me, "certificates", "read", "certificate_id", false}},
        {bh::verb::delete_,
         "/apiv1/users/:user_id/certificates/:cert_id",
         {who::user_path, "", "", "", false}},
        {bh::verb::delete_,
         "/apiv1/me/certificates/:certificate_id",
         {who::me, "certificates", "write", "certificate_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/acme-accounts/:acct_id/certificates",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/acme-accounts/:acme_account_id/certificates",
         {who::me, "certificates", "read", "", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/certificates/:cert_id/devices",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/certificates/:certificate_id/devices",
         {who::me, "certificates", "read", "certificate_id", false}},
        {bh::verb::post,
         "/apiv1/users/:user_id/certificates/:cert_id/assign",
         {who::user_path, "", "", "", false}},
        {bh::verb::post,
         "/apiv1/me/certificates/:certificate_id/assign",
         {who::me, "certificates", "write", "certificate_id", false}},
        {bh::verb::get, "/apiv1/users/:user_id/devices", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/me/devices", {who::me, "devices", "read", "", false}},
        {bh::verb::post,
         "/apiv1/users/:user_id/devices",
         {who::user_path, "", "", "", false, false, "ForDeviceAuthenticate", "authenticate"}},
        {bh::verb::post,
         "/apiv1/me/devices",
         {who::me, "devices", "write", "", false, false, "ForDeviceAuthenticate", "authenticate"}},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/me/devices/:device_id", {who::me, "devices", "read", "device_id", false}},
        {bh::verb::delete_, "/apiv1/users/:user_id/devices/:device_id", {who::user_path, "", "", "", false}},
        {bh::verb::delete_,
         "/apiv1/me/devices/:device_id",
         {who::me, "devices", "write", "device_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/devices/by-public-id/{device_public_id}",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/devices/by-public-id/{device_public_id}",
         {who::me, "devices", "read", "", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/devices/:device_id/certificates",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/devices/:device_id/certificates",
         {who::me, "devices", "read", "device_id", false}},
        {bh::verb::post,
         "/apiv1/users/:user_id/devices/:device_id/certificates",
         {who::user_path, "", "", "", false}},
        {bh::verb::post,
         "/apiv1/me/devices/:device_id/certificates",
         {who::me, "devices", "write", "device_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/devices/:device_id/certificates/:cert_id",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/devices/:device_id/certificates/:certificate_id",
         {who::me, "devices", "read", "device_id", false}},
        {bh::verb::delete_,
         "/apiv1/users/:user_id/devices/:device_id/certificates/:cert_id",
         {who::user_path, "", "", "", false}},
        {bh::verb::delete_,
         "/apiv1/me/devices/:device_id/certificates/:certificate_id",
         {who::me, "devices", "write", "device_id", false}},
        {bh::verb::post, "/apiv1/me/certificate-assign", {who::me, "certificates", "*", "", false, true}},
        {bh::verb::post,
         "/apiv1/users/:user_id/certificates/:cert_id/issues",
         {who::user_path, "", "", "", false}},
        {bh::verb::post,
         "/apiv1/me/certificates/:certificate_id/issues",
         {who::me, "certificates", "issue", "certificate_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/certificates/:cert_id/issues",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/certificates/:certificate_id/issues",
         {who::me, "certificates", "read", "certificate_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/certificates/:cert_id/issues/history",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/certificates/:certificate_id/issues/history",
         {who::me, "certificates", "read", "certificate_id", false}},
        {bh::verb::post,
         "/apiv1/users/:user_id/certificates/:cert_id/issues/history",
         {who::user_path, "", "", "", false}},
        {bh::verb::post,
         "/apiv1/me/certificates/:certificate_id/issues/history",
         {who::me, "certificates", "issue", "certificate_id", false}},
        {bh::verb::post,
         "/apiv1/users/:user_id/certificates/:cert_id/issues/:issue_history_id/cancel",
         {who::user_path, "", "", "", false}},
        {bh::verb::post,
         "/apiv1/me/certificates/:certificate_id/issues/:issue_history_id/cancel",
         {who::me, "certificates", "issue", "certificate_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/certificates/:cert_id/issue-result",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/certificates/:certificate_id/issue-result",
         {who::me, "certificates", "read", "certificate_id", false}},
        {bh::verb::post,
         "/apiv1/users/:user_id/certificates/:cert_id/renew",
         {who::user_path, "", "", "", false}},
        {bh::verb::post,
         "/apiv1/me/certificates/:certificate_id/renew",
         {who::me, "certificates", "issue", "certificate_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/certificates/:cert_id/export",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/certificates/:certificate_id/export",
         {who::me, "certificates", "read", "certificate_id", false}},
        {bh::verb::put, "/apiv1/users/:user_id/devices/:device_id", {who::user_path, "", "", "", false}},
        {bh::verb::put, "/apiv1/me/devices/:device_id", {who::me, "devices", "write", "device_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/devices/:device_id/install-config",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/devices/:device_id/install-config",
         {who::me, "devices", "read", "device_id", false}},
        {bh::verb::put,
         "/apiv1/users/:user_id/devices/:device_id/install-config",
         {who::user_path, "", "", "", false}},
        {bh::verb::put,
         "/apiv1/me/devices/:device_id/install-config",
         {who::me, "devices", "write", "device_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/devices/:device_id/install-config-histories",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/devices/:device_id/install-config-histories",
         {who::me, "devices", "read", "device_id", false}},
        {bh::verb::post,
         "/apiv1/users/:user_id/devices/:device_id/install-config/restore",
         {who::user_path, "", "", "", false}},
        {bh::verb::post,
         "/apiv1/me/devices/:device_id/install-config/restore",
         {who::me, "devices", "write", "device_id", false}},
        {bh::verb::get, "/apiv1/users/:user_id/devices/:device_id/cas", {who::user_path, "", "", "", false}},
        {bh::verb::get, "/apiv1/me/devices/:device_id/cas", {who::me, "devices", "read", "device_id", false}},
        {bh::verb::post, "/apiv1/users/:user_id/devices/:device_id/cas", {who::user_path, "", "", "", false}},
        {bh::verb::post,
         "/apiv1/me/devices/:device_id/cas",
         {who::me, "devices", "write", "device_id", false}},
        {bh::verb::delete_,
         "/apiv1/users/:user_id/devices/:device_id/cas/:ca_id",
         {who::user_path, "", "", "", false}},
        {bh::verb::delete_,
         "/apiv1/me/devices/:device_id/cas/:ca_id",
         {who::me, "devices", "write", "device_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/devices/:device_id/cas/:ca_id/bundle",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/devices/:device_id/cas/:ca_id/bundle",
         {who::me, "devices", "read", "device_id", false}},
        {bh::verb::get,
         "/apiv1/users/:user_id/devices/:device_id/certificates/:cert_id/bundle",
         {who::user_path, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/me/devices/:device_id/certificates/:certificate_id/bundle",
         {who::me, "devices", "read", "device_id", false}},
        {bh::verb::post,
         "/apiv1/me/install-config-update/{device_public_id}",
         {who::me, "ForInstallConfigUpdate", "update", "", false, false, "devices", "write"}},
        {bh::verb::post, "/auth/device", {who::anyone, "", "", "", false}},
        {bh::verb::get, "/device", {who::anyone, "", "", "", false}},
        {bh::verb::post, "/auth/refresh", {who::anyone, "", "", "", true}},
        {bh::verb::post, "/apiv1/device/registration", {who::anyone, "", "", "", true}},
        {bh::verb::get, "/apiv1/devices/self/updates", {who::device, "", "", "", false}},
        {bh::verb::get, "/apiv1/devices/self/install-config", {who::device, "", "", "", false}},
        {bh::verb::get, "/apiv1/devices/self/certificates/:cert_id", {who::device, "", "", "", false}},
        {bh::verb::get,
         "/apiv1/devices/self/certificates/:cert_id/deploy-materials",
         {who::device, "", "", "", false}},
        {bh::verb::get, "/apiv1/devices/self/cas/:ca_id/bundle", {who::device, "", "", "", false}},
        {bh::verb::post, "/apiv1/devices/self/notify", {who::device, "", "", "", false}},
    };
    return table;
}

std::string origin_of(std::string const& url) {
    auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) {
        return url;
    }
    auto path = url.find('/', scheme_end + 3);
    return path == std::string::npos ? url : url.substr(0, path);
}

namespace {

bool state_changing(bh::verb v) {
    return v != bh::verb::get && v != bh::verb::head && v != bh::verb::options;
}

// A cookie-authenticated write must come from a page of ours: its Origin is trusted, or (without Origin)
// the browser says it is same-origin. Non-browser clients use API keys.
bool origin_allowed(http::request_context const& ctx, std::vector<std::string> const& trusted) {
    auto origin = ctx.req.find(bh::field::origin);
    if (origin != ctx.req.end()) {
        std::string const o(origin->value());
        return std::find(trusted.begin(), trusted.end(), o) != trusted.end();
    }
    auto site = ctx.req.find("Sec-Fetch-Site");
    return site != ctx.req.end() && site->value() == "same-origin";
}

// The principal of the request's credentials: Bearer API key first, else the session cookie.
http::awaitable<result<std::optional<domain::principal>>> authenticate(http::request_context const& ctx,
                                                                       identity_context& ids) {
    auto auth = ctx.req.find(bh::field::authorization);
    if (auth != ctx.req.end()) {
        std::string_view v = auth->value();
        if (v.size() < 7 || !(v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) {
            co_return make_error(errc::unauthenticated, "Authorization must be 'Bearer <api key>'");
        }
        std::string token(v.substr(7));
        if (token.rfind("ak_", 0) != 0) {
            co_return make_error(errc::unauthenticated, "Unsupported bearer token (API keys start with ak_)");
        }
        auto aw_1 = ids.keys.authenticate(token);
        auto p = co_await std::move(aw_1);
        if (!p) {
            co_return p.error();
        }
        co_return std::optional<domain::principal>(std::move(*p));
    }
    auto cookie = http::cookie_value(ctx.req[bh::field::cookie], ids.auth.settings().cookie_name);
    if (!cookie) {
        co_return std::optional<domain::principal>{};
    }
    auto aw_2 = ids.auth.from_session(*cookie);
    co_return co_await std::move(aw_2);
}

// The principal of a device route: `Authorization: Bearer <device access token>` (agent contract 2.4).
http::awaitable<result<domain::principal>> authenticate_device(http::request_context const& ctx,
                                                               identity_context& ids) {
    auto auth = ctx.req.find(bh::field::authorization);
    if (auth == ctx.req.end()) {
        co_return make_error(errc::unauthenticated,
                             "Device routes need 'Authorization: Bearer <device access token>'");
    }
    std::string_view v = auth->value();
    if (v.size() < 8 || !(v.substr(0, 7) == "Bearer " || v.substr(0, 7) == "bearer ")) {
        co_return make_error(errc::unauthenticated, "Authorization must be 'Bearer <device access token>'");
    }
    if (!ids.devices) {
        co_return make_error(errc::unavailable, "Device authentication is not available");
    }
    auto aw = ids.devices->authenticate(std::string(v.substr(7)));
    co_return co_await std::move(aw);
}

http::awaitable<http::response> deny(http::request_context& ctx, identity_context& ids,
                                     std::optional<std::int64_t> user_id, std::string what) {
    boost::json::object detail;
    detail["method"] = std::string(ctx.req.method_string());
    detail["route"] = ctx.route;
    detail["reason"] = what;
    auto aw_3 =
        ids.audit.record(user_id, "permission.denied", "denied", detail::client_of(ctx), std::move(detail));
    co_await std::move(aw_3);
    co_return http::json_error(ctx.req, make_error(errc::forbidden, std::move(what)));
}

http::awaitable<http::response> run_guarded(identity_context& ids, access const& rule,
                                            http::router::handler const& h, http::request_context& ctx) {
    if (rule.auth_limit) {
        auto ok = ids.limits.check(service::rate_limiter::limit::auth, "ip:" + ctx.client_ip);
        if (!ok) {
            co_return http::error_response(ctx, ok.error());
        }
    }
    if (rule.kind == who::anyone) {
        auto aw_5 = h(ctx);
        co_return co_await std::move(aw_5);
    }
    if (rule.kind == who::device) {
        auto aw_dev = authenticate_device(ctx, ids);
        auto dev = co_await std::move(aw_dev);
        if (!dev) {
            if (dev.error().code == errc::unauthenticated) {
                auto budget = ids.limits.check(service::rate_limiter::limit::auth, "ip:" + ctx.client_ip);
                if (!budget) {
                    co_return http::error_response(ctx, budget.error());
                }
            }
            co_return http::error_response(ctx, dev.error());
        }
        // Each device has its own budget, so a user's fleet of agents does not share one.
        auto within =
            ids.limits.check(service::rate_limiter::limit::api, "device:" + std::to_string(dev->device_id));
        if (!within) {
            co_return http::error_response(ctx, within.error());
        }
        ctx.principal = std::move(*dev);
        auto aw_dh = h(ctx);
        co_return co_await std::move(aw_dh);
    }
    auto aw_6 = authenticate(ctx, ids);
    auto found = co_await std::move(aw_6);
    if (!found || !*found) {
        app_error err =
            !found ? found.error()
                   : make_error(errc::unauthenticated,
                                "Authentication required: a session cookie or 'Authorization: Bearer "
                                "ak_...'");
        if (err.code == errc::unauthenticated) {
            // Failed authentications spend the client's authentication budget, so guessing is throttled.
            auto budget = ids.limits.check(service::rate_limiter::limit::auth, "ip:" + ctx.client_ip);
            if (!budget) {
                co_return http::error_response(ctx, budget.error());
            }
        }
        co_return http::error_response(ctx, err);
    }
    domain::principal& p = **found;
    // The user's budget is spent before authorisation, so denied requests (each audited) are limited too.
    auto within = ids.limits.check(service::rate_limiter::limit::api, "user:" + std::to_string(p.who.id));
    if (!within) {
        co_return http::error_response(ctx, within.error());
    }
    if (rule.kind == who::user_path) {
        bool const key_allowed =
            p.is_api_key() && !rule.alt_obtype.empty() && ctx.params.id("user_id") == p.who.id &&
            domain::allows(p.permissions, rule.alt_obtype, std::nullopt, rule.alt_action);
        if (p.is_api_key() && !key_allowed) {
            auto aw_7 = deny(ctx, ids, p.who.id,
                             "API keys use the /apiv1/me/... routes; /apiv1/users/:user_id needs a session");
            co_return co_await std::move(aw_7);
        }
        auto uid = ctx.params.id("user_id");
        if (!uid || (*uid != p.who.id && !p.who.is_admin())) {
            auto aw_8 = deny(ctx, ids, p.who.id,
                             "This session may not act for user " + std::to_string(uid.value_or(0)));
            co_return co_await std::move(aw_8);
        }
    } else if (p.is_api_key() && rule.id_in_body) {
        bool const some = std::any_of(p.permissions.begin(), p.permissions.end(), [&](auto const& perm) {
            return perm.obtype == rule.obtype &&
                   (rule.action == "*" ||
                    std::find(perm.actions.begin(), perm.actions.end(), rule.action) != perm.actions.end());
        });
        if (!some) {
            auto aw_14 = deny(ctx, ids, p.who.id, "The API key holds no " + rule.obtype + " permission");
            co_return co_await std::move(aw_14);
        }
    } else if (p.is_api_key()) {
        std::optional<std::int64_t> id;
        if (!rule.id_param.empty()) {
            id = ctx.params.id(rule.id_param);
        }
        if (!domain::allows(p.permissions, rule.obtype, id, rule.action) &&
            (rule.alt_obtype.empty() ||
             !domain::allows(p.permissions, rule.alt_obtype, id, rule.alt_action))) {
            std::string const scope =
                rule.obtype + ":" + (id ? std::to_string(*id) : std::string("*")) + "[" + rule.action + "]";
            auto aw_9 = deny(ctx, ids, p.who.id, "The API key lacks the scope " + scope);
            co_return co_await std::move(aw_9);
        }
    }
    if (!p.is_api_key() && state_changing(ctx.req.method()) && !origin_allowed(ctx, ids.trusted_origins)) {
        auto aw_10 = deny(ctx, ids, p.who.id,
                          "Cross-site request refused: a cookie-authenticated " +
                              std::string(ctx.req.method_string()) +
                              " needs an Origin of this server (or use an API key)");
        co_return co_await std::move(aw_10);
    }
    ctx.principal = std::move(p);
    auto aw_12 = h(ctx);
    co_return co_await std::move(aw_12);
}

}  // namespace

bool cookie_write_allowed(http::request_context const& ctx, identity_context const& ids) {
    return origin_allowed(ctx, ids.trusted_origins);
}

void add_guarded(http::router& r, identity_context& ids, bh::verb method, std::string const& pattern,
                 http::router::handler h) {
    auto const& table = access_table();
    auto it = std::find_if(table.begin(), table.end(), [&](route_access const& ra) {
        return ra.method == method && ra.pattern == pattern;
    });
    if (it == table.end()) {
        throw std::logic_error("route without an access rule: " + std::string(bh::to_string(method)) + " " +
                               pattern);
    }
    access rule = it->rule;
    r.add(method, pattern,
          [&ids, rule, h = std::move(h)](http::request_context& ctx) -> http::awaitable<http::response> {
              auto aw_13 = run_guarded(ids, rule, h, ctx);
              co_return co_await std::move(aw_13);
          });
}

}  // namespace certctrl::handlers
