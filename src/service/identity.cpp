#include "certctrl/service/identity.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/password.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/service/compute.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace certctrl::service {

namespace {

constexpr std::int64_t touch_every_s = 60;  // a session's last_seen_at is written at most once a minute
constexpr std::size_t secret_chars = 36;
constexpr std::int64_t max_key_lifetime_s = std::int64_t{10} * 366 * 24 * 3600;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

app_error unauthenticated(std::string what) {
    return make_error(errc::unauthenticated, std::move(what));
}

// Spends the time of a real verification when the user does not exist, so timing does not tell which
// emails have accounts.
std::string const& dummy_hash() {
    static std::string const h = crypto::hash_password("certctrl-timing-equaliser");
    return h;
}

}  // namespace

std::optional<app_error> check_email(std::string email) {
    if (email.empty() || email.size() > 254) {
        return make_error(errc::bad_request, "email must be 1-254 characters", {{"field", "email"}});
    }
    auto at = email.find('@');
    if (at == std::string::npos || at == 0 || at + 1 == email.size() ||
        email.find('@', at + 1) != std::string::npos) {
        return make_error(errc::bad_request, "email must look like name@domain", {{"field", "email"}});
    }
    for (unsigned char c : email) {
        if (c <= 0x20 || c == 0x7f) {
            return make_error(errc::bad_request, "email must not contain spaces or control characters",
                              {{"field", "email"}});
        }
    }
    return std::nullopt;
}

std::optional<app_error> check_new_password(std::string password) {
    if (password.size() < 8 || password.size() > 1024) {
        return make_error(errc::bad_request, "password must be 8-1024 bytes", {{"field", "password"}});
    }
    return std::nullopt;
}

boost::asio::awaitable<void> audit_service::record(std::optional<std::int64_t> user_id, std::string action,
                                                   std::string outcome, client_info client,
                                                   boost::json::object detail) {
    domain::audit_entry e;
    e.user_id = user_id;
    e.action = std::move(action);
    e.outcome = std::move(outcome);
    e.ip = client.ip;
    e.request_id = client.request_id;
    e.detail = std::move(detail);
    e.created_at = unix_now();
    auto aw_1 = repo_.append(std::move(e));
    auto r = co_await std::move(aw_1);
    if (!r) {
        spdlog::warn("rid={} audit record not written: {}", client.request_id, r.error().what);
    }
}

task<std::int64_t> auth_service::purge_sessions() {
    std::int64_t const now = unix_now();
    return sessions_.purge(now, now - cfg_.session_idle_timeout_s);
}

task<login_result> auth_service::login(std::string email_in, std::string password, std::string previous_id,
                                       client_info client) {
    std::string const email = lower(email_in);
    auto aw_3 = users_.find_by_email(email);
    auto found = co_await std::move(aw_3);
    if (!found) {
        co_return found.error();
    }
    // A named job, not a temporary: gcc 12 destroys temporaries inside a co_await expression twice.
    auto verify = [hash = *found ? (*found)->password_hash : std::string(), password]() -> result<bool> {
        // No user, or a user without a hash: spend the same time, and fail.
        bool const real = !hash.empty();
        bool const match = crypto::verify_password(real ? hash : dummy_hash(), password);
        return real && match;
    };
    auto aw_4 = run_bounded(hashing_, std::move(verify), "Password hashing");
    auto verified = co_await std::move(aw_4);
    if (!verified) {
        co_return verified.error();
    }
    bool const ok = *verified;
    if (!*found || !ok) {
        // Built outside the co_await: gcc 12 miscompiles brace-initialised objects inside one.
        boost::json::object detail;
        detail["email"] = email.substr(0, 254);
        detail["reason"] = "bad_credentials";
        auto aw_5 = audit_.record(*found ? std::optional<std::int64_t>((*found)->id) : std::nullopt,
                                  "login.failure", "denied", client, std::move(detail));
        co_await std::move(aw_5);
        co_return unauthenticated("Invalid email or password");
    }
    domain::user user = **found;
    if (!user.is_active()) {
        boost::json::object detail;
        detail["reason"] = "not_active";
        auto aw_6 = audit_.record(user.id, "login.failure", "denied", client, std::move(detail));
        co_await std::move(aw_6);
        co_return unauthenticated("Account is not active");
    }
    std::string const session_id = hex_encode(crypto::random_bytes(32));
    std::int64_t const now = unix_now();
    std::string const previous_hash = previous_id.empty() ? std::string() : crypto::sha256(previous_id);
    if (!previous_hash.empty()) {
        cache_.drop_session(previous_hash);  // this instance at once; the others through the epoch
    }
    auto aw_7 = sessions_.create(user.id, crypto::sha256(session_id), now, now + cfg_.session_ttl_s,
                                 client.ip, client.user_agent, previous_hash);
    auto created = co_await std::move(aw_7);
    if (!created) {
        co_return created.error();
    }
    auto aw_8 = audit_.record(user.id, "login.success", "ok", client);
    co_await std::move(aw_8);
    user.password_hash.clear();
    co_return login_result{session_id, std::move(user)};
}

task<bool> auth_service::logout(std::string session_id, std::optional<std::int64_t> user_id,
                                client_info client) {
    std::string const hash = crypto::sha256(session_id);
    cache_.drop_session(hash);  // this instance at once; the others through the epoch
    auto aw_9 = sessions_.remove(hash);
    auto removed = co_await std::move(aw_9);
    if (!removed) {
        co_return removed.error();
    }
    if (*removed) {
        auto aw_10 = audit_.record(user_id, "logout", "ok", client);
        co_await std::move(aw_10);
    }
    co_return *removed;
}

task<std::optional<domain::principal>> auth_service::from_session(std::string session_id) {
    if (session_id.size() != 64) {
        co_return std::optional<domain::principal>{};
    }
    std::string const hash = crypto::sha256(session_id);
    std::int64_t const now = unix_now();
    std::int64_t const idle_since = now - cfg_.session_idle_timeout_s;
    // A cached session still needs its own clock: expired or idle (as far as this instance saw it used) goes
    // to the database, which knows whether another instance used it since.
    auto row = cache_.session(hash);
    if (row && (row->expires_at <= now || row->last_seen_at < idle_since)) {
        cache_.drop_session(hash);
        row.reset();
    }
    if (!row) {
        std::int64_t const generation = cache_.generation();
        auto aw_11 = sessions_.find_live(hash, now, idle_since);
        auto found = co_await std::move(aw_11);
        if (!found) {
            co_return found.error();
        }
        if (!*found) {
            co_return std::optional<domain::principal>{};
        }
        row = std::move(*found);
        cache_.put_session(hash, *row, generation);
    }
    if (!row->user.is_active()) {
        co_return std::optional<domain::principal>{};
    }
    if (now - row->last_seen_at >= touch_every_s) {
        std::int64_t const generation = cache_.generation();
        auto aw_12 = sessions_.touch(row->id, now);
        auto touched = co_await std::move(aw_12);
        if (!touched) {
            co_return touched.error();
        }
        row->last_seen_at = now;
        cache_.put_session(hash, *row, generation);
    }
    domain::principal p;
    p.via = domain::principal::kind::session;
    p.who = std::move(row->user);
    p.who.password_hash.clear();
    p.session_hash = hash;
    co_return std::optional<domain::principal>(std::move(p));
}

task<domain::user> auth_service::create_user(std::string email, std::string password, bool admin) {
    return create_with_status(std::move(email), std::move(password), admin, "ACTIVE");
}

task<domain::user> auth_service::create_with_status(std::string email_in, std::string password, bool admin,
                                                    std::string status) {
    std::string const email = lower(email_in);
    if (auto e = check_email(email))
        co_return *e;
    if (auto e = check_new_password(password))
        co_return *e;
    domain::user u;
    u.email = email;
    auto hash_job = [password]() -> result<std::string> { return crypto::hash_password(password); };  // named
    auto aw_13 = run_bounded(hashing_, std::move(hash_job), "Password hashing");
    auto hash = co_await std::move(aw_13);
    if (!hash) {
        co_return hash.error();
    }
    u.password_hash = std::move(*hash);
    u.roles = admin ? std::vector<std::string>{"user", "admin"} : std::vector<std::string>{"user"};
    u.status = status;
    u.created_at = unix_now();
    auto aw_14 = users_.create(std::move(u));
    auto created = co_await std::move(aw_14);
    if (!created) {
        if (created.error().code == errc::conflict) {
            co_return make_error(errc::conflict, "A user with this email already exists",
                                 {{"field", "email"}});
        }
        co_return created.error();
    }
    created->password_hash.clear();
    co_return std::move(*created);
}

task<domain::user> auth_service::register_user(std::string email, std::string password, client_info client) {
    if (!cfg_.registration_enabled) {
        co_return make_error(errc::forbidden, "Registration is disabled on this server");
    }
    // Created INACTIVE in one statement: no moment, and no failure path, leaves it active unactivated.
    auto aw_create = create_with_status(email, password, false, "INACTIVE");
    auto created = co_await std::move(aw_create);
    if (!created && created.error().code == errc::conflict) {
        // An email that exists answers as a new one does (the password was hashed either way, so the time
        // is alike too): registration must not tell which emails have accounts. The attempt is audited.
        auto aw_dup =
            audit_.record(std::nullopt, "user.register", "duplicate", client, {{"email", lower(email)}});
        co_await std::move(aw_dup);
        domain::user shown;
        shown.email = lower(email);
        shown.status = "INACTIVE";
        co_return shown;
    }
    if (!created) {
        co_return created.error();
    }
    auto aw_audit = audit_.record(created->id, "user.register", "ok", client);
    co_await std::move(aw_audit);
    co_return std::move(*created);
}

task<domain::user> auth_service::activate(std::string email, std::string code, client_info client) {
    if (!cfg_.registration_enabled) {
        co_return make_error(errc::forbidden, "Registration is disabled on this server");
    }
    auto aw_18 = users_.find_by_email(lower(email));
    auto found = co_await std::move(aw_18);
    if (!found) {
        co_return found.error();
    }
    if (!*found || !crypto::constant_time_equal(code, cfg_.activation_code)) {
        auto aw_19 = audit_.record(*found ? std::optional<std::int64_t>((*found)->id) : std::nullopt,
                                   "user.activate", "denied", client);
        co_await std::move(aw_19);
        co_return make_error(errc::bad_request, "Unknown email or wrong activation code",
                             {{"field", "verify_code"}});
    }
    if ((*found)->status == "DISABLED") {
        co_return make_error(errc::forbidden, "This account is disabled");
    }
    if ((*found)->status == "INACTIVE") {
        auto aw_20 = users_.set_status((*found)->id, "ACTIVE");
        auto st = co_await std::move(aw_20);
        if (!st) {
            co_return st.error();
        }
        auto aw_21 = audit_.record((*found)->id, "user.activate", "ok", client);
        co_await std::move(aw_21);
    }
    domain::user u = **found;
    u.status = "ACTIVE";
    u.password_hash.clear();
    co_return u;
}

task<created_api_key> api_key_service::create(domain::principal const& actor, std::int64_t user_id,
                                              std::string name, std::int64_t expires_in_seconds,
                                              std::vector<domain::permission> permissions,
                                              client_info client) {
    if (name.empty() || name.size() > 128) {
        co_return make_error(errc::bad_request, "name must be 1-128 characters", {{"field", "name"}});
    }
    if (expires_in_seconds < 60 || expires_in_seconds > max_key_lifetime_s) {
        co_return make_error(
            errc::bad_request,
            "expires_in_seconds must be between 60 and " + std::to_string(max_key_lifetime_s),
            {{"field", "expires_in_seconds"}});
    }
    // Only actions some route enforces may be granted: a key never holds a scope that looks meaningful and
    // is not.
    if (auto ok = domain::check_grantable(permissions); !ok) {
        co_return ok.error();
    }
    if (actor.is_api_key() && !domain::covers(actor.permissions, permissions)) {
        co_return make_error(errc::forbidden,
                             "An API key can only create keys with permissions it holds itself");
    }
    if (actor.is_api_key() && unix_now() + expires_in_seconds > actor.api_key_expires_at) {
        co_return make_error(errc::forbidden, "An API key can only create keys that expire before it does",
                             {{"field", "expires_in_seconds"}});
    }
    domain::api_key k;
    k.user_id = user_id;
    k.key_id = hex_encode(crypto::random_bytes(16));
    std::string const secret = crypto::random_base62(secret_chars);
    k.secret_hash = crypto::sha256(secret);
    k.name = name;
    k.permissions = std::move(permissions);
    k.created_at = unix_now();
    k.expires_at = k.created_at + expires_in_seconds;
    auto aw_22 = keys_.create(std::move(k));
    auto created = co_await std::move(aw_22);
    if (!created) {
        co_return created.error();
    }
    boost::json::array scopes;
    for (auto const& p : created->permissions) {
        scopes.emplace_back(p.to_string());
    }
    boost::json::object detail;
    detail["apikey_id"] = created->id;
    detail["name"] = created->name;
    detail["scopes"] = std::move(scopes);
    auto aw_23 = audit_.record(user_id, "apikey.create", "ok", client, std::move(detail));
    co_await std::move(aw_23);
    co_return created_api_key{*created, "ak_" + created->key_id + "." + secret};
}

task<domain::api_key> api_key_service::get(std::int64_t user_id, std::int64_t id) {
    auto aw_24 = keys_.get(user_id, id);
    auto k = co_await std::move(aw_24);
    if (!k) {
        co_return k.error();
    }
    if (!*k) {
        co_return make_error(errc::not_found, "API key not found");
    }
    co_return std::move(**k);
}

task<bool> api_key_service::remove(std::int64_t user_id, std::int64_t id, client_info client) {
    auto aw_25 = keys_.remove(user_id, id);
    auto removed = co_await std::move(aw_25);
    if (!removed) {
        co_return removed.error();
    }
    if (!*removed) {
        co_return make_error(errc::not_found, "API key not found");
    }
    cache_.drop_key(**removed);  // this instance at once; the others through the epoch
    boost::json::object detail;
    detail["apikey_id"] = id;
    auto aw_26 = audit_.record(user_id, "apikey.delete", "ok", client, std::move(detail));
    co_await std::move(aw_26);
    co_return true;
}

task<domain::principal> api_key_service::authenticate(std::string token) {
    // ak_<32 hex>.<secret>
    if (token.size() != 3 + 32 + 1 + secret_chars || token.compare(0, 3, "ak_") != 0 || token[35] != '.') {
        co_return unauthenticated("Malformed API key");
    }
    std::string const key_id = token.substr(3, 32);
    if (!hex_decode(key_id)) {
        co_return unauthenticated("Malformed API key");
    }
    auto entry = cache_.key(key_id);
    if (!entry) {
        std::int64_t const generation = cache_.generation();
        auto aw_27 = keys_.find_by_key_id(key_id);
        auto found = co_await std::move(aw_27);
        if (!found) {
            co_return found.error();
        }
        if (!*found) {
            co_return unauthenticated("Invalid API key");
        }
        entry = principal_cache::key_entry{std::move((*found)->first), std::move((*found)->second)};
        entry->owner.password_hash.clear();
        cache_.put_key(key_id, *entry, generation);
    }
    if (!crypto::constant_time_equal(crypto::sha256(token.substr(36)), entry->key.secret_hash)) {
        co_return unauthenticated("Invalid API key");
    }
    auto& [key, owner] = *entry;
    if (key.expires_at <= unix_now()) {
        co_return unauthenticated("API key expired");
    }
    if (!owner.is_active()) {
        co_return unauthenticated("The key's owner is not active");
    }
    domain::principal p;
    p.via = domain::principal::kind::api_key;
    p.who = std::move(owner);
    p.who.password_hash.clear();
    p.api_key_id = key.id;
    p.api_key_expires_at = key.expires_at;
    p.permissions = std::move(key.permissions);
    co_return p;
}

}  // namespace certctrl::service
