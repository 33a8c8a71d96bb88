// POST /auth/general and /auth (login, register, activate-user), POST /auth/logout, GET /auth/status.
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

boost::json::array roles_json(domain::user const& u) {
    boost::json::array a;
    for (auto const& r : u.roles)
        a.emplace_back(r);
    return a;
}

// Set-Cookie for the session (max_age 0 clears it). Secure when the server is reached over https.
std::string session_cookie(config::config const& cfg, std::string const& value, std::int64_t max_age) {
    std::string c = cfg.auth.cookie_name + "=" + value +
                    "; Path=/; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age);
    if (cfg.server.public_url.rfind("https://", 0) == 0) {
        c += "; Secure";
    }
    return c;
}

http::awaitable<http::response> login(http::request_context& ctx, services& s,
                                      boost::json::object const& body) {
    config::config const& cfg = s.cfg;
    auto email = detail::required_string(body, "email", 254);
    if (!email)
        co_return http::json_error(ctx.req, email.error());
    auto password = detail::required_string(body, "password", 1024);
    if (!password)
        co_return http::json_error(ctx.req, password.error());
    if (email->empty() || password->empty()) {
        co_return http::json_error(ctx.req,
                                   make_error(errc::bad_request, "email and password must not be empty"));
    }
    // Each account has its own budget of failed logins (from any address), so guessing one user's password
    // from many addresses is throttled too. Once spent, the account's logins wait out the hour.
    std::string account = *email;
    std::transform(account.begin(), account.end(), account.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    account = "account:" + account;
    if (auto spent = s.limits.peek(service::rate_limiter::limit::login_account, account); !spent) {
        co_return http::error_response(ctx, spent.error());
    }
    std::string previous = http::cookie_value(ctx.req[bh::field::cookie], cfg.auth.cookie_name).value_or("");
    auto aw_1 = s.auth.login(*email, *password, previous, detail::client_of(ctx));
    auto r = co_await std::move(aw_1);
    if (!r) {
        if (r.error().code == errc::unauthenticated) {
            (void)s.limits.check(service::rate_limiter::limit::login_account, account);
        }
        co_return http::error_response(ctx, r.error());
    }
    boost::json::object user{{"id", r->user.id}, {"email", r->user.email}, {"roles", roles_json(r->user)}};
    auto res = http::json_data(
        ctx.req, boost::json::object{{"user", std::move(user)}, {"to", cfg.auth.login_redirect}});
    res.set(bh::field::set_cookie, session_cookie(cfg, r->session_id, cfg.auth.session_ttl_s));
    co_return res;
}

}  // namespace

http::awaitable<http::response> auth_general(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto action = detail::optional_string(*body, "action", 64);
    if (!action)
        co_return http::json_error(ctx.req, action.error());
    if (action->empty() || *action == "login") {
        auto aw_2 = login(ctx, s, *body);
        co_return co_await std::move(aw_2);
    }
    if (*action == "register") {
        auto email = detail::required_string(*body, "email", 254);
        if (!email)
            co_return http::json_error(ctx.req, email.error());
        auto password = detail::required_string(*body, "password", 1024);
        if (!password)
            co_return http::json_error(ctx.req, password.error());
        auto aw_3 = s.auth.register_user(*email, *password, detail::client_of(ctx));
        auto u = co_await std::move(aw_3);
        if (!u)
            co_return http::error_response(ctx, u.error());
        // The same answer whether or not the email had an account (no id: it would tell).
        co_return http::json_data(ctx.req, boost::json::object{{"status", "waiting_for_verification"},
                                                               {"user", {{"email", u->email}}}});
    }
    if (*action == "activate-user") {
        auto email = detail::required_string(*body, "email", 254);
        if (!email)
            co_return http::json_error(ctx.req, email.error());
        auto code = detail::required_string(*body, "verify_code", 256);
        if (!code)
            co_return http::json_error(ctx.req, code.error());
        auto aw_4 = s.auth.activate(*email, *code, detail::client_of(ctx));
        auto u = co_await std::move(aw_4);
        if (!u)
            co_return http::error_response(ctx, u.error());
        co_return http::json_data(ctx.req, boost::json::object{{"status", "activation_successful"}});
    }
    co_return http::json_error(
        ctx.req, make_error(errc::bad_request,
                            "Unknown action '" + *action + "' (expected login, register or activate-user)",
                            {{"field", "action"}}));
}

http::awaitable<http::response> auth_logout(http::request_context& ctx, services& s) {
    auto cookie = http::cookie_value(ctx.req[bh::field::cookie], s.cfg.auth.cookie_name);
    bool removed = false;
    if (cookie && !cookie_write_allowed(ctx, s)) {
        // A cross-site page must not end the user's session (logout CSRF): same rule as every cookie write.
        co_return http::json_error(
            ctx.req,
            make_error(errc::forbidden, "Cross-site logout refused: it needs an Origin of this server"));
    }
    if (cookie) {
        auto aw_6 = s.auth.from_session(*cookie);
        auto p = co_await std::move(aw_6);
        std::optional<std::int64_t> uid;
        if (p && *p)
            uid = (*p)->who.id;
        auto aw_7 = s.auth.logout(*cookie, uid, detail::client_of(ctx));
        auto out = co_await std::move(aw_7);
        if (!out)
            co_return http::error_response(ctx, out.error());
        removed = *out;
    }
    auto res =
        http::json_data(ctx.req, boost::json::object{{"status", "logged_out"}, {"session_ended", removed}});
    res.set(bh::field::set_cookie, session_cookie(s.cfg, "", 0));
    co_return res;
}

http::awaitable<http::response> auth_status(http::request_context& ctx, services& s) {
    auto cookie = http::cookie_value(ctx.req[bh::field::cookie], s.cfg.auth.cookie_name);
    std::optional<domain::principal> p;
    if (cookie) {
        auto aw_8 = s.auth.from_session(*cookie);
        auto found = co_await std::move(aw_8);
        if (!found)
            co_return http::error_response(ctx, found.error());
        p = std::move(*found);
    }
    if (!p) {
        // The agent contract: logged out is HTTP 200 with the NOT_AN_ERROR code.
        co_return http::json_error(ctx.req, make_error(errc::not_an_error, "Not logged in"));
    }
    boost::json::object user{
        {"id", p->who.id}, {"name", p->who.name}, {"email", p->who.email}, {"roles", roles_json(p->who)}};
    co_return http::json_data(
        ctx.req, boost::json::object{{"user", std::move(user)}, {"to", s.cfg.auth.login_redirect}});
}

}  // namespace certctrl::handlers
