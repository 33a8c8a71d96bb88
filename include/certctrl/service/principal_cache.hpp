#pragma once
// API keys and sessions verified from memory. Every change that must end them (a key deleted, a session
// ended, a user's status changed) moves the revocation epoch in MySQL in its own transaction; each instance
// reads the epoch every 250 ms and drops everything cached when it moved. The cache is used only while the
// epoch was confirmed within the last second, so a revocation takes effect on every instance within about 250
// ms, and never later than a second even when the database is slow to answer.

#include "certctrl/domain/api_key.hpp"
#include "certctrl/domain/user.hpp"
#include "certctrl/repo/identity.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace certctrl::service {

class principal_cache {
  public:
    using clock = std::chrono::steady_clock;

    principal_cache(repo::auth_epoch_repository& epoch,
                    std::chrono::milliseconds period = std::chrono::milliseconds(250),
                    std::chrono::milliseconds trust_for = std::chrono::milliseconds(1000),
                    std::size_t capacity = 100000)
        : epoch_(epoch), period_(period), trust_for_(trust_for), capacity_(capacity) {}

    struct key_entry {
        domain::api_key key;
        domain::user owner;
    };
    /// The epoch seen last. Take it before reading a credential from the database and hand it to put_*(): an
    /// entry read before a revocation the cache has already dropped must not come back.
    std::int64_t generation() const;

    /// A cached key by its public id (while the cache is trusted).
    std::optional<key_entry> key(std::string const& key_id) const;
    /// Caches a key read from the database at `generation` (ignored when the epoch moved since).
    void put_key(std::string const& key_id, key_entry e, std::int64_t generation);
    void drop_key(std::string const& key_id);

    /// A cached session by its token hash (while the cache is trusted).
    std::optional<repo::session_row> session(std::string const& token_hash) const;
    /// Caches a session read from the database at `generation` (ignored when the epoch moved since).
    void put_session(std::string const& token_hash, repo::session_row row, std::int64_t generation);
    void drop_session(std::string const& token_hash);

    /// Records an epoch read at `when`: a new value drops everything cached.
    void confirm(std::int64_t epoch, clock::time_point when);
    /// True while the epoch was confirmed within `trust_for`.
    bool trusted(clock::time_point now = clock::now()) const;
    std::size_t size() const;
    /// Lookups answered from memory, and lookups that had to go to the database.
    std::uint64_t hits() const { return hits_; }
    std::uint64_t misses() const { return misses_; }

    /// Reads the epoch every period until the executor stops (co_spawn it once).
    boost::asio::awaitable<void> run();

  private:
    void make_room();

    repo::auth_epoch_repository& epoch_;
    std::chrono::milliseconds period_;
    std::chrono::milliseconds trust_for_;
    std::size_t capacity_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, key_entry> keys_;
    std::unordered_map<std::string, repo::session_row> sessions_;
    std::int64_t epoch_value_ = -1;
    std::atomic<clock::rep> confirmed_at_{0};  // clock ticks of the last confirmation; 0: never
    mutable std::atomic<std::uint64_t> hits_{0};
    mutable std::atomic<std::uint64_t> misses_{0};
};

}  // namespace certctrl::service
