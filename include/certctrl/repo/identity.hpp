#pragma once

#include "certctrl/core/error.hpp"
#include "certctrl/domain/api_key.hpp"
#include "certctrl/domain/audit.hpp"
#include "certctrl/domain/user.hpp"
#include "certctrl/repo/page.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>

namespace certctrl::repo {

template <class T>
using task = boost::asio::awaitable<result<T>>;

/// Users. Errors: conflict (duplicate email), database.
class user_repository {
  public:
    virtual ~user_repository() = default;
    virtual task<domain::user> create(domain::user u) = 0;
    virtual task<std::optional<domain::user>> find_by_email(std::string email) = 0;
    virtual task<std::optional<domain::user>> find_by_id(std::int64_t id) = 0;
    /// Sets the status and, in the same transaction, moves the revocation epoch (cached credentials of the
    /// user end on every instance). False when there is no such user.
    virtual task<bool> set_status(std::int64_t id, std::string status) = 0;
};

/// A live session found by its token hash.
struct session_row {
    std::int64_t id = 0;
    std::int64_t last_seen_at = 0;
    std::int64_t expires_at = 0;
    domain::user user;
};

/// Sessions, stored by the SHA-256 of their id only.
class session_repository {
  public:
    virtual ~session_repository() = default;
    /// Creates a session; when `replaces` is non-empty the session with that hash is deleted in the same
    /// transaction (rotation at login), which moves the revocation epoch.
    virtual task<std::int64_t> create(std::int64_t user_id, std::string token_hash, std::int64_t now,
                                      std::int64_t expires_at, std::string ip, std::string user_agent,
                                      std::string replaces) = 0;
    /// The session if it exists, is not expired and was used since `idle_since`; expired ones are deleted.
    virtual task<std::optional<session_row>> find_live(std::string token_hash, std::int64_t now,
                                                       std::int64_t idle_since) = 0;
    virtual task<bool> touch(std::int64_t id, std::int64_t now) = 0;
    /// Deletes the session and moves the revocation epoch, in one transaction. False when there was none.
    virtual task<bool> remove(std::string token_hash) = 0;
    /// Deletes sessions expired at `now` or unused since `idle_since`; returns how many.
    virtual task<std::int64_t> purge(std::int64_t now, std::int64_t idle_since) = 0;
};

/// API keys.
class api_key_repository {
  public:
    virtual ~api_key_repository() = default;
    virtual task<domain::api_key> create(domain::api_key k) = 0;
    virtual task<page<domain::api_key>> list(std::int64_t user_id, page_query q) = 0;
    virtual task<std::optional<domain::api_key>> get(std::int64_t user_id, std::int64_t id) = 0;
    /// Deletes the key and moves the revocation epoch, in one transaction; the key's public id, or nothing
    /// when the user had no such key.
    virtual task<std::optional<std::string>> remove(std::int64_t user_id, std::int64_t id) = 0;
    /// The key and its owner by the public key id (expired keys included: the caller decides).
    virtual task<std::optional<std::pair<domain::api_key, domain::user>>> find_by_key_id(
        std::string key_id) = 0;
};

/// The audit log.
class audit_repository {
  public:
    virtual ~audit_repository() = default;
    virtual task<std::int64_t> append(domain::audit_entry e) = 0;
    virtual task<page<domain::audit_entry>> list(std::int64_t user_id, page_query q) = 0;
};

/// A bucket's count in one fixed window.
struct rate_count {
    std::string bucket;
    std::int64_t window_start = 0;
    std::int64_t count = 0;
};

/// Shared request counters, synchronised in batches by each instance's rate limiter.
class rate_limit_repository {
  public:
    virtual ~rate_limit_repository() = default;
    /// Adds each delta's count to its bucket (a bucket whose stored window is older starts over at the
    /// delta), then returns the stored counts of those buckets and of `also_read`, in one transaction.
    virtual task<std::vector<rate_count>> add(std::vector<rate_count> deltas,
                                              std::vector<std::string> also_read) = 0;
    /// Deletes counters whose window started before `before`; returns how many.
    virtual task<std::int64_t> purge(std::int64_t before) = 0;
};

/// The revocation epoch: a counter every change that must end cached credentials moves (in its own
/// transaction), so each instance can drop its cache of API keys and sessions when it reads a new value.
class auth_epoch_repository {
  public:
    virtual ~auth_epoch_repository() = default;
    virtual task<std::int64_t> current() = 0;
};

}  // namespace certctrl::repo
