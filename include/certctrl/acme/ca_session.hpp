#pragma once
// What every order to one ACME CA shares in an instance: kept-alive connections, the directory, the unused
// nonces (a nonce of the CA serves any account), and the CA's limits: the request rate the operator set, and
// a pause whenever the CA answers 503 with Retry-After (the CA as a whole is busy; a rateLimited answer is
// about one account or set of names, so only its order waits, in acme::client). Requests waiting for the rate
// go in two lanes: those of orders a user waits for go before renewals. Use a session from one io_context
// (its waiters are released by a pacer running there).

#include "certctrl/core/error.hpp"
#include "certctrl/net/outbound.hpp"

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace certctrl::acme {

struct directory {
    std::string new_nonce;
    std::string new_account;
    std::string new_order;
    std::string renewal_info;  // RFC 9773 (ARI), "" when the CA has none
    bool eab_required = false;
};

/// Limits for one CA (issuance.ca_limits).
struct ca_limits {
    double requests_per_second = 0;     // this instance's requests to the CA; 0: no limit
    unsigned max_orders_in_flight = 0;  // orders PROCESSING over every instance; 0: no limit
    unsigned max_pause_seconds = 300;   // the longest pause a Retry-After may impose before the order fails
};

class ca_session {
  public:
    ca_session(std::string directory_url, net::outbound_options opts, ca_limits limits,
               std::shared_ptr<net::connection_pool> pool);

    std::string const& directory_url() const { return directory_url_; }
    ca_limits const& limits() const { return limits_; }

    /// Sends one request once the CA's request rate allows it and no pause is on (a pause longer than
    /// max_pause_seconds fails at once, retryable, with its retry_after); `urgent` requests (an order a user
    /// waits for) are let through before the others. Errors: as net::fetch.
    net::awaitable<result<net::outbound_response>> fetch(net::outbound_request req, bool urgent = true);
    /// The directory, fetched once and kept for an hour.
    net::awaitable<result<directory>> load_directory();
    std::optional<std::string> take_nonce();
    void give_nonce(std::string n);
    /// No request to this CA for `s` (the CA's Retry-After on a 503).
    void pause_for(std::chrono::seconds s);

    struct counters {
        std::uint64_t requests = 0;
        std::uint64_t rate_limited = 0;  // rateLimited / 429 answers seen
        std::uint64_t paused_ms = 0;     // time requests waited for the rate or a pause
    };
    counters stats() const;
    void count_rate_limited() { rate_limited_.fetch_add(1); }

  private:
    std::string directory_url_;
    net::outbound_options opts_;
    ca_limits limits_;
    std::shared_ptr<net::connection_pool> pool_;
    mutable std::mutex mu_;
    std::optional<directory> dir_;
    std::chrono::steady_clock::time_point dir_until_{};
    std::vector<std::string> nonces_;
    /// Waits until the rate lets this request go (its turn in its lane). Errors: a pause beyond the limit.
    net::awaitable<result<bool>> admit(bool urgent);
    net::awaitable<void> pace();
    struct waiter;
    std::chrono::steady_clock::time_point next_slot_{};  // the earliest time the next request may start
    std::deque<std::shared_ptr<waiter>> urgent_;  // shared: a waiter whose coroutine is gone stays valid
    std::deque<std::shared_ptr<waiter>> later_;
    bool pacing_ = false;
    std::atomic<std::uint64_t> requests_{0};
    std::atomic<std::uint64_t> rate_limited_{0};
    std::atomic<std::uint64_t> paused_ms_{0};
};

/// One ca_session per CA (directory URL and trust options) for the whole instance, over one connection pool.
class ca_sessions {
  public:
    /// `limits`: by directory URL (exact match); CAs not listed get ca_limits{}.
    explicit ca_sessions(std::map<std::string, ca_limits> limits = {});
    std::shared_ptr<ca_session> get(std::string const& directory_url, net::outbound_options const& opts);
    /// Every session so far (metrics).
    std::vector<std::shared_ptr<ca_session>> all() const;
    std::shared_ptr<net::connection_pool> pool() const { return pool_; }
    std::map<std::string, ca_limits> const& limits() const { return limits_; }

  private:
    std::map<std::string, ca_limits> limits_;
    std::shared_ptr<net::connection_pool> pool_;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<ca_session>> sessions_;
};

}  // namespace certctrl::acme
