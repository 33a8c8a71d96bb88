#pragma once
// Request budgets in fixed windows, counted in process and shared by every instance through MySQL in batches.

#include "certctrl/config/config.hpp"
#include "certctrl/core/error.hpp"
#include "certctrl/repo/identity.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace certctrl::service {

/// Fixed-window budgets (auth per client IP, API per user or device, issuance per user). A request is counted
/// in this instance's memory, with no query; every `sync_period` the counts are added to MySQL and the totals
/// of every instance read back. On one instance a limit is exact. With several, a client can exceed a budget
/// by what the other instances admit before their next sync: at most one sync period of its requests to each
/// of them (in the worst case, bursts timed on every instance at once, N budgets per window).
class rate_limiter {
  public:
    enum class limit {
        auth,
        issuance,
        api,
        login_account,
        anonymous,
        device_flow,
        device_flow_polls,
        self_ca_issuance
    };
    rate_limiter(repo::rate_limit_repository& repo, config::rate_limit_config cfg,
                 std::chrono::milliseconds sync_period = std::chrono::milliseconds(250))
        : repo_(repo), cfg_(cfg), sync_period_(sync_period) {}

    /// Counts one request against `which` for `key` (client IP or user id). Errors: rate_limited (429) with
    /// params {limit, budget, window_seconds, retry_after}.
    result<bool> check(limit which, std::string const& key);
    /// Gives back one check() of this window that turned out not to cost anything (if this instance has not
    /// shared it with the others yet).
    void refund(limit which, std::string const& key);
    /// check() without counting: the error when `key`'s budget is spent already.
    result<bool> peek(limit which, std::string const& key);
    /// Adds the counts made since the last sync to MySQL and reads back the shared totals. Errors: database.
    boost::asio::awaitable<result<bool>> sync();
    /// Runs sync() every sync period until the executor stops (co_spawn it once); a last sync when stopped.
    boost::asio::awaitable<void> run();
    /// Deletes counters of windows long over. Returns how many.
    boost::asio::awaitable<result<std::int64_t>> purge();

  private:
    result<bool> count(limit which, std::string const& key, bool spend, bool refund = false);

    struct bucket {
        std::int64_t window_start = 0;
        std::int64_t window_s = 60;
        std::int64_t shared = 0;   // the count in MySQL (every instance) at the last sync
        std::int64_t pending = 0;  // counted here since
        std::int64_t last_used = 0;
    };

    repo::rate_limit_repository& repo_;
    config::rate_limit_config cfg_;
    std::chrono::milliseconds sync_period_;
    std::mutex mu_;
    std::unordered_map<std::string, bucket> buckets_;
};

/// The budget key of a client address: an IPv4 address as it is, an IPv6 address as its /64 (one host
/// usually holds a whole /64, so per-address budgets would not limit it).
std::string client_budget_key(std::string_view ip);

}  // namespace certctrl::service
