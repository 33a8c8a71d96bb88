// Device onboarding (agent contract 2.3, 2.4): POST /auth/device (the device grant), POST
// /apiv1/device/registration, POST /auth/refresh, the API-key registration body, and GET /device (the page
// behind verification_uri).
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

using detail::device_json;
using detail::int_of;
using detail::str_or;

boost::json::object tokens_json(service::device_tokens const& t) {
    return {{"access_token", t.access_token},
            {"refresh_token", t.refresh_token},
            {"token_type", "Bearer"},
            {"expires_in", t.expires_in},
            {"refresh_expires_in", t.refresh_expires_in}};
}

// The agent's registration body (agent contract 2.3 step 4). Errors: bad_request naming the field.
result<repo::device_registration> registration_of(boost::json::object const& b, std::int64_t user_id,
                                                  http::request_context const& ctx) {
    repo::device_registration r;
    r.user_id = user_id;
    auto pid = detail::required_string(b, "device_public_id", 64);
    if (!pid) {
        return pid.error();
    }
    auto uuid = domain::normalize_uuid(*pid);
    if (!uuid) {
        return make_error(errc::bad_request, "device_public_id must be a UUID",
                          {{"field", "device_public_id"}});
    }
    r.device_public_id = *uuid;
    auto pk = detail::required_string(b, "dev_pk", 128);
    if (!pk) {
        return pk.error();
    }
    auto raw = base64_decode(*pk);
    if (!raw || raw->size() != 32) {
        return make_error(errc::bad_request,
                          "dev_pk must be the standard base64 of a 32-byte X25519 public key",
                          {{"field", "dev_pk"}});
    }
    r.public_key = std::move(*raw);
    struct field {
        char const* name;
        std::string* out;
        std::size_t max;
    };
    for (auto const& f :
         {field{"name", &r.name, 128}, field{"platform", &r.platform, 64}, field{"model", &r.model, 128},
          field{"app_version", &r.app_version, 64}, field{"ip", &r.ip, 45},
          field{"user_agent", &r.user_agent, 255}, field{"push_token", &r.push_token, 512}}) {
        auto v = detail::optional_string(b, f.name, f.max);
        if (!v) {
            return v.error();
        }
        *f.out = std::move(*v);
    }
    if (r.name.empty()) {
        r.name = r.platform.empty() ? "device" : r.platform + " device";
    }
    if (r.ip.empty() || r.ip == "unknown") {
        r.ip = ctx.client_ip;
    }
    if (r.user_agent.empty()) {
        // From the header: printable ASCII only, so the stored text is valid UTF-8 whatever the client sent.
        for (char ch : ctx.req[bh::field::user_agent]) {
            if (ch >= 0x20 && ch < 0x7f && r.user_agent.size() < 255) {
                r.user_agent.push_back(ch);
            }
        }
    }
    return r;
}

http::response registration_response(http::request_context const& ctx,
                                     service::device_auth_service::registration_answer const& a) {
    boost::json::object session = tokens_json(a.tokens);
    boost::json::object data = session;  // the refresher reads data.*, the login path data.session.*
    data["device"] = device_json(a.device);
    data["session"] = std::move(session);
    data["created"] = a.created;
    return http::json_data(ctx.req, std::move(data), a.created ? 201 : 200);
}

// The page behind verification_uri: a user enters (or follows a link with) the user_code, logs in if needed,
// and approves or denies the device. Plain HTML with one inline script, allowed by its hash in the CSP.
constexpr char const* device_page_script = R"JS(
const $ = (id) => document.getElementById(id);
const post = (path, body) => fetch(path, {method: 'POST', credentials: 'same-origin',
  headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})
  .then(async (r) => ({ok: r.ok, body: await r.json().catch(() => ({}))}));
const say = (text) => { $('msg').textContent = text; };
const code = new URLSearchParams(location.search).get('user_code');
if (code) $('code').value = code;
async function refresh() {
  const st = await fetch('/auth/status', {credentials: 'same-origin'}).then((r) => r.json()).catch(() => ({}));
  const user = st.data && st.data.user;
  $('login').hidden = !!user;
  $('who').textContent = user ? 'Signed in as ' + user.email : 'Sign in to approve the device.';
}
$('signin').addEventListener('click', async () => {
  const r = await post('/auth/general', {action: 'login', email: $('email').value, password: $('password').value});
  say(r.ok ? '' : ((r.body.error && r.body.error.what) || 'Sign-in failed'));
  refresh();
});
for (const [id, approve] of [['approve', true], ['deny', false]]) {
  $(id).addEventListener('click', async () => {
    const body = {action: 'device_verify', user_code: $('code').value.trim(), approve};
    const again = $('again').value.trim();
    if (again) body.device_public_id = again;
    const r = await post('/auth/device', body);
    say(r.ok ? (r.body.data.status === 'approved' ? 'Approved: the device continues on its own.' : 'Denied.')
             : ((r.body.error && r.body.error.what) || 'Failed'));
  });
}
refresh();
)JS";

std::string device_page() {
    return std::string(R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>certctrl: approve a device</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:3em auto">
<h1>Approve a device</h1>
<p id="who"></p>
<div id="login" hidden>
<p><label>Email <input id="email" type="email" autocomplete="username"></label></p>
<p><label>Password <input id="password" type="password" autocomplete="current-password"></label></p>
<p><button id="signin" type="button">Sign in</button></p>
</div>
<p><label>Code shown by the device <input id="code" placeholder="XXXX-XXXX" autocomplete="off"></label></p>
<p><label>Only to register an existing device again (its key may change): its device public id
<input id="again" placeholder="xxxxxxxx-xxxx-4xxx-xxxx-xxxxxxxxxxxx" autocomplete="off"></label></p>
<p><button id="approve" type="button">Approve</button> <button id="deny" type="button">Deny</button></p>
<p id="msg" role="status"></p>
<p><a href="/">Back to the dashboard</a></p>
<script>)HTML") +
           device_page_script + "</script>\n</body></html>\n";
}

}  // namespace

/// The Content-Security-Policy of the device page: nothing but its own inline script and same-origin fetches.
std::string device_page_csp() {
    static std::string const csp =
        "default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; script-src 'sha256-" +
        base64_encode(crypto::sha256(device_page_script)) +
        "'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'";
    return csp;
}

namespace detail {

http::awaitable<http::response> register_agent(http::request_context& ctx, services& s, std::int64_t user_id,
                                               boost::json::object body) {
    auto reg = registration_of(body, user_id, ctx);
    if (!reg) {
        co_return http::json_error(ctx.req, reg.error());
    }
    // The key's (or session's) own rights on an existing device are the proof it may register it again.
    service::device_auth_service::rekey_proof proof;
    proof.may_write_device = [p = *ctx.principal](std::int64_t device_id) {
        return !p.is_api_key() || domain::allows(p.permissions, "devices", device_id, "write");
    };
    proof.refresh_token = str_or(body, "refresh_token");
    auto op = s.device_auth.register_device(std::move(*reg), std::nullopt, std::move(proof));
    auto a = co_await std::move(op);
    if (!a) {
        co_return http::error_response(ctx, a.error());
    }
    co_return registration_response(ctx, *a);
}

}  // namespace detail

namespace {

using limit = service::rate_limiter::limit;

// The device flow has budgets of its own (rate_limits.device_flow_per_minute per key), so a fleet behind one
// address onboards without touching the login budget. That budget still guards it: when the address spent
// it (on logins or failed guesses) the flow is refused too, and a failure that may be a guess spends it.
std::optional<app_error> flow_budget(http::request_context const& ctx, services& s, std::string const& key) {
    std::string const ip = "ip:" + service::client_budget_key(ctx.client_ip);
    if (auto spent = s.limits.peek(limit::auth, ip); !spent) {
        return spent.error();
    }
    if (auto ok = s.limits.check(limit::device_flow, key); !ok) {
        return ok.error();
    }
    return std::nullopt;
}

bool may_be_a_guess(app_error const& e) {
    return e.code == errc::unauthenticated || e.code == errc::not_found ||
           e.code == errc::refresh_token_rotated;
}

// The error answer of a device-flow step; a possible guess spends the address's authentication budget.
http::response flow_failure(http::request_context const& ctx, services& s, app_error const& e) {
    if (may_be_a_guess(e)) {
        (void)s.limits.check(limit::auth, "ip:" + service::client_budget_key(ctx.client_ip));
    }
    return http::error_response(ctx, e);
}

std::string code_key(std::string const& device_code) {
    return "code:" + hex_encode(crypto::sha256(device_code)).substr(0, 32);
}

}  // namespace

http::awaitable<http::response> device_grant(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    std::string const action = str_or(*body, "action");
    std::string const ip_key = "ip:" + service::client_budget_key(ctx.client_ip);
    if (action == "device_start") {
        // Starting grants: per address (entering codes: per approving user, below).
        if (auto no = flow_budget(ctx, s, ip_key))
            co_return http::error_response(ctx, *no);
    } else if (action == "device_poll") {
        // Polls: per device code (slow_down paces each code to its interval), and per address at ten times
        // the budget (a fleet behind one NAT polls many codes at once; nobody polls without bound).
        auto const* c = body->if_contains("device_code");
        std::string const code = c != nullptr && c->is_string() ? std::string(c->get_string()) : "";
        if (auto no = flow_budget(ctx, s, code_key(code)))
            co_return http::error_response(ctx, *no);
        if (auto spent = s.limits.check(limit::device_flow_polls, ip_key); !spent)
            co_return http::error_response(ctx, spent.error());
    }
    if (action == "device_start") {
        std::vector<std::string> scopes;
        if (auto const* list = body->if_contains("scopes"); list && list->is_array()) {
            for (auto const& v : list->get_array()) {
                if (v.is_string()) {
                    scopes.emplace_back(v.get_string());
                }
            }
        }
        auto const* iv = body->if_contains("interval");
        auto const* ex = body->if_contains("expires_in");
        auto interval = iv ? int_of(iv) : std::optional<std::int64_t>(5);
        auto expires = ex ? int_of(ex) : std::optional<std::int64_t>(900);
        if (!interval || !expires) {
            co_return http::json_error(ctx.req,
                                       make_error(errc::bad_request, "interval and expires_in are integers"));
        }
        auto op = s.device_auth.start(std::move(scopes), *interval, *expires);
        auto g = co_await std::move(op);
        if (!g)
            co_return http::error_response(ctx, g.error());
        co_return http::json_data(
            ctx.req, boost::json::object{{"device_code", g->device_code},
                                         {"user_code", g->user_code},
                                         {"verification_uri", g->verification_uri},
                                         {"verification_uri_complete", g->verification_uri_complete},
                                         {"interval", g->interval},
                                         {"expires_in", g->expires_in}});
    }
    if (action == "device_verify") {
        auto cookie = http::cookie_value(ctx.req[bh::field::cookie], s.auth.settings().cookie_name);
        std::optional<domain::principal> who;
        if (cookie) {
            auto aw = s.auth.from_session(*cookie);
            auto p = co_await std::move(aw);
            if (!p)
                co_return http::error_response(ctx, p.error());
            who = std::move(*p);
        }
        if (!who)
            co_return http::json_error(
                ctx.req, make_error(errc::unauthenticated, "device_verify needs a logged-in session"));
        if (!cookie_write_allowed(ctx, s))
            co_return http::json_error(ctx.req,
                                       make_error(errc::forbidden,
                                                  "Cross-site request refused: device_verify with a session "
                                                  "needs an Origin of this server"));
        auto code = detail::required_string(*body, "user_code", 32);
        if (!code)
            co_return http::json_error(ctx.req, code.error());
        bool approve = true;
        if (auto const* a = body->if_contains("approve")) {
            if (!a->is_bool())
                co_return http::json_error(ctx.req, make_error(errc::bad_request, "approve must be a boolean",
                                                               {{"field", "approve"}}));
            approve = a->get_bool();
        }
        std::optional<std::string> device;
        if (auto const* d = body->if_contains("device_public_id"); d && !d->is_null()) {
            if (!d->is_string())
                co_return http::json_error(ctx.req,
                                           make_error(errc::bad_request, "device_public_id must be a string",
                                                      {{"field", "device_public_id"}}));
            device = std::string(d->get_string());
        }
        if (auto no = flow_budget(ctx, s, "verify:" + std::to_string(who->who.id)))
            co_return http::error_response(ctx, *no);
        auto op = s.device_auth.verify(who->who.id, *code, approve, std::move(device));
        auto st = co_await std::move(op);
        if (!st)
            co_return flow_failure(ctx, s, st.error());
        co_return http::json_data(ctx.req, boost::json::object{{"status", *st}});
    }
    if (action == "device_poll") {
        auto code = detail::required_string(*body, "device_code", 128);
        if (!code)
            co_return http::json_error(ctx.req, code.error());
        auto op = s.device_auth.poll(*code);
        auto a = co_await std::move(op);
        if (!a)
            co_return flow_failure(ctx, s, a.error());
        boost::json::object data{{"status", a->status}, {"interval", a->interval}};
        if (a->status == "ready") {
            data["registration_code"] = a->registration_code;
            data["registration_code_ttl"] = a->registration_code_ttl;
            data["user_id"] = a->user_id;
        }
        co_return http::json_data(ctx.req, std::move(data));
    }
    co_return http::json_error(
        ctx.req, make_error(errc::bad_request, "action must be device_start, device_verify or device_poll",
                            {{"field", "action"}}));
}

http::awaitable<http::response> register_with_code(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto uid = int_of(body->if_contains("user_id"));
    if (!uid || *uid <= 0)
        co_return http::json_error(
            ctx.req, make_error(errc::bad_request, "user_id (a number) is required", {{"field", "user_id"}}));
    // Per address: the body's user_id is not proven until the code is checked, so it cannot key a budget
    // (anyone could spend a victim's).
    if (auto no = flow_budget(ctx, s, "register:ip:" + service::client_budget_key(ctx.client_ip)))
        co_return http::error_response(ctx, *no);
    auto reg = registration_of(*body, *uid, ctx);
    if (!reg)
        co_return http::json_error(ctx.req, reg.error());
    std::string code = str_or(*body, "registration_code");
    std::string refresh = str_or(*body, "refresh_token");
    if (code.empty() && refresh.empty())
        co_return http::json_error(ctx.req, make_error(errc::bad_request, "registration_code is required",
                                                       {{"field", "registration_code"}}));
    if (code.empty()) {
        // A retry with the fresh refresh token: rotate it and keep the row.
        auto op = s.device_auth.re_register(refresh, *uid, reg->device_public_id);
        auto again = co_await std::move(op);
        if (!again)
            co_return flow_failure(ctx, s, again.error());
        co_return registration_response(ctx, *again);
    }
    service::device_auth_service::rekey_proof proof;
    proof.refresh_token = refresh;  // the agent's current one, if it still holds it
    auto op = s.device_auth.register_device(std::move(*reg), code, std::move(proof));
    auto a = co_await std::move(op);
    if (!a)
        co_return flow_failure(ctx, s, a.error());
    co_return registration_response(ctx, *a);
}

http::awaitable<http::response> refresh_device_tokens(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto token = detail::required_string(*body, "refresh_token", 256);
    if (!token)
        co_return http::json_error(ctx.req, token.error());
    if (auto no = flow_budget(ctx, s, "ip:" + service::client_budget_key(ctx.client_ip)))
        co_return http::error_response(ctx, *no);
    auto op = s.device_auth.refresh(*token);
    auto t = co_await std::move(op);
    if (!t)
        co_return flow_failure(ctx, s, t.error());
    boost::json::object session = tokens_json(*t);
    boost::json::object data = session;
    data["device_id"] = t->device_id;
    data["session"] = std::move(session);
    co_return http::json_data(ctx.req, std::move(data));
}

http::awaitable<http::response> device_approval_page(http::request_context& ctx, services& /*s*/) {
    http::response res{bh::status::ok, ctx.req.version()};
    res.set(bh::field::content_type, "text/html; charset=utf-8");
    res.set("Content-Security-Policy", device_page_csp());
    res.set("X-Frame-Options", "DENY");
    res.set(bh::field::cache_control, "no-store");
    res.keep_alive(ctx.req.keep_alive());
    res.body() = device_page();
    res.prepare_payload();
    co_return res;
}

}  // namespace certctrl::handlers
