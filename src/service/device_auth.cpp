#include "certctrl/service/device_auth.hpp"

#include "certctrl/acme/jws.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/sodium.hpp"

#include <boost/json.hpp>

#include <cctype>
#include <charconv>
#include <chrono>

namespace certctrl::service {

app_error device_quota_error(std::size_t quota) {
    return make_error(errc::forbidden,
                      "Device quota reached: this account may register at most " + std::to_string(quota) +
                          " devices (devices.max_devices_per_user); delete unused devices first",
                      {{"limit", "devices"}, {"quota", quota}});
}

namespace {

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

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

app_error session_ended() {
    return make_error(errc::unauthenticated, "The refresh token has expired or its session ended");
}

}  // namespace

// -------------------------------------------------------------------------------------- device auth

device_auth_service::device_auth_service(repo::repositories& r, device_keys const& wraps,
                                         crypto::keyring const& keys, config::devices_config const& cfg,
                                         std::string public_url)
    : r_(r), wraps_(wraps), keys_(keys), cfg_(cfg) {
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
    std::string const code_hash = hash_of(g.device_code);
    // A taken user code (one in 2^40 per live grant) draws another, in the same unit of work.
    auto op =
        r_.db->read([this, &code_hash, &joined, interval, expires_in](repo::work& w) -> result<std::string> {
            for (int attempt = 0; attempt < 5; ++attempt) {
                std::string code = new_user_code();
                if (r_.grants->insert(w, code_hash, code, joined, interval, unix_now() + expires_in,
                                      unix_now())) {
                    return code;
                }
            }
            return make_error(errc::unavailable, "Could not draw a free user code; try again");
        });
    auto code = co_await std::move(op);
    if (!code) {
        co_return code.error();
    }
    g.user_code = std::move(*code);
    g.verification_uri = verification_uri_;
    g.verification_uri_complete = verification_uri_ + "?user_code=" + g.user_code;
    co_return g;
}

task<std::string> device_auth_service::verify(std::int64_t user_id, std::string user_code, bool approve,
                                              std::optional<std::string> device_public_id) {
    std::string const code = normalize_user_code(user_code);
    if (code.empty()) {
        co_return make_error(errc::bad_request, "user_code must look like XXXX-XXXX",
                             {{"field", "user_code"}});
    }
    if (device_public_id) {
        auto uuid = domain::normalize_uuid(*device_public_id);
        if (!uuid) {
            co_return make_error(errc::bad_request, "device_public_id must be a UUID",
                                 {{"field", "device_public_id"}});
        }
        device_public_id = std::move(*uuid);
    }
    auto op = r_.db->transact(
        [this, &code, user_id, approve, &device_public_id](repo::work& w) -> result<std::string> {
            auto g = r_.grants->lock_by_user_code(w, code, unix_now());
            // A grant another user decided is as unknown to this one as a code that never existed.
            if (!g || (g->status != "PENDING" && g->user_id && *g->user_id != user_id)) {
                return make_error(errc::not_found, "No pending device authorization with this user_code");
            }
            if (device_public_id && approve) {
                auto d = r_.devices->lock_by_public_id(w, *device_public_id);
                if (!d || d->user_id != user_id) {
                    return make_error(errc::not_found, "You have no device with this device_public_id",
                                      {{"field", "device_public_id"}});
                }
            }
            std::string status = g->status;
            if (status == "PENDING") {
                status = approve ? "APPROVED" : "DENIED";
                r_.grants->decide(w, g->id, status, user_id, approve ? device_public_id : std::nullopt);
            }
            return std::string(status == "DENIED" ? "denied" : "approved");
        });
    co_return co_await std::move(op);
}

task<device_auth_service::poll_answer> device_auth_service::poll(std::string device_code) {
    std::string const registration_code = "rc_" + crypto::random_base62(32);
    return r_.db->transact(
        [this, code_hash = hash_of(device_code), registration_code](repo::work& w) -> result<poll_answer> {
            auto g = r_.grants->lock_by_device_code(w, code_hash);
            if (!g) {
                return make_error(errc::not_found, "Unknown device_code");
            }
            poll_answer a;
            a.interval = g->interval_s;
            std::int64_t const now = now_ms();
            if (g->expires_at * 1000 <= now || g->status == "ISSUED") {
                a.status = "expired";
                return a;
            }
            // A poll sooner than the interval (with a little leeway for timer jitter) slows the device down:
            // RFC 8628 3.5 has the client add 5 s; the server remembers the new interval.
            bool const too_fast = g->last_poll_ms > 0 && now - g->last_poll_ms < g->interval_s * 1000 - 500;
            if (too_fast) {
                a.interval += 5;
            }
            r_.grants->note_poll(w, g->id, now, a.interval);
            if (too_fast) {
                a.status = "slow_down";
            } else if (g->status == "PENDING") {
                a.status = "authorization_pending";
            } else if (g->status == "DENIED") {
                a.status = "access_denied";
            } else {
                r_.grants->issue(w, g->id, hash_of(registration_code),
                                 unix_now() + cfg_.registration_code_ttl_seconds);
                a.status = "ready";
                a.user_id = g->user_id.value_or(0);
                a.registration_code = registration_code;
                a.registration_code_ttl = cfg_.registration_code_ttl_seconds;
            }
            return a;
        });
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
    repo::device_registration reg, std::optional<std::string> registration_code, rekey_proof proof) {
    if (reg.public_key.size() != crypto::x25519_key_bytes) {
        co_return make_error(errc::bad_request, "dev_pk must be the base64 of a 32-byte X25519 public key",
                             {{"field", "dev_pk"}});
    }
    if (!crypto::x25519_public_key_usable(reg.public_key)) {
        co_return make_error(
            errc::bad_request,
            "dev_pk is a low-order X25519 point: keys sealed to it would be readable by anyone",
            {{"field", "dev_pk"}});
    }
    std::string refresh = "rt_" + crypto::random_base62(43);
    std::optional<std::string> code_hash;
    if (registration_code) {
        code_hash = hash_of(*registration_code);
    }
    struct registered {
        domain::device device;
        repo::device_session session;
        bool created = false;
    };
    auto op = r_.db->transact([this, &reg, &code_hash, &refresh,
                               &proof](repo::work& w) -> result<registered> {
        std::int64_t const now = unix_now();
        std::optional<repo::device_grant_repository::registration_code> code;
        if (code_hash) {
            code = r_.grants->lock_registration(w, *code_hash);
            if (!code || code->user_id.value_or(0) != reg.user_id || code->expires_at <= now) {
                return make_error(errc::unauthenticated,
                                  "registration_code is unknown, expired, or not for this user");
            }
            if (code->device_id) {
                return make_error(errc::unauthenticated, "registration_code was already used");
            }
        }
        registered out;
        r_.devices->lock_user(w, reg.user_id);  // one registration of a user at a time (no deadlocks)
        auto found = r_.devices->lock_by_public_id(w, reg.device_public_id);
        if (found) {
            if (found->user_id != reg.user_id) {
                // The same answer as for one's own device without proof: nothing says whose it is.
                return make_error(errc::conflict,
                                  "device_public_id " + reg.device_public_id +
                                      " is already registered; registering it again needs proof tied to it",
                                  {{"field", "device_public_id"}});
            }
            if (found->status != "ACTIVE") {
                // A revoked or lost device stays out until its user takes it back: registering again must
                // not swap in a new key that every assigned certificate would be sealed to.
                return make_error(errc::forbidden, "The device is " + found->status +
                                                       "; its user must set it ACTIVE again (PUT "
                                                       ".../devices/:device_id) before it registers");
            }
        }
        std::int64_t const device_id = found ? found->id : 0;
        if (found && !may_register_again(w, *found, reg.device_public_id,
                                         code ? code->approved_device_public_id : std::nullopt, proof, now)) {
            return make_error(errc::conflict,
                              "device_public_id " + reg.device_public_id +
                                  " is already registered; registering it again needs its current "
                                  "refresh_token, a device authorization approved for this device "
                                  "(device_verify with its device_public_id), or devices:" +
                                  std::to_string(device_id) + "[write]",
                              {{"field", "device_public_id"}});
        }
        std::string const fp = crypto::blake2b_256(reg.public_key);
        if (found) {
            r_.devices->update_registered(w, device_id, reg, fp, now);
            // Earlier sessions end: the agent that registers now holds the only live one.
            r_.device_sessions->end_all(w, device_id, "re-registered", now);
        } else {
            out.created = true;
        }
        if (!found && cfg_.max_devices_per_user > 0 &&
            r_.devices->count_locked(w, reg.user_id) >=
                static_cast<std::int64_t>(cfg_.max_devices_per_user)) {
            return device_quota_error(cfg_.max_devices_per_user);
        }
        std::int64_t const id = found ? device_id : r_.devices->insert_registered(w, reg, fp, now);
        if (code) {
            r_.grants->mark_registered(w, code->id, id);  // spent
        }
        if (!found || found->public_key != reg.public_key) {
            // A new device key: every assignment is sealed again to it (or marked pending).
            for (auto cert_id : r_.assignments->certificates_of(w, id)) {
                wraps_.wrap(w, cert_id, id);
            }
            if (found) {
                // Whatever the agent cached was sealed to its old key: it fetches everything again.
                wraps_.signals().emit(
                    w, id, "state.resync_required",
                    boost::json::object{{"action", "full_resync"}, {"reason", "device_rekeyed"}});
            }
        }
        std::int64_t const expires = now + cfg_.refresh_token_ttl_seconds;
        out.session = {r_.device_sessions->open(w, id, reg.user_id, now, expires), id, reg.user_id};
        r_.device_sessions->add_refresh_token(w, hash_of(refresh), out.session.session_id, expires, now);
        out.device = *r_.devices->by_id(w, id);
        return out;
    });
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

bool device_auth_service::may_register_again(repo::work& w, repo::device_repository::identity const& existing,
                                             std::string const& public_id,
                                             std::optional<std::string> const& approved_public_id,
                                             rekey_proof const& proof, std::int64_t now) const {
    if (approved_public_id && *approved_public_id == public_id) {
        return true;  // the user approved this grant for this device
    }
    if (proof.may_write_device && proof.may_write_device(existing.id)) {
        return true;
    }
    if (!proof.refresh_token.empty() && proof.refresh_token.size() <= 256) {
        // The device's own live refresh token (not a rotated one: that is a stolen family's).
        auto t = r_.device_sessions->lock_refresh_token(w, hash_of(proof.refresh_token));
        return t && t->session.device_id == existing.id && t->rotated_at == 0 && t->terminated_at == 0 &&
               t->expires_at > now;
    }
    return false;
}

result<device_auth_service::rotated> device_auth_service::rotate(repo::work& w,
                                                                 std::string const& refresh_token,
                                                                 std::int64_t expect_user,
                                                                 std::string const& expect_public_id) const {
    std::int64_t const now = unix_now();
    std::string const old_hash = hash_of(refresh_token);
    auto t = r_.device_sessions->lock_refresh_token(w, old_hash);
    if (!t) {
        return make_error(errc::unauthenticated, "Unknown refresh token");
    }
    if ((expect_user != 0 && t->session.user_id != expect_user) ||
        (!expect_public_id.empty() && t->device_public_id != expect_public_id)) {
        return make_error(errc::unauthenticated, "refresh_token does not belong to this device");
    }
    if (t->rotated_at != 0 || t->terminated_reason == "refresh_token_reuse") {
        // Reuse of a rotated token: someone else may hold the family, so all of it ends (committed by the
        // caller, which answers refresh_token_rotated).
        r_.device_sessions->end(w, t->session.session_id, "refresh_token_reuse", now);
        return rotated{t->session, ""};
    }
    if (t->expires_at <= now || t->terminated_at != 0 || t->device_status != "ACTIVE") {
        return session_ended();
    }
    rotated out{t->session, "rt_" + crypto::random_base62(43)};
    std::int64_t const expires = now + cfg_.refresh_token_ttl_seconds;
    r_.device_sessions->mark_rotated(w, old_hash, now);
    r_.device_sessions->add_refresh_token(w, hash_of(out.refresh_token), out.session.session_id, expires,
                                          now);
    r_.device_sessions->extend(w, out.session.session_id, expires);
    return out;
}

namespace {

app_error rotated_error() {
    return make_error(errc::refresh_token_rotated,
                      "Refresh token was rotated; the session is revoked (login again)");
}

}  // namespace

task<device_tokens> device_auth_service::refresh(std::string refresh_token) {
    if (refresh_token.empty() || refresh_token.size() > 256) {
        co_return make_error(errc::bad_request, "refresh_token is required", {{"field", "refresh_token"}});
    }
    auto op =
        r_.db->transact([this, &refresh_token](repo::work& w) { return rotate(w, refresh_token, 0, ""); });
    auto r = co_await std::move(op);
    if (!r) {
        co_return r.error();
    }
    if (r->refresh_token.empty()) {
        co_return rotated_error();  // the reuse ended the session (committed)
    }
    co_return mint(r->session, std::move(r->refresh_token));
}

task<device_auth_service::registration_answer> device_auth_service::re_register(
    std::string refresh_token, std::int64_t user_id, std::string device_public_id) {
    struct out_t {
        rotated r;
        std::optional<domain::device> device;
    };
    auto op =
        r_.db->transact([this, &refresh_token, user_id, &device_public_id](repo::work& w) -> result<out_t> {
            CERTCTRL_TRY(r, rotate(w, refresh_token, user_id, device_public_id));
            out_t out{std::move(r), std::nullopt};
            if (!out.r.refresh_token.empty()) {
                out.device = r_.devices->by_id(w, out.r.session.device_id);
            }
            return out;
        });
    auto r = co_await std::move(op);
    if (!r) {
        co_return r.error();
    }
    if (r->r.refresh_token.empty()) {
        co_return rotated_error();
    }
    if (!r->device) {
        co_return make_error(errc::unauthenticated, "The device of this token no longer exists");
    }
    registration_answer a;
    a.device = std::move(*r->device);
    a.tokens = mint(r->r.session, std::move(r->r.refresh_token));
    co_return a;
}

bool device_auth_service::signed_here(std::string_view token) const {
    return verify_device_token(keys_, token, unix_now()).has_value();
}

task<domain::principal> device_auth_service::authenticate(std::string token) {
    auto claims = verify_device_token(keys_, token, unix_now());
    if (!claims) {
        co_return claims.error();
    }
    auto op = r_.db->read([this, c = *claims](repo::work& w) -> result<bool> {
        auto dev = r_.devices->with_session(w, c.device_id, c.session_id);
        if (!dev) {
            return make_error(errc::unauthenticated, "The device of this token no longer exists");
        }
        if (dev->first.user_id != c.user_id) {
            return make_error(errc::forbidden, "The device does not belong to the token's user");
        }
        if (dev->first.status != "ACTIVE") {
            return make_error(errc::forbidden, "The device is " + dev->first.status);
        }
        if (!dev->second) {
            return make_error(errc::unauthenticated,
                              "The device session of this token has ended, or its user is not active");
        }
        return true;
    });
    auto ok = co_await std::move(op);
    if (!ok) {
        co_return ok.error();
    }
    domain::principal p;
    p.via = domain::principal::kind::device;
    p.who.id = claims->user_id;
    p.who.status = "ACTIVE";
    p.device_id = claims->device_id;
    p.device_session_id = claims->session_id;
    p.token_expires_at = claims->expires_at;
    co_return p;
}

task<domain::device> device_auth_service::update_device(std::int64_t user_id, std::int64_t device_id,
                                                        std::string status, std::string name) {
    return r_.db->transact([this, user_id, device_id, status, name](repo::work& w) -> result<domain::device> {
        if (!r_.devices->update(w, user_id, device_id, status, name)) {
            return make_error(errc::not_found, "Device not found");
        }
        auto dev = r_.devices->get(w, user_id, device_id);
        if (dev->status != "ACTIVE") {
            r_.device_sessions->end_all(w, device_id, "revoked", unix_now());
        }
        return std::move(*dev);
    });
}

task<std::int64_t> device_auth_service::purge() {
    return r_.db->read([this](repo::work& w) -> result<std::int64_t> {
        std::int64_t const now = unix_now();
        return r_.grants->purge(w, now - 3600) + r_.device_sessions->purge(w, now, now - 30 * 86400);
    });
}

}  // namespace certctrl::service
