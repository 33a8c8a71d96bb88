#pragma once

#include "certctrl/config/config.hpp"
#include "certctrl/core/error.hpp"
#include "certctrl/domain/principal.hpp"
#include "certctrl/repo/identity.hpp"
#include "certctrl/service/principal_cache.hpp"
#include "certctrl/service/rate_limiter.hpp"

#include <boost/asio/awaitable.hpp>
#include "certctrl/service/compute.hpp"

#include <boost/asio/thread_pool.hpp>

#include <optional>
#include <string>

namespace certctrl::service {

template <class T>
using task = boost::asio::awaitable<result<T>>;

/// Who sent a request, for audit records and rate limits.
struct client_info {
    std::string ip;
    std::string user_agent;
    std::string request_id;
};

/// Writes audit records. A failure to write is logged, never returned: it must not change the outcome of
/// the request being audited.
class audit_service {
  public:
    explicit audit_service(repo::audit_repository& repo) : repo_(repo) {}
    boost::asio::awaitable<void> record(std::optional<std::int64_t> user_id, std::string action,
                                        std::string outcome, client_info client,
                                        boost::json::object detail = {});
    task<repo::page<domain::audit_entry>> list(std::int64_t user_id, repo::page_query q) {
        return repo_.list(user_id, q);
    }

  private:
    repo::audit_repository& repo_;
};

/// Outcome of a successful login: the new session id (only ever sent in the cookie) and the user.
struct login_result {
    std::string session_id;
    domain::user user;
};

/// Users, password login and sessions.
class auth_service {
  public:
    auth_service(repo::user_repository& users, repo::session_repository& sessions, audit_service& audit,
                 principal_cache& cache, bounded_pool& hashing, config::auth_config cfg)
        : users_(users),
          sessions_(sessions),
          audit_(audit),
          cache_(cache),
          hashing_(hashing),
          cfg_(std::move(cfg)) {}

    /// Checks email and password and opens a new session; the session `previous_id` (if any) is deleted.
    /// Errors: unauthenticated (wrong email or password, or account not active), database.
    task<login_result> login(std::string email, std::string password, std::string previous_id,
                             client_info client);
    /// Ends the session. Errors: database.
    task<bool> logout(std::string session_id, std::optional<std::int64_t> user_id, client_info client);
    /// The principal of a live session, or nothing: from the credential cache when it holds the session, else
    /// from the database (then cached). Errors: database.
    task<std::optional<domain::principal>> from_session(std::string session_id);
    /// Creates an ACTIVE user (operators' CLI). Errors: bad_request (email/password), conflict, database.
    task<domain::user> create_user(std::string email, std::string password, bool admin);
    /// Self-registration (when enabled): an INACTIVE user. Errors: forbidden (disabled), bad_request,
    /// conflict.
    task<domain::user> register_user(std::string email, std::string password, client_info client);
    /// Activates an INACTIVE user with the operator's activation code. Errors: forbidden, bad_request.
    task<domain::user> activate(std::string email, std::string code, client_info client);

    /// Deletes expired and idle sessions. Returns how many.
    task<std::int64_t> purge_sessions();

    config::auth_config const& settings() const { return cfg_; }

  private:
    task<domain::user> create_with_status(std::string email, std::string password, bool admin,
                                          std::string status);

    repo::user_repository& users_;
    repo::session_repository& sessions_;
    audit_service& audit_;
    principal_cache& cache_;
    bounded_pool& hashing_;  // Argon2 only, so no other work can hold up a login
    config::auth_config cfg_;
};

/// A created key: its metadata and the token, which is shown once and never stored.
struct created_api_key {
    domain::api_key key;
    std::string token;
};

/// API keys: `ak_<32 hex key id>.<36 base62 secret>`; only SHA-256 of the secret is stored.
class api_key_service {
  public:
    api_key_service(repo::api_key_repository& keys, audit_service& audit, principal_cache& cache)
        : keys_(keys), audit_(audit), cache_(cache) {}

    /// Creates a key for `user_id`. A key acting for its user may only grant what it holds.
    /// Errors: bad_request (name, expiry, permissions), forbidden (escalation), database.
    task<created_api_key> create(domain::principal const& actor, std::int64_t user_id, std::string name,
                                 std::int64_t expires_in_seconds, std::vector<domain::permission> permissions,
                                 client_info client);
    task<repo::page<domain::api_key>> list(std::int64_t user_id, repo::page_query q) {
        return keys_.list(user_id, q);
    }
    /// Errors: not_found.
    task<domain::api_key> get(std::int64_t user_id, std::int64_t id);
    /// Deletes at once: the next request with that key fails. Errors: not_found, database.
    task<bool> remove(std::int64_t user_id, std::int64_t id, client_info client);
    /// The principal of a Bearer token, verified against the cached key (else the stored one, then cached).
    /// Errors: unauthenticated (malformed, unknown, wrong secret, expired, owner not active), database.
    task<domain::principal> authenticate(std::string token);

  private:
    repo::api_key_repository& keys_;
    audit_service& audit_;
    principal_cache& cache_;
};

/// Validates an email address as accepted by this server (1-254 chars, one '@', no spaces or controls).
std::optional<app_error> check_email(std::string email);
/// Validates a new password (8-1024 bytes).
std::optional<app_error> check_new_password(std::string password);

}  // namespace certctrl::service
