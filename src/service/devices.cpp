#include "certctrl/service/devices.hpp"

#include "certctrl/acme/jws.hpp"
#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/sodium.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/issuance.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <deque>
#include <set>

namespace certctrl::service {

namespace asio = boost::asio;

namespace {

std::optional<std::int64_t> to_int(std::string_view s) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

std::string const jwt_purpose = "device-jwt";

app_error bad_token(std::string what) {
    return make_error(errc::unauthenticated, std::move(what));
}

std::string hash_of(std::string const& token) {
    return crypto::sha256(token);
}

// 32 letters and digits without 0/O and 1/I; 256 is a multiple of 32, so no modulo bias.
std::string new_user_code() {
    static constexpr char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    std::string const r = crypto::random_bytes(8);
    std::string out;
    for (std::size_t i = 0; i < 8; ++i) {
        if (i == 4) {
            out.push_back('-');
        }
        out.push_back(alphabet[static_cast<unsigned char>(r[i]) & 31]);
    }
    return out;
}

// Upper-cased, spaces dropped, the dash added when missing; "" when it cannot be a user code.
std::string normalize_user_code(std::string_view in) {
    std::string s;
    for (char ch : in) {
        if (ch == ' ' || ch == '-') {
            continue;
        }
        if (!std::isalnum(static_cast<unsigned char>(ch))) {
            return "";
        }
        s.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(ch))));
    }
    if (s.size() != 8) {
        return "";
    }
    return s.substr(0, 4) + "-" + s.substr(4);
}

}  // namespace

// ------------------------------------------------------------------------------------------ tokens

std::string sign_device_token(crypto::keyring const& keys, device_claims const& claims) {
    std::uint32_t const version = keys.current_version();
    auto key = keys.derive(version, jwt_purpose);
    boost::json::object header{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", std::to_string(version)}};
    boost::json::object payload{{"sub", std::to_string(claims.user_id)},
                                {"device_id", claims.device_id},
                                {"sid", claims.session_id},
                                {"iat", claims.issued_at},
                                {"exp", claims.expires_at}};
    std::string const input = acme::base64url(boost::json::serialize(header)) + "." +
                              acme::base64url(boost::json::serialize(payload));
    return input + "." + acme::base64url(crypto::hmac_sha256(*key, input));
}

result<device_claims> verify_device_token(crypto::keyring const& keys, std::string_view token,
                                          std::int64_t now) {
    auto const d1 = token.find('.');
    auto const d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos ||
        token.size() > 4096) {
        return bad_token("Malformed device token");
    }
    auto header_raw = acme::base64url_decode(token.substr(0, d1));
    auto payload_raw = acme::base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
    auto sig = acme::base64url_decode(token.substr(d2 + 1));
    if (!header_raw || !payload_raw || !sig) {
        return bad_token("Malformed device token");
    }
    boost::system::error_code ec;
    auto header = boost::json::parse(*header_raw, ec);
    if (ec || !header.is_object()) {
        return bad_token("Malformed device token");
    }
    auto const* alg = header.as_object().if_contains("alg");
    if (!alg || !alg->is_string() || alg->get_string() != "HS256") {
        return bad_token("Device tokens are HS256 JWTs");
    }
    auto const* kid = header.as_object().if_contains("kid");
    std::optional<std::int64_t> version;
    if (kid && kid->is_string()) {
        version = to_int(kid->get_string());
    }
    if (!version || *version <= 0) {
        return bad_token("Device token signed with an unknown key");
    }
    auto key = keys.derive(static_cast<std::uint32_t>(*version), jwt_purpose);
    if (!key) {
        return bad_token("Device token signed with an unknown key");
    }
    if (!crypto::constant_time_equal(crypto::hmac_sha256(*key, token.substr(0, d2)), *sig)) {
        return bad_token("Bad device token signature");
    }
    auto payload = boost::json::parse(*payload_raw, ec);
    if (ec || !payload.is_object()) {
        return bad_token("Malformed device token");
    }
    auto const& p = payload.as_object();
    device_claims c;
    auto const* sub = p.if_contains("sub");
    auto const* exp = p.if_contains("exp");
    auto const* sid = p.if_contains("sid");
    auto const* dev = p.if_contains("device_id");
    if (!sub || !sub->is_string() || !to_int(sub->get_string()) || !exp || !exp->is_int64() || !sid ||
        !sid->is_int64()) {
        return bad_token("Device token lacks sub, sid or exp");
    }
    c.user_id = *to_int(sub->get_string());
    c.expires_at = exp->get_int64();
    c.session_id = sid->get_int64();
    if (c.expires_at <= now) {
        return bad_token("Device token expired");
    }
    if (!dev) {
        return make_error(errc::bad_request, "Device token has no device_id claim");
    }
    if (dev->is_int64()) {
        c.device_id = dev->get_int64();
    } else if (dev->is_string() && to_int(dev->get_string())) {
        c.device_id = *to_int(dev->get_string());
    } else {
        return make_error(errc::bad_request, "Device token has a malformed device_id claim");
    }
    if (auto const* iat = p.if_contains("iat"); iat && iat->is_int64()) {
        c.issued_at = iat->get_int64();
    }
    return c;
}

repo::device_sealer make_device_sealer(crypto::keyring const& keys) {
    repo::device_sealer s;
    s.open = [&keys](std::int64_t cert_id, crypto::wrapped_key const& w) -> std::optional<std::string> {
        auto k = keys.unwrap(w, issuance_service::data_key_context(cert_id));
        if (!k) {
            spdlog::error("certificate {}: the master-wrapped data key does not open: {}", cert_id,
                          k.error().what);
            return std::nullopt;
        }
        return std::move(*k);
    };
    s.seal = [](std::string const& data_key, std::string const& pk) { return crypto::seal_to(data_key, pk); };
    s.fingerprint = [](std::string const& pk) { return crypto::blake2b_256(pk); };
    return s;
}

// -------------------------------------------------------------------------------------- device auth

device_auth_service::device_auth_service(repo::device_auth_repository& repo, crypto::keyring const& keys,
                                         config::devices_config const& cfg, std::string public_url)
    : repo_(repo), keys_(keys), cfg_(cfg) {
    while (!public_url.empty() && public_url.back() == '/') {
        public_url.pop_back();
    }
    verification_uri_ = cfg.verification_uri.empty() ? public_url + "/device" : cfg.verification_uri;
}

task<device_auth_service::grant> device_auth_service::start(std::vector<std::string> scopes,
                                                            std::int64_t interval, std::int64_t expires_in) {
    if (interval < 1 || interval > 60) {
        co_return make_error(errc::bad_request, "interval must be 1..60 seconds", {{"field", "interval"}});
    }
    if (expires_in < 30 || expires_in > 3600) {
        co_return make_error(errc::bad_request, "expires_in must be 30..3600 seconds",
                             {{"field", "expires_in"}});
    }
    std::string joined;
    for (auto const& s : scopes) {
        joined += (joined.empty() ? "" : " ") + s;
    }
    if (joined.size() > 512) {
        co_return make_error(errc::bad_request, "scopes are too long", {{"field", "scopes"}});
    }
    grant g;
    g.device_code = "dc_" + crypto::random_base62(43);
    g.interval = interval;
    g.expires_in = expires_in;
    for (int attempt = 0; attempt < 5; ++attempt) {
        g.user_code = new_user_code();
        auto op = repo_.create_code(hash_of(g.device_code), g.user_code, joined, interval,
                                    unix_now() + expires_in, unix_now());
        auto stored = co_await std::move(op);
        if (!stored) {
            co_return stored.error();
        }
        if (*stored) {
            g.verification_uri = verification_uri_;
            g.verification_uri_complete = verification_uri_ + "?user_code=" + g.user_code;
            co_return g;
        }
    }
    co_return make_error(errc::unavailable, "Could not draw a free user code; try again");
}

task<std::string> device_auth_service::verify(std::int64_t user_id, std::string user_code, bool approve) {
    std::string const code = normalize_user_code(user_code);
    if (code.empty()) {
        co_return make_error(errc::bad_request, "user_code must look like XXXX-XXXX",
                             {{"field", "user_code"}});
    }
    auto op = repo_.decide(code, user_id, approve, unix_now());
    auto status = co_await std::move(op);
    if (!status) {
        co_return status.error();
    }
    co_return *status == "DENIED" ? std::string("denied") : std::string("approved");
}

task<device_auth_service::poll_answer> device_auth_service::poll(std::string device_code) {
    std::string const registration_code = "rc_" + crypto::random_base62(32);
    auto const now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    auto op = repo_.poll(hash_of(device_code), hash_of(registration_code),
                         unix_now() + cfg_.registration_code_ttl_seconds, now_ms);
    auto r = co_await std::move(op);
    if (!r) {
        co_return r.error();
    }
    poll_answer a;
    a.status = r->status;
    a.interval = r->interval_s;
    if (r->status == "ready") {
        a.user_id = r->user_id;
        a.registration_code = registration_code;
        a.registration_code_ttl = cfg_.registration_code_ttl_seconds;
    }
    co_return a;
}

device_tokens device_auth_service::mint(repo::device_session const& s, std::string refresh_token) const {
    device_claims c;
    c.user_id = s.user_id;
    c.device_id = s.device_id;
    c.session_id = s.session_id;
    c.issued_at = unix_now();
    c.expires_at = c.issued_at + cfg_.access_token_ttl_seconds;
    device_tokens t;
    t.access_token = sign_device_token(keys_, c);
    t.refresh_token = std::move(refresh_token);
    t.expires_in = cfg_.access_token_ttl_seconds;
    t.refresh_expires_in = cfg_.refresh_token_ttl_seconds;
    t.device_id = s.device_id;
    return t;
}

task<device_auth_service::registration_answer> device_auth_service::register_device(
    repo::device_registration reg, std::optional<std::string> registration_code) {
    if (reg.public_key.size() != crypto::x25519_key_bytes) {
        co_return make_error(errc::bad_request, "dev_pk must be the base64 of a 32-byte X25519 public key",
                             {{"field", "dev_pk"}});
    }
    std::string refresh = "rt_" + crypto::random_base62(43);
    std::optional<std::string> code_hash;
    if (registration_code) {
        code_hash = hash_of(*registration_code);
    }
    auto op = repo_.register_device(std::move(reg), code_hash, hash_of(refresh),
                                    unix_now() + cfg_.refresh_token_ttl_seconds, unix_now(),
                                    make_device_sealer(keys_));
    auto r = co_await std::move(op);
    if (!r) {
        co_return r.error();
    }
    registration_answer a;
    a.device = std::move(r->device);
    a.created = r->created;
    a.tokens = mint(r->session, std::move(refresh));
    co_return a;
}

task<device_tokens> device_auth_service::refresh(std::string refresh_token) {
    if (refresh_token.empty() || refresh_token.size() > 256) {
        co_return make_error(errc::bad_request, "refresh_token is required", {{"field", "refresh_token"}});
    }
    std::string fresh = "rt_" + crypto::random_base62(43);
    auto op = repo_.rotate(hash_of(refresh_token), hash_of(fresh),
                           unix_now() + cfg_.refresh_token_ttl_seconds, unix_now(), 0, "");
    auto s = co_await std::move(op);
    if (!s) {
        co_return s.error();
    }
    co_return mint(*s, std::move(fresh));
}

task<device_auth_service::registration_answer> device_auth_service::re_register(
    std::string refresh_token, std::int64_t user_id, std::string device_public_id) {
    std::string fresh = "rt_" + crypto::random_base62(43);
    auto op =
        repo_.rotate(hash_of(refresh_token), hash_of(fresh), unix_now() + cfg_.refresh_token_ttl_seconds,
                     unix_now(), user_id, std::move(device_public_id));
    auto s = co_await std::move(op);
    if (!s) {
        co_return s.error();
    }
    auto dev_op = repo_.check_session(s->user_id, s->device_id, s->session_id);
    auto dev = co_await std::move(dev_op);
    if (!dev) {
        co_return dev.error();
    }
    registration_answer a;
    a.device = std::move(*dev);
    a.tokens = mint(*s, std::move(fresh));
    co_return a;
}

task<domain::principal> device_auth_service::authenticate(std::string token) {
    auto claims = verify_device_token(keys_, token, unix_now());
    if (!claims) {
        co_return claims.error();
    }
    auto op = repo_.check_session(claims->user_id, claims->device_id, claims->session_id);
    auto dev = co_await std::move(op);
    if (!dev) {
        co_return dev.error();
    }
    domain::principal p;
    p.via = domain::principal::kind::device;
    p.who.id = claims->user_id;
    p.who.status = "ACTIVE";
    p.device_id = claims->device_id;
    p.device_session_id = claims->session_id;
    co_return p;
}

task<std::int64_t> device_auth_service::purge() {
    return repo_.purge(unix_now());
}

// ----------------------------------------------------------------------------------------- notifier

struct update_notifier::waiter {
    waiter(asio::any_io_executor ex, std::int64_t dev)
        : strand(asio::make_strand(ex)), timer(strand), device_id(dev) {}
    asio::strand<asio::any_io_executor> strand;
    asio::steady_timer timer;
    bool notified = false;  // touched on the strand only
    std::int64_t device_id;
};

namespace {

asio::awaitable<void> wait_on_strand(std::shared_ptr<update_notifier::waiter> w,
                                     std::chrono::steady_clock::time_point deadline) {
    if (w->notified) {
        co_return;
    }
    w->timer.expires_at(deadline);
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace

std::shared_ptr<update_notifier::waiter> update_notifier::watch(asio::any_io_executor ex,
                                                                std::int64_t device_id) {
    auto w = std::make_shared<waiter>(std::move(ex), device_id);
    std::lock_guard lock(mu_);
    waiters_.emplace(device_id, w);
    return w;
}

asio::awaitable<void> update_notifier::wait(std::shared_ptr<waiter> w,
                                            std::chrono::steady_clock::time_point deadline) {
    if (stopping_) {
        co_return;
    }
    auto strand = w->strand;
    auto op = asio::co_spawn(strand, wait_on_strand(std::move(w), deadline), asio::use_awaitable);
    co_await std::move(op);
}

void update_notifier::unwatch(std::shared_ptr<waiter> const& w) {
    std::lock_guard lock(mu_);
    auto [a, b] = waiters_.equal_range(w->device_id);
    for (auto it = a; it != b; ++it) {
        if (it->second == w) {
            waiters_.erase(it);
            return;
        }
    }
}

std::size_t update_notifier::waiting() const {
    std::lock_guard lock(mu_);
    return waiters_.size();
}

void update_notifier::stop() {
    stopping_ = true;
    std::vector<std::int64_t> all;
    {
        std::lock_guard lock(mu_);
        for (auto const& [id, w] : waiters_) {
            all.push_back(id);
        }
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    wake(all);
}

void update_notifier::wake(std::vector<std::int64_t> const& devices) {
    std::lock_guard lock(mu_);
    for (auto id : devices) {
        auto [a, b] = waiters_.equal_range(id);
        for (auto it = a; it != b; ++it) {
            auto w = it->second;
            asio::post(w->strand, [w] {
                w->notified = true;
                w->timer.cancel();
            });
        }
    }
}

asio::awaitable<void> update_notifier::run() {
    // Feed ids are handed out at insert and become visible at commit, so a smaller id may appear after a
    // larger one (different devices commit in any order; one device's signals cannot: emit_signal locks its
    // row). Each poll therefore re-reads the ids of the last few seconds and wakes the devices of ids not
    // seen yet.
    constexpr auto settle = std::chrono::seconds(5);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::int64_t floor = -1;  // ids up to here are settled; -1: not known yet
    std::set<std::int64_t> seen;
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::int64_t>> marks;
    for (;;) {
        auto op = feed_.changed_since(floor < 0 ? -1 : floor);
        auto r = co_await std::move(op);
        // A full batch means more rows follow: read on from its last id (the window re-read stays complete).
        while (r && floor >= 0 && r->size() >= 10000) {
            auto more_op = feed_.changed_since(r->back().first);
            auto more = co_await std::move(more_op);
            if (!more) {
                r = more;
                break;
            }
            bool const last = more->size() < 10000;
            r->insert(r->end(), more->begin(), more->end());
            if (last) {
                break;
            }
        }
        if (!r) {
            spdlog::warn("update notifier: {}", r.error().what);
        } else if (floor < 0) {
            floor = r->empty() ? 0 : r->front().first;
        } else {
            std::vector<std::int64_t> devices;
            std::int64_t newest = floor;
            for (auto const& [id, device] : *r) {
                newest = std::max(newest, id);
                if (seen.insert(id).second) {
                    devices.push_back(device);
                }
            }
            std::sort(devices.begin(), devices.end());
            devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
            wake(devices);
            auto const now = std::chrono::steady_clock::now();
            marks.emplace_back(now, newest);
            while (!marks.empty() && now - marks.front().first >= settle) {
                floor = std::max(floor, marks.front().second);
                marks.pop_front();
            }
            seen.erase(seen.begin(), seen.upper_bound(floor));
        }
        timer.expires_after(period_);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            co_return;
        }
    }
}

// ------------------------------------------------------------------------------------ device service

namespace {

// Cursors are feed ids in decimal; "" and the stream-style "0-0" mean "from the start". Anything else is
// not one of ours: the device has to resync.
std::optional<std::int64_t> parse_cursor(std::string const& c) {
    if (c.empty() || c == "0-0") {
        return 0;
    }
    auto v = to_int(c);
    if (!v || *v < 0) {
        return std::nullopt;
    }
    return v;
}

app_error resync_error(std::string earliest) {
    app_error e = make_error(errc::updates_cursor_expired, "Cursor expired. Full resync required.");
    e.params["action"] = "full_resync";
    e.params["reset_cursor"] = true;
    e.params["signal_type"] = "state.resync_required";
    e.params["reason"] = "cursor_trimmed";
    e.params["earliest_retained_id"] = std::move(earliest);
    return e;
}

}  // namespace

task<update_batch> device_service::updates(std::int64_t device_id, std::string cursor, std::size_t limit,
                                           unsigned wait_s) {
    auto after = parse_cursor(cursor);
    if (!after) {
        co_return resync_error("0");
    }
    wait_s = notifier_.stopping() ? 0u : std::min(wait_s, cfg_.updates_max_wait_seconds);
    auto const ex = co_await asio::this_coro::executor;
    std::shared_ptr<update_notifier::waiter> w;
    if (wait_s > 0) {
        w = notifier_.watch(ex, device_id);
    }
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
    result<repo::device_feed_repository::updates_page> got = repo::device_feed_repository::updates_page{};
    for (;;) {
        auto op = feed_.updates(device_id, *after, limit);
        got = co_await std::move(op);
        if (!got || !got->signals.empty() || !w || std::chrono::steady_clock::now() >= deadline ||
            notifier_.stopping()) {
            break;
        }
        auto wait_op = notifier_.wait(w, deadline);
        co_await std::move(wait_op);
        notifier_.unwatch(w);
        w = notifier_.watch(ex, device_id);
    }
    if (w) {
        notifier_.unwatch(w);
    }
    if (!got) {
        app_error const e = got.error();  // error() answers a copy: keep it while its params are read
        if (e.code == errc::updates_cursor_expired) {
            auto const* earliest = e.params.if_contains("earliest_retained_id");
            co_return resync_error(earliest && earliest->is_string() ? std::string(earliest->get_string())
                                                                     : "0");
        }
        co_return e;
    }
    update_batch b;
    b.signals = std::move(got->signals);
    b.cursor = std::to_string(got->cursor);
    co_return b;
}

task<repo::device_cert_material> device_service::certificate(std::int64_t user_id, std::int64_t device_id,
                                                             std::int64_t cert_id) {
    auto op = feed_.material(user_id, device_id, cert_id);
    auto m = co_await std::move(op);
    if (!m) {
        co_return m.error();
    }
    if (!*m) {
        co_return make_error(errc::not_found, "Certificate not assigned to this device");
    }
    co_return std::move(**m);
}

task<boost::json::object> device_service::deploy_materials(std::int64_t user_id, std::int64_t device_id,
                                                           std::int64_t cert_id) {
    auto op = certificate(user_id, device_id, cert_id);
    auto m = co_await std::move(op);
    if (!m) {
        co_return m.error();
    }
    std::string const& policy = m->cert.key_dist_policy;  // canonical: parse_key_policy upper-cases it
    if (!m->issued) {
        app_error e = make_error(errc::conflict, "The certificate has not been issued yet");
        e.key = "NOT_ISSUED";
        co_return e;
    }
    if (policy == "MASTER_ONLY") {
        if (!m->cert.server_decrypt_export) {
            app_error e = make_error(
                errc::forbidden, "Policy MASTER_ONLY without server_decrypt_export: the key is not exported");
            e.key = "EXPORT_FORBIDDEN";
            co_return e;
        }
        auto key = open_certificate_key(keys_, repo::stored_key{m->private_key, m->data_key}, cert_id);
        if (!key) {
            co_return key.error();
        }
        auto blocks = crypto::split_certificates(m->cert.cert_pem);
        boost::json::object out{{"enc_scheme", "plaintext"},
                                {"private_key_der_b64", base64_encode(crypto::private_key_der(*key))},
                                {"private_key_pem", *key}};
        if (!blocks.empty()) {
            out["certificate_pem"] = blocks.front();
        }
        co_return out;
    }
    if (!m->enc_data_key || m->enc_data_key->size() != crypto::sealed_data_key_bytes) {
        app_error e = make_error(errc::conflict,
                                 "Device wrap pending (WRAP_PENDING): the data key is not yet sealed "
                                 "to this device's key; retry shortly");
        e.key = "WRAP_PENDING";
        co_return e;
    }
    co_return boost::json::object{{"cert_id", cert_id},
                                  {"wrap_alg", m->wrap_alg.empty() ? std::string("x25519") : m->wrap_alg},
                                  {"enc_scheme", "aes256gcm"},
                                  {"device_keyfp_b64", base64_encode(m->device_keyfp)},
                                  {"enc_data_key_b64", base64_encode(*m->enc_data_key)},
                                  {"enc_privkey_b64", base64_encode(m->private_key.ciphertext)},
                                  {"privkey_nonce_b64", base64_encode(m->private_key.nonce)},
                                  {"privkey_tag_b64", base64_encode(m->private_key.tag)}};
}

task<domain::ca> device_service::ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id) {
    auto op = feed_.device_ca(user_id, device_id, ca_id);
    auto c = co_await std::move(op);
    if (!c) {
        co_return c.error();
    }
    if (!*c) {
        co_return make_error(errc::not_found, "CA not assigned to this device");
    }
    co_return std::move(**c);
}

task<repo::install_config> device_service::install_config(std::int64_t user_id, std::int64_t device_id) {
    auto op = feed_.install_config_of(user_id, device_id);
    auto c = co_await std::move(op);
    if (!c) {
        co_return c.error();
    }
    if (*c) {
        co_return std::move(**c);
    }
    repo::install_config empty;
    empty.device_id = device_id;
    empty.user_id = user_id;
    empty.installs_hash = hex_encode(crypto::sha256("[]"));
    co_return empty;
}

task<bool> device_service::notify(std::int64_t device_id, boost::json::object body, std::string ip) {
    auto const* events = body.if_contains("events");
    if (!events || !events->is_array()) {
        co_return make_error(errc::bad_request, "events must be an array", {{"field", "events"}});
    }
    if (events->get_array().size() > 100) {
        co_return make_error(errc::bad_request, "at most 100 events", {{"field", "events"}});
    }
    std::string version;
    for (auto const& ev : events->get_array()) {
        if (!ev.is_object() || !ev.get_object().if_contains("type") ||
            !ev.get_object().at("type").is_string()) {
            co_return make_error(errc::bad_request, "each event needs a string type", {{"field", "events"}});
        }
        auto const& o = ev.get_object();
        if (o.at("type").get_string() == "agent_version") {
            auto const* v = o.if_contains("version");
            if (!v || !v->is_string() || v->get_string().empty() || v->get_string().size() > 64) {
                co_return make_error(errc::bad_request, "agent_version needs a version (1-64 characters)",
                                     {{"field", "events"}});
            }
            version = std::string(v->get_string());
        }
    }
    auto op = feed_.note_agent(device_id, version, std::move(ip), unix_now());
    co_return co_await std::move(op);
}

namespace {

result<boost::json::array> installs_of(boost::json::object const& body) {
    if (auto const* v = body.if_contains("installs")) {
        return parse_installs(*v);
    }
    if (auto const* s = body.if_contains("installs_json"); s && s->is_string()) {
        boost::system::error_code ec;
        auto v = boost::json::parse(s->get_string(), ec);
        if (ec) {
            return make_error(errc::bad_request, "installs_json is not JSON", {{"field", "installs_json"}});
        }
        return parse_installs(v);
    }
    return make_error(errc::bad_request, "installs (an array of install items) is required",
                      {{"field", "installs"}});
}

result<std::optional<std::string>> script_of(boost::json::object const& body) {
    auto const* s = body.if_contains("after_update_script");
    if (!s || s->is_null()) {
        return std::optional<std::string>{};
    }
    if (!s->is_string() || s->get_string().size() > 256 * 1024) {
        return make_error(errc::bad_request, "after_update_script must be text (at most 256 KiB) or null",
                          {{"field", "after_update_script"}});
    }
    return std::optional<std::string>(std::string(s->get_string()));
}

std::string note_of(boost::json::object const& body) {
    auto const* n = body.if_contains("change_note");
    return n && n->is_string() ? std::string(n->get_string()).substr(0, 512) : std::string();
}

}  // namespace

task<repo::install_config> device_service::put_install_config(std::int64_t user_id, std::int64_t device_id,
                                                              boost::json::object body,
                                                              std::string updated_by) {
    auto installs = installs_of(body);
    if (!installs) {
        co_return installs.error();
    }
    auto script = script_of(body);
    if (!script) {
        co_return script.error();
    }
    auto op = feed_.put_install_config(user_id, device_id, std::move(*installs), std::move(*script),
                                       std::move(updated_by), note_of(body), unix_now());
    co_return co_await std::move(op);
}

task<repo::install_config> device_service::restore_install_config(std::int64_t user_id,
                                                                  std::int64_t device_id, int version,
                                                                  std::string change_note,
                                                                  std::string updated_by) {
    if (version < 1) {
        co_return make_error(errc::bad_request, "version must be a positive integer", {{"field", "version"}});
    }
    auto find = feed_.install_config_version(user_id, device_id, version);
    auto old = co_await std::move(find);
    if (!old) {
        co_return old.error();
    }
    if (!*old) {
        co_return make_error(errc::not_found, "No such install config version", {{"field", "version"}});
    }
    if (change_note.empty()) {
        change_note = "restored version " + std::to_string(version);
    }
    auto op = feed_.put_install_config(user_id, device_id, (*old)->installs, (*old)->after_update_script,
                                       std::move(updated_by), std::move(change_note), unix_now());
    co_return co_await std::move(op);
}

task<repo::install_config> device_service::patch_install_config(std::int64_t user_id,
                                                                std::string device_public_id,
                                                                boost::json::value body,
                                                                std::string updated_by) {
    auto find = devices_.get_by_public_id(user_id, device_public_id);
    auto dev = co_await std::move(find);
    if (!dev) {
        co_return dev.error();
    }
    if (!*dev) {
        co_return make_error(errc::not_found, "Device not found");
    }
    boost::json::array const* patches = nullptr;
    std::optional<std::optional<std::string>> script;
    if (body.is_array()) {
        patches = &body.get_array();
    } else if (body.is_object() && body.get_object().if_contains("patches") &&
               body.get_object().at("patches").is_array()) {
        patches = &body.get_object().at("patches").get_array();
        if (body.get_object().if_contains("after_update_script")) {
            auto s = script_of(body.get_object());
            if (!s) {
                co_return s.error();
            }
            script = std::move(*s);
        }
    } else {
        co_return make_error(errc::bad_request, "body must be an array of patches or {patches:[...]}",
                             {{"field", "patches"}});
    }
    auto cur_op = install_config(user_id, (*dev)->id);
    auto cur = co_await std::move(cur_op);
    if (!cur) {
        co_return cur.error();
    }
    boost::json::array installs = cur->installs;
    static char const* const allowed[] = {"type", "enabled", "cmd", "cmd_argv", "timeout_ms", "env"};
    for (std::size_t i = 0; i < patches->size(); ++i) {
        auto const& pv = (*patches)[i];
        std::string const where = "patches[" + std::to_string(i) + "]";
        if (!pv.is_object() || !pv.get_object().if_contains("ob_type") ||
            !pv.get_object().if_contains("ob_id")) {
            co_return make_error(errc::bad_request, where + " needs ob_type and ob_id", {{"field", where}});
        }
        auto const& p = pv.get_object();
        bool matched = false;
        for (auto& item : installs) {
            auto& o = item.as_object();
            if (o.if_contains("ob_type") == nullptr || o.at("ob_type") != p.at("ob_type") ||
                o.if_contains("ob_id") == nullptr || o.at("ob_id") != p.at("ob_id")) {
                continue;
            }
            if (p.if_contains("id") && (!o.if_contains("id") || o.at("id") != p.at("id"))) {
                continue;
            }
            for (char const* f : allowed) {
                if (auto const* v = p.if_contains(f)) {
                    o[f] = *v;
                }
            }
            matched = true;
        }
        if (!matched) {
            co_return make_error(errc::not_found, where + " matches no install item", {{"field", where}});
        }
    }
    auto checked = parse_installs(installs);
    if (!checked) {
        co_return checked.error();
    }
    auto op = feed_.put_install_config(user_id, (*dev)->id, std::move(*checked),
                                       script ? *script : cur->after_update_script, std::move(updated_by),
                                       "install-config-update", unix_now());
    co_return co_await std::move(op);
}

task<bool> device_service::assign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id) {
    auto op = feed_.assign_ca(user_id, device_id, ca_id, unix_now());
    auto r = co_await std::move(op);
    if (!r) {
        co_return r.error();
    }
    co_return true;
}

task<bool> device_service::unassign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id) {
    auto op = feed_.unassign_ca(user_id, device_id, ca_id, unix_now());
    auto r = co_await std::move(op);
    if (!r) {
        co_return r.error();
    }
    if (!*r) {
        co_return make_error(errc::not_found, "CA not assigned to this device");
    }
    co_return true;
}

// ------------------------------------------------------------------------------------- install items

result<boost::json::array> parse_installs(boost::json::value const& v) {
    if (!v.is_array()) {
        return make_error(errc::bad_request, "installs must be an array", {{"field", "installs"}});
    }
    auto const& a = v.get_array();
    if (a.size() > 200) {
        return make_error(errc::bad_request, "at most 200 install items", {{"field", "installs"}});
    }
    boost::json::array out;
    for (std::size_t i = 0; i < a.size(); ++i) {
        std::string const where = "installs[" + std::to_string(i) + "]";
        auto fail = [&](std::string what) {
            return make_error(errc::bad_request, where + ": " + what, {{"field", where}});
        };
        if (!a[i].is_object()) {
            return fail("must be an object");
        }
        auto o = a[i].get_object();
        auto const* type = o.if_contains("type");
        if (!type || !type->is_string() ||
            (type->get_string() != "copy" && type->get_string() != "exec" &&
             type->get_string() != "import_ca")) {
            return fail("type must be copy, exec or import_ca");
        }
        if (auto const* ob = o.if_contains("ob_type");
            ob && (!ob->is_string() || (ob->get_string() != "cert" && ob->get_string() != "ca"))) {
            return fail("ob_type must be cert or ca");
        }
        if (auto const* id = o.if_contains("ob_id"); id && !(id->is_int64() && id->get_int64() > 0)) {
            return fail("ob_id must be a positive integer");
        }
        auto strings = [](boost::json::value const* x) {
            if (!x) {
                return true;
            }
            if (!x->is_array()) {
                return false;
            }
            return std::all_of(x->get_array().begin(), x->get_array().end(),
                               [](auto const& s) { return s.is_string(); });
        };
        auto const* from = o.if_contains("from");
        auto const* to = o.if_contains("to");
        if (!strings(from) || !strings(to)) {
            return fail("from and to must be arrays of strings");
        }
        if (type->get_string() == "copy") {
            if (!from || !to || from->get_array().size() != to->get_array().size() ||
                from->get_array().empty()) {
                return fail("a copy item needs from and to of the same, non-zero length");
            }
            for (auto const& p : to->get_array()) {
                auto const& s = p.get_string();
                if (s.empty() || (s[0] != '/' && !(s.size() > 2 && s[1] == ':'))) {
                    return fail("to holds absolute paths");
                }
            }
        }
        if (auto const* cmd = o.if_contains("cmd"); cmd && !cmd->is_string() && !strings(cmd)) {
            return fail("cmd must be a string or an array of strings");
        }
        if (auto const* t = o.if_contains("timeout_ms"); t && !(t->is_int64() && t->get_int64() >= 0)) {
            return fail("timeout_ms must be a non-negative integer");
        }
        if (auto const* e = o.if_contains("env"); e && !e->is_object()) {
            return fail("env must be an object");
        }
        if (!o.if_contains("enabled")) {
            o["enabled"] = true;
        }
        out.push_back(std::move(o));
    }
    return out;
}

}  // namespace certctrl::service
