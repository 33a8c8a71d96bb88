#pragma once
// The issuance engine of an instance: a dispatcher claims queued rows (any instance, SKIP LOCKED, leases)
// while fewer than issuance.workers run, and runs each as a coroutine on the I/O thread (SELF_CA on the CPU
// pool, ACME orders through acme_run over the CA's shared session, resuming a stored order after a crash);
// transient failures come back with backoff and jitter. The renewal scheduler queues auto-renewals as they
// fall due.

#include "certctrl/acme/ca_session.hpp"
#include "certctrl/config/config.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/net/egress.hpp"
#include "certctrl/service/dns_providers.hpp"
#include "certctrl/service/issuance.hpp"
#include "certctrl/worker/jobs.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

namespace certctrl::worker {

class issuance_worker {
  public:
    issuance_worker(boost::asio::io_context& ioc, issue_jobs& jobs, service::issuance_service& issuance,
                    service::dns_provider_service& dns, crypto::keyring const& keys,
                    boost::asio::thread_pool& cpu, service::bounded_pool& dns_io, config::issuance_config cfg,
                    std::string instance_id, std::shared_ptr<net::egress_policy const> egress = {});
    ~issuance_worker();

    /// Starts the dispatcher and the renewal scheduler on the io_context.
    void start();
    /// The dispatcher looks for work now instead of at its next poll.
    void wake();
    /// No more rows are claimed; runs stop at their next step (rows they hold are reclaimed by lease expiry).
    void stop();
    /// Issuances running in this instance now.
    std::size_t in_flight() const { return in_flight_.load(); }
    acme::ca_sessions& sessions() { return sessions_; }
    /// Runs of this instance so far by how they ended.
    struct outcomes {
        std::uint64_t succeeded = 0;
        std::uint64_t failed = 0;
        std::uint64_t retried = 0;  // a transient failure; the row waits for its next attempt
    };
    outcomes ended() const { return {succeeded_.load(), failed_.load(), retried_.load()}; }
    /// The shared queue as last read (every 5 s while running).
    repo::issue_queue_state queue() const;
    /// The metrics lines of the engine (Prometheus text).
    void render_metrics(std::string& out) const;

  private:
    struct slot {
        explicit slot(boost::asio::io_context& ioc) : strand(boost::asio::make_strand(ioc)), timer(strand) {}
        boost::asio::strand<boost::asio::io_context::executor_type> strand;
        boost::asio::steady_timer timer;
        bool done = false;  // a lease keeper's run has ended (read and written on the strand)
    };
    boost::asio::awaitable<void> dispatch();
    /// Renews the lease of a running row every third of issuance.lease_seconds until `k->done`, so a step
    /// that waits longer (a DNS provider, an agent, a CA) keeps its row, and the rows of a killed instance
    /// are claimed again within lease_seconds.
    boost::asio::awaitable<void> keep_lease(std::int64_t id, std::string owner, std::shared_ptr<slot> k);
    boost::asio::awaitable<void> run_one(domain::issue_row row, std::string owner);
    boost::asio::awaitable<void> renewals();
    boost::asio::awaitable<void> renewal_infos();
    boost::asio::awaitable<void> run(domain::issue_row row, std::string owner);
    /// A failed run: transient failures come back later (backoff with jitter), others close the row.
    boost::asio::awaitable<void> after_failure(domain::issue_row row, std::string owner, app_error e,
                                               std::vector<std::int64_t> fallbacks, std::int64_t account_id,
                                               std::string directory);
    boost::asio::awaitable<bool> fail_over(domain::issue_row const& row, std::string const& owner,
                                           app_error const& e, acme_progress p,
                                           std::vector<std::int64_t> const& fallbacks,
                                           std::int64_t from_account, std::string const& from_directory);

    boost::asio::io_context& ioc_;
    issue_jobs& jobs_;
    service::issuance_service& issuance_;
    service::dns_provider_service& dns_;
    crypto::keyring const& keys_;
    boost::asio::thread_pool& cpu_;
    service::bounded_pool& dns_io_;
    config::issuance_config cfg_;
    std::string instance_id_;
    std::shared_ptr<net::egress_policy const> egress_;
    acme::ca_sessions sessions_;
    std::unique_ptr<slot> dispatch_slot_;
    std::unique_ptr<slot> renewal_slot_;
    std::atomic<bool> running_{false};
    boost::asio::awaitable<void> observe();
    std::atomic<std::size_t> in_flight_{0};
    std::atomic<std::uint64_t> succeeded_{0};
    std::atomic<std::uint64_t> failed_{0};
    std::atomic<std::uint64_t> retried_{0};
    mutable std::mutex queue_mu_;
    repo::issue_queue_state queue_;
    std::unique_ptr<slot> observe_slot_;
    std::atomic<bool> woken_{false};
    std::uint64_t runs_ = 0;
};

}  // namespace certctrl::worker
