#pragma once
// The webhook sender of an instance: claims due deliveries (any instance, SKIP LOCKED, a lease past the
// attempt's timeout), POSTs each signed event as a coroutine on the I/O thread, and records the outcome:
// delivered, again later (exponential backoff with jitter), or given up after webhooks.give_up_after_seconds.
// It also looks for certificates crossing the expiry thresholds and trims the delivery log.

#include "certctrl/config/config.hpp"
#include "certctrl/net/egress.hpp"
#include "certctrl/net/outbound.hpp"
#include "certctrl/service/webhooks.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <string>

namespace certctrl::worker {

class webhook_sender {
  public:
    webhook_sender(boost::asio::io_context& ioc, service::webhook_service& hooks,
                   service::webhook_events const& events, config::webhooks_config const& cfg,
                   std::string instance_id, std::shared_ptr<net::egress_policy const> egress);

    /// Starts claiming (when webhooks.sender is set) and the expiry checks, on the io_context.
    void start();
    /// No more claims; attempts in flight end with the io_context (their leases let another sender retry).
    void stop();
    /// An event was stored in this instance (thread-safe): claim now, and again within milliseconds while its
    /// transaction commits.
    void wake();
    /// The metrics lines of webhook delivery (Prometheus text).
    void render_metrics(std::string& out) const;

  private:
    boost::asio::awaitable<void> claim_loop();
    boost::asio::awaitable<void> deliver(repo::due_delivery d);
    boost::asio::awaitable<void> upkeep();

    boost::asio::io_context& ioc_;
    service::webhook_service& hooks_;
    service::webhook_events const& events_;
    config::webhooks_config cfg_;
    std::string owner_;
    std::shared_ptr<net::egress_policy const> egress_;
    /// Kept-alive connections to receivers: a busy receiver is not handshaken with per event; at most two
    /// idle per origin, closed after 15 s.
    net::connection_pool connections_{2, std::chrono::seconds(15)};
    std::unique_ptr<boost::asio::steady_timer> claim_timer_;
    std::unique_ptr<boost::asio::steady_timer> upkeep_timer_;
    std::atomic<bool> running_{false};
    // The io_context's thread only:
    std::map<std::int64_t, std::size_t> per_user_;  // attempts in flight by user
    bool wake_pending_ = false;  // a slot freed or an event came while the loop was not waiting
    int quick_retries_ = 0;      // short waits left for an event of this instance to commit
    /// A webhook whose receiver keeps failing: after webhooks.breaker_failures attempts in a row fail, its
    /// deliveries are left out of this sender's claims until `open_until`; a success closes it.
    struct breaker {
        unsigned failures = 0;
        std::chrono::steady_clock::time_point open_until{};
    };
    std::map<std::int64_t, breaker> breakers_;
    std::atomic<std::size_t> in_flight_{0};
    std::atomic<std::uint64_t> delivered_{0};
    std::atomic<std::uint64_t> failed_attempts_{0};
    std::atomic<std::uint64_t> given_up_{0};
    std::atomic<std::uint64_t> attempt_ms_{0};
    std::atomic<std::int64_t> pending_{0};
    std::atomic<std::uint64_t> expiry_checks_{0};
    std::atomic<std::uint64_t> breaker_trips_{0};
    std::atomic<std::size_t> breakers_open_{0};
};

}  // namespace certctrl::worker
