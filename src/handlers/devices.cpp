// The device side: POST /auth/device (device grant), POST /apiv1/device/registration, POST /auth/refresh, the
// /apiv1/devices/self/... routes the agent calls with its access token, and the user-side install configs,
// device CAs, device bundles and revocation (agent contract 2.3, 2.4, 3.5, 3.6, 5, 6).
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/permission.hpp"
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

using detail::cert_param;
using detail::device_json;
using detail::subject_user;

// The device a request is about: :device_id on the user-side routes, the token's device on /devices/self.
std::int64_t device_of(http::request_context const& ctx) {
    return ctx.params.id("device_id").value_or(ctx.principal ? ctx.principal->device_id : 0);
}

boost::json::object tokens_json(service::device_tokens const& t) {
    return {{"access_token", t.access_token},
            {"refresh_token", t.refresh_token},
            {"token_type", "Bearer"},
            {"expires_in", t.expires_in},
            {"refresh_expires_in", t.refresh_expires_in}};
}

boost::json::object install_config_json(repo::install_config const& c) {
    boost::json::object o{{"id", c.id},
                          {"user_device_id", c.device_id},
                          {"version", c.version},
                          {"installs", c.installs},
                          {"installs_hash", c.installs_hash},
                          {"updated_by", c.updated_by},
                          {"created_at", c.created_at},
                          {"updated_at", c.updated_at}};
    o["after_update_script"] =
        c.after_update_script ? boost::json::value(*c.after_update_script) : boost::json::value(nullptr);
    if (!c.change_note.empty()) {
        o["change_note"] = c.change_note;
    }
    return o;
}

// The certificate detail a device fetches: the record with its PEM chain (leaf first) in the names the agent
// looks for (agent contract 5.3).
void device_cert_json(http::json_writer& w, repo::device_cert_material const& m) {
    w.begin_object();
    detail::write_cert_members(w, m.cert, true);
    auto blocks = crypto::split_certificates(m.cert.cert_pem);
    if (!blocks.empty()) {
        std::string chain;
        for (std::size_t i = 1; i < blocks.size(); ++i) {
            chain += blocks[i];
        }
        w.member("certificate_pem", blocks.front()).member("chain_pem", chain);
        w.member("fullchain_pem", m.cert.cert_pem);
        try {
            w.member("certificate_der_b64", base64_encode(crypto::certificate_der(blocks.front())));
        } catch (std::exception const&) {  // a stored PEM that does not parse: leave the DER out
        }
    }
    w.member("issued", m.issued).member("wrap_ready", m.enc_data_key && m.enc_data_key->size() == 80);
    w.end_object();
}

boost::json::object ca_bundle_json(domain::ca const& c) {
    auto parts = domain::split_algorithm(c.key_algorithm);
    boost::json::object o{{"id", c.id},
                          {"name", c.name},
                          {"serial_number", c.serial_number},
                          {"status", c.status},
                          {"algorithm", parts.family},
                          {"key_size", parts.key_size},
                          {"valid_days", c.valid_days},
                          {"not_before", c.not_before},
                          {"not_after", c.not_after},
                          {"ca_certificate_pem", c.cert_pem}};
    try {
        o["ca_certificate_der_b64"] = base64_encode(crypto::certificate_der(c.cert_pem));
    } catch (std::exception const&) {
    }
    return o;
}

// ?pack=download adds an attachment name; any other value of pack is refused.
result<bool> wants_download(http::request_context const& ctx) {
    auto pack = http::query_value(ctx.query, "pack");
    if (!pack) {
        return false;
    }
    if (*pack != "download") {
        return make_error(errc::bad_request, "pack must be 'download'", {{"field", "pack"}});
    }
    return true;
}

http::response with_download(http::response res, bool download, std::string const& name) {
    if (download) {
        res.set(bh::field::content_disposition, "attachment; filename=\"" + name + "\"");
    }
    res.set(bh::field::cache_control, "no-store");
    return res;
}

std::optional<std::int64_t> int_of(boost::json::value const* v) {
    if (!v) {
        return std::nullopt;
    }
    if (v->is_int64()) {
        return v->get_int64();
    }
    if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
        return static_cast<std::int64_t>(v->get_uint64());
    }
    if (v->is_string()) {
        std::int64_t n = 0;
        auto s = v->get_string();
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec == std::errc() && p == s.data() + s.size()) {
            return n;
        }
    }
    return std::nullopt;
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

std::string str_or(boost::json::object const& o, char const* name) {
    auto const* v = o.if_contains(name);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
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
    const r = await post('/auth/device', {action: 'device_verify', user_code: $('code').value.trim(), approve});
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
<p><button id="approve" type="button">Approve</button> <button id="deny" type="button">Deny</button></p>
<p id="msg" role="status"></p>
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

http::awaitable<http::response> register_agent(http::request_context& ctx, identity_context& ids,
                                               std::int64_t user_id, boost::json::object body) {
    if (!ids.devices) {
        co_return http::json_error(ctx.req,
                                   make_error(errc::unavailable, "Device registration is not available"));
    }
    auto reg = registration_of(body, user_id, ctx);
    if (!reg) {
        co_return http::json_error(ctx.req, reg.error());
    }
    auto op = ids.devices->register_device(std::move(*reg), std::nullopt);
    auto a = co_await std::move(op);
    if (!a) {
        co_return http::error_response(ctx, a.error());
    }
    co_return registration_response(ctx, *a);
}

}  // namespace detail

void add_device_auth_routes(http::router& r, identity_context& ids) {
    // POST /auth/device {action: device_start | device_verify | device_poll}
    auto device = [&ids](http::request_context& ctx) -> http::awaitable<http::response> {
        auto body = http::parse_json_object(ctx.req);
        if (!body)
            co_return http::json_error(ctx.req, body.error());
        std::string const action = str_or(*body, "action");
        if (action == "device_start" || action == "device_verify") {
            // Starting grants and entering codes spend the client's authentication budget; polling does not
            // (the agent polls every few seconds and slow_down paces it).
            auto ok = ids.limits.check(service::rate_limiter::limit::auth, "ip:" + ctx.client_ip);
            if (!ok)
                co_return http::error_response(ctx, ok.error());
        }
        if (action == "device_start") {
            std::vector<std::string> scopes;
            if (auto const* s = body->if_contains("scopes"); s && s->is_array()) {
                for (auto const& v : s->get_array()) {
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
                co_return http::json_error(
                    ctx.req, make_error(errc::bad_request, "interval and expires_in are integers"));
            }
            auto op = ids.devices->start(std::move(scopes), *interval, *expires);
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
            auto cookie = http::cookie_value(ctx.req[bh::field::cookie], ids.auth.settings().cookie_name);
            std::optional<domain::principal> who;
            if (cookie) {
                auto aw = ids.auth.from_session(*cookie);
                auto p = co_await std::move(aw);
                if (!p)
                    co_return http::error_response(ctx, p.error());
                who = std::move(*p);
            }
            if (!who)
                co_return http::json_error(
                    ctx.req, make_error(errc::unauthenticated, "device_verify needs a logged-in session"));
            if (!cookie_write_allowed(ctx, ids))
                co_return http::json_error(
                    ctx.req, make_error(errc::forbidden,
                                        "Cross-site request refused: device_verify with a session "
                                        "needs an Origin of this server"));
            auto code = detail::required_string(*body, "user_code", 32);
            if (!code)
                co_return http::json_error(ctx.req, code.error());
            bool approve = true;
            if (auto const* a = body->if_contains("approve")) {
                if (!a->is_bool())
                    co_return http::json_error(
                        ctx.req,
                        make_error(errc::bad_request, "approve must be a boolean", {{"field", "approve"}}));
                approve = a->get_bool();
            }
            auto op = ids.devices->verify(who->who.id, *code, approve);
            auto st = co_await std::move(op);
            if (!st)
                co_return http::error_response(ctx, st.error());
            co_return http::json_data(ctx.req, boost::json::object{{"status", *st}});
        }
        if (action == "device_poll") {
            auto code = detail::required_string(*body, "device_code", 128);
            if (!code)
                co_return http::json_error(ctx.req, code.error());
            auto op = ids.devices->poll(*code);
            auto a = co_await std::move(op);
            if (!a)
                co_return http::error_response(ctx, a.error());
            boost::json::object data{{"status", a->status}, {"interval", a->interval}};
            if (a->status == "ready") {
                data["registration_code"] = a->registration_code;
                data["registration_code_ttl"] = a->registration_code_ttl;
                data["user_id"] = a->user_id;
            }
            co_return http::json_data(ctx.req, std::move(data));
        }
        co_return http::json_error(
            ctx.req,
            make_error(errc::bad_request, "action must be device_start, device_verify or device_poll",
                       {{"field", "action"}}));
    };
    add_guarded(r, ids, bh::verb::post, "/auth/device", device);

    // POST /apiv1/device/registration: the registration code authorises (or, within its window, the fresh
    // refresh token of the same device re-registers without one).
    auto registration = [&ids](http::request_context& ctx) -> http::awaitable<http::response> {
        auto body = http::parse_json_object(ctx.req);
        if (!body)
            co_return http::json_error(ctx.req, body.error());
        auto uid = int_of(body->if_contains("user_id"));
        if (!uid || *uid <= 0)
            co_return http::json_error(
                ctx.req,
                make_error(errc::bad_request, "user_id (a number) is required", {{"field", "user_id"}}));
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
            auto op = ids.devices->re_register(refresh, *uid, reg->device_public_id);
            auto again = co_await std::move(op);
            if (!again)
                co_return http::error_response(ctx, again.error());
            co_return registration_response(ctx, *again);
        }
        auto op = ids.devices->register_device(std::move(*reg), code);
        auto a = co_await std::move(op);
        if (!a)
            co_return http::error_response(ctx, a.error());
        co_return registration_response(ctx, *a);
    };
    add_guarded(r, ids, bh::verb::post, "/apiv1/device/registration", registration);

    // POST /auth/refresh {refresh_token}: rotates; tokens at data.* and data.session.*.
    auto refresh = [&ids](http::request_context& ctx) -> http::awaitable<http::response> {
        auto body = http::parse_json_object(ctx.req);
        if (!body)
            co_return http::json_error(ctx.req, body.error());
        auto token = detail::required_string(*body, "refresh_token", 256);
        if (!token)
            co_return http::json_error(ctx.req, token.error());
        auto op = ids.devices->refresh(*token);
        auto t = co_await std::move(op);
        if (!t)
            co_return http::error_response(ctx, t.error());
        boost::json::object session = tokens_json(*t);
        boost::json::object data = session;
        data["device_id"] = t->device_id;
        data["session"] = std::move(session);
        co_return http::json_data(ctx.req, std::move(data));
    };
    add_guarded(r, ids, bh::verb::post, "/auth/refresh", refresh);

    // GET /device: the verification_uri page (devices.verification_uri may point at a dashboard instead).
    auto page = [](http::request_context& ctx) -> http::awaitable<http::response> {
        http::response res{bh::status::ok, ctx.req.version()};
        res.set(bh::field::content_type, "text/html; charset=utf-8");
        res.set("Content-Security-Policy", device_page_csp());
        res.set("X-Frame-Options", "DENY");
        res.set(bh::field::cache_control, "no-store");
        res.keep_alive(ctx.req.keep_alive());
        res.body() = device_page();
        res.prepare_payload();
        co_return res;
    };
    add_guarded(r, ids, bh::verb::get, "/device", page);
}

void add_device_routes(http::router& r, identity_context& ids, service::device_service& svc,
                       service::install_config_service& configs, config::devices_config const& cfg) {
    // ---------------------------------------------------------------------------------- device self
    auto updates = [&svc, &cfg](http::request_context& ctx) -> http::awaitable<http::response> {
        std::string cursor = http::query_value(ctx.query, "cursor").value_or("");
        if (auto inm = ctx.req.find(bh::field::if_none_match); inm != ctx.req.end()) {
            std::string v(inm->value());
            if (v.rfind("W/", 0) == 0) {
                v = v.substr(2);
            }
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
                v = v.substr(1, v.size() - 2);
            }
            if (!v.empty() && v != "*") {
                cursor = v;  // the header wins over the query
            }
        }
        std::int64_t limit = 20;
        std::int64_t wait = 0;
        for (auto [name, out, lo, hi] :
             {std::tuple<char const*, std::int64_t*, std::int64_t, std::int64_t>{"limit", &limit, 1, 100},
              {"wait", &wait, 0, 30}}) {
            if (auto q = http::query_value(ctx.query, name)) {
                boost::json::value v(*q);
                auto n = int_of(&v);
                if (!n || *n < lo || *n > hi)
                    co_return http::json_error(
                        ctx.req, make_error(errc::bad_request,
                                            std::string(name) + " must be " + std::to_string(lo) + ".." +
                                                std::to_string(hi),
                                            {{"field", name}}));
                *out = *n;
            }
        }
        auto op =
            svc.updates(device_of(ctx), cursor, static_cast<std::size_t>(limit), static_cast<unsigned>(wait));
        auto b = co_await std::move(op);
        if (!b)
            co_return http::error_response(ctx, b.error());
        http::response res;
        if (b->signals.empty()) {
            res = http::no_content(ctx.req);
        } else {
            boost::json::array signals;
            for (auto const& s : b->signals) {
                signals.push_back(boost::json::object{{"type", s.type}, {"ts_ms", s.ts_ms}, {"ref", s.ref}});
            }
            res = http::json_data(
                ctx.req, boost::json::object{{"cursor", b->cursor}, {"signals", std::move(signals)}});
        }
        res.set(bh::field::etag, "\"" + b->cursor + "\"");
        res.set(bh::field::cache_control, "no-store");
        if (cfg.poll_interval_hint_seconds > 0) {
            res.set("X-Poll-Interval", std::to_string(cfg.poll_interval_hint_seconds));
        }
        co_return res;
    };
    add_guarded(r, ids, bh::verb::get, "/apiv1/devices/self/updates", updates);

    // The install config and a CA bundle: the same handlers serve the device itself (/devices/self) and its
    // user (/devices/:device_id).
    auto get_config = [&configs](http::request_context& ctx) -> http::awaitable<http::response> {
        auto aw =
            detail::respond_one(ctx, configs.get(subject_user(ctx), device_of(ctx)), install_config_json);
        co_return co_await std::move(aw);
    };
    add_guarded(r, ids, bh::verb::get, "/apiv1/devices/self/install-config", get_config);

    auto self_cert = [&svc](http::request_context& ctx) -> http::awaitable<http::response> {
        auto aw = detail::respond_one(
            ctx, svc.certificate(subject_user(ctx), device_of(ctx), cert_param(ctx)), device_cert_json);
        co_return co_await std::move(aw);
    };
    add_guarded(r, ids, bh::verb::get, "/apiv1/devices/self/certificates/:cert_id", self_cert);

    auto self_materials = [&svc](http::request_context& ctx) -> http::awaitable<http::response> {
        auto op = svc.deploy_materials(subject_user(ctx), device_of(ctx), cert_param(ctx));
        auto m = co_await std::move(op);
        if (!m)
            co_return http::error_response(ctx, m.error());
        auto res = http::json_data(ctx.req, std::move(*m));
        res.set(bh::field::cache_control, "no-store");
        co_return res;
    };
    add_guarded(r, ids, bh::verb::get, "/apiv1/devices/self/certificates/:cert_id/deploy-materials",
                self_materials);

    auto ca_bundle = [&svc](http::request_context& ctx) -> http::awaitable<http::response> {
        auto download = wants_download(ctx);
        if (!download)
            co_return http::json_error(ctx.req, download.error());
        std::int64_t const ca_id = ctx.params.id("ca_id").value_or(0);
        auto op = svc.ca(subject_user(ctx), device_of(ctx), ca_id);
        auto c = co_await std::move(op);
        if (!c)
            co_return http::error_response(ctx, c.error());
        co_return with_download(http::json_data(ctx.req, ca_bundle_json(*c)), *download,
                                "ca_" + std::to_string(ca_id) + "_bundle.json");
    };
    add_guarded(r, ids, bh::verb::get, "/apiv1/devices/self/cas/:ca_id/bundle", ca_bundle);

    auto notify = [&svc](http::request_context& ctx) -> http::awaitable<http::response> {
        auto body = http::parse_json_object(ctx.req);
        if (!body)
            co_return http::json_error(ctx.req, body.error());
        auto op = svc.notify(device_of(ctx), std::move(*body), ctx.client_ip);
        auto ok = co_await std::move(op);
        if (!ok)
            co_return http::error_response(ctx, ok.error());
        co_return http::no_content(ctx.req);
    };
    add_guarded(r, ids, bh::verb::post, "/apiv1/devices/self/notify", notify);

    // ---------------------------------------------------------------------------------- user side
    auto put_config = [&configs](http::request_context& ctx) -> http::awaitable<http::response> {
        auto body = http::parse_json_object(ctx.req);
        if (!body)
            co_return http::json_error(ctx.req, body.error());
        auto aw = detail::respond_one(ctx,
                                      configs.put(subject_user(ctx), device_of(ctx), std::move(*body),
                                                  "user:" + std::to_string(ctx.principal->who.id)),
                                      install_config_json);
        co_return co_await std::move(aw);
    };
    auto history = [&configs](http::request_context& ctx) -> http::awaitable<http::response> {
        auto page = detail::parse_page(ctx);
        if (!page)
            co_return http::json_error(ctx.req, page.error());
        auto aw = detail::respond_page(ctx, *page, configs.history(subject_user(ctx), device_of(ctx), *page),
                                       install_config_json);
        co_return co_await std::move(aw);
    };
    auto restore = [&configs](http::request_context& ctx) -> http::awaitable<http::response> {
        auto body = http::parse_json_object(ctx.req);
        if (!body)
            co_return http::json_error(ctx.req, body.error());
        auto version = int_of(body->if_contains("version"));
        if (!version || *version < 1 || *version > INT32_MAX)
            co_return http::json_error(
                ctx.req, make_error(errc::bad_request, "version (a positive integer) is required",
                                    {{"field", "version"}}));
        auto aw = detail::respond_one(
            ctx,
            configs.restore(subject_user(ctx), device_of(ctx), static_cast<int>(*version),
                            str_or(*body, "change_note"), "user:" + std::to_string(ctx.principal->who.id)),
            install_config_json);
        co_return co_await std::move(aw);
    };
    auto list_cas = [&svc](http::request_context& ctx) -> http::awaitable<http::response> {
        auto page = detail::parse_page(ctx);
        if (!page)
            co_return http::json_error(ctx.req, page.error());
        auto aw = detail::respond_page(ctx, *page, svc.device_cas(subject_user(ctx), device_of(ctx), *page),
                                       ca_bundle_json);
        co_return co_await std::move(aw);
    };
    auto add_ca = [&svc](http::request_context& ctx) -> http::awaitable<http::response> {
        auto body = http::parse_json_object(ctx.req);
        if (!body)
            co_return http::json_error(ctx.req, body.error());
        auto ca_id = int_of(body->if_contains("ca_id"));
        if (!ca_id || *ca_id <= 0)
            co_return http::json_error(ctx.req,
                                       make_error(errc::bad_request, "ca_id (a positive integer) is required",
                                                  {{"field", "ca_id"}}));
        auto aw = detail::respond_done(ctx, svc.assign_ca(subject_user(ctx), device_of(ctx), *ca_id));
        co_return co_await std::move(aw);
    };
    auto remove_ca = [&svc](http::request_context& ctx) -> http::awaitable<http::response> {
        auto aw = detail::respond_done(
            ctx, svc.unassign_ca(subject_user(ctx), device_of(ctx), ctx.params.id("ca_id").value_or(0)));
        co_return co_await std::move(aw);
    };
    // The device-ready bundle (agent contract 3.5, 5.3): what the device itself would fetch.
    auto cert_bundle = [&svc](http::request_context& ctx) -> http::awaitable<http::response> {
        auto download = wants_download(ctx);
        if (!download)
            co_return http::json_error(ctx.req, download.error());
        std::int64_t const device_id = device_of(ctx);
        std::int64_t const cert_id = cert_param(ctx);
        auto op = svc.deploy_materials(subject_user(ctx), device_id, cert_id);
        auto m = co_await std::move(op);
        if (!m)
            co_return http::error_response(ctx, m.error());
        bool const plain = m->if_contains("enc_scheme") && m->at("enc_scheme") == "plaintext";
        if (plain && ctx.principal->is_api_key() &&
            !domain::allows(ctx.principal->permissions, "certificates", cert_id, "read")) {
            // A plaintext key is an export: the key needs the certificate's read scope, as /export does.
            co_return http::json_error(
                ctx.req, make_error(errc::forbidden,
                                    "The API key lacks the scope certificates:" + std::to_string(cert_id) +
                                        "[read] (a plaintext key export)"));
        }
        auto cert_op = svc.certificate(subject_user(ctx), device_id, cert_id);
        auto cert = co_await std::move(cert_op);
        if (!cert)
            co_return http::error_response(ctx, cert.error());
        boost::json::object data = std::move(*m);
        data["cert_id"] = cert_id;
        data["device_id"] = device_id;
        data["domain_name"] = cert->cert.domain_name;
        data["fullchain_pem"] = cert->cert.cert_pem;
        data["serial_number"] = cert->cert.serial_number;
        co_return with_download(
            http::json_data(ctx.req, std::move(data)), *download,
            "cert_" + std::to_string(cert_id) + (plain ? "_plaintext.json" : "_bundle.json"));
    };
    auto update_device = [&ids](http::request_context& ctx) -> http::awaitable<http::response> {
        auto body = http::parse_json_object(ctx.req);
        if (!body)
            co_return http::json_error(ctx.req, body.error());
        auto status = detail::optional_string(*body, "status", 16);
        auto name = detail::optional_string(*body, "name", 128);
        if (!status)
            co_return http::json_error(ctx.req, status.error());
        if (!name)
            co_return http::json_error(ctx.req, name.error());
        std::string st = *status;
        std::transform(st.begin(), st.end(), st.begin(), [](unsigned char c) { return std::toupper(c); });
        if (!st.empty() && st != "ACTIVE" && st != "REVOKED" && st != "LOST")
            co_return http::json_error(ctx.req,
                                       make_error(errc::bad_request, "status must be ACTIVE, REVOKED or LOST",
                                                  {{"field", "status"}}));
        auto aw = detail::respond_one(
            ctx, ids.devices->update_device(subject_user(ctx), device_of(ctx), st, *name), device_json);
        co_return co_await std::move(aw);
    };

    for (auto const& [prefix, cert] :
         {std::pair<std::string, std::string>{"/apiv1/users/:user_id", ":cert_id"},
          std::pair<std::string, std::string>{"/apiv1/me", ":certificate_id"}}) {
        std::string const dev = prefix + "/devices/:device_id";
        add_guarded(r, ids, bh::verb::put, dev, update_device);
        add_guarded(r, ids, bh::verb::get, dev + "/install-config", get_config);
        add_guarded(r, ids, bh::verb::put, dev + "/install-config", put_config);
        add_guarded(r, ids, bh::verb::get, dev + "/install-config-histories", history);
        add_guarded(r, ids, bh::verb::post, dev + "/install-config/restore", restore);
        add_guarded(r, ids, bh::verb::get, dev + "/cas", list_cas);
        add_guarded(r, ids, bh::verb::post, dev + "/cas", add_ca);
        add_guarded(r, ids, bh::verb::delete_, dev + "/cas/:ca_id", remove_ca);
        add_guarded(r, ids, bh::verb::get, dev + "/cas/:ca_id/bundle", ca_bundle);
        add_guarded(r, ids, bh::verb::get, dev + "/certificates/" + cert + "/bundle", cert_bundle);
    }

    // POST /apiv1/me/install-config-update/{device_public_id}: an array of patches or {patches,
    // after_update_script}.
    auto patch = [&configs](http::request_context& ctx) -> http::awaitable<http::response> {
        auto const ct = ctx.req[bh::field::content_type];
        if (ct.find("application/json") == std::string_view::npos)
            co_return http::json_error(
                ctx.req, make_error(errc::unsupported_media_type, "Content-Type must be application/json"));
        boost::system::error_code ec;
        auto body = boost::json::parse(ctx.req.body(), ec);
        if (ec)
            co_return http::json_error(ctx.req, make_error(errc::bad_request, "The body is not valid JSON"));
        auto pid = domain::normalize_uuid(ctx.params.str("device_public_id").value_or(""));
        if (!pid)
            co_return http::json_error(ctx.req,
                                       make_error(errc::bad_request, "device_public_id must be a UUID",
                                                  {{"field", "device_public_id"}}));
        auto op = configs.patch(subject_user(ctx), *pid, std::move(body),
                                ctx.principal->is_api_key()
                                    ? "apikey:" + std::to_string(ctx.principal->api_key_id.value_or(0))
                                    : "user:" + std::to_string(ctx.principal->who.id));
        auto c = co_await std::move(op);
        if (!c)
            co_return http::error_response(ctx, c.error());
        boost::json::object data = install_config_json(*c);
        data["message"] = "Install config updated to version " + std::to_string(c->version);
        co_return http::json_data(ctx.req, std::move(data));
    };
    add_guarded(r, ids, bh::verb::post, "/apiv1/me/install-config-update/{device_public_id}", patch);
}

}  // namespace certctrl::handlers
