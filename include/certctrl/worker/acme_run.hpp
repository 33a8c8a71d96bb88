#pragma once
// One ACME issuance run by a worker, as named steps over the row's typed progress (acme_progress): open the
// account, make or reopen the certificate key, create or resume the order, prove every name, finalize,
// download and store, then follow the CA's renewal window. Each step renews the lease and stops at a cancel
// request.

#include "certctrl/acme/client.hpp"
#include "certctrl/config/config.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/service/dns_providers.hpp"
#include "certctrl/service/issuance.hpp"
#include "certctrl/worker/dns_solver.hpp"
#include "certctrl/worker/jobs.hpp"

#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <optional>
#include <string>

namespace certctrl::worker {

/// What an ACME run needs from its worker.
struct acme_env {
    issue_jobs& jobs;
    service::issuance_service& issuance;
    service::dns_provider_service& dns;
    crypto::keyring const& keys;
    boost::asio::thread_pool& cpu;
    service::bounded_pool& dns_io;  // blocking DNS calls (RFC 2136)
    config::issuance_config const& cfg;
    std::shared_ptr<net::egress_policy const> egress;  // for user-supplied endpoints
    acme::ca_sessions& sessions;                       // one per CA: connections, nonces, limits
};

/// An error that ends a run without touching the row: the lease went to another worker ("lease_lost") or the
/// user cancelled ("cancelled").
app_error stop_error(char const* why);
bool is_stop(app_error const& e, char const* why);

class acme_run {
  public:
    /// `progress`: what the row holds of an earlier attempt (read by the worker, which holds the lease).
    acme_run(acme_env env, repo::issue_context ctx, domain::issue_row row, std::string owner,
             acme_progress progress);
    ~acme_run();

    /// Runs the order to SUCCESS (stored). Errors: a stop_error, or the step's failure (acme::retryable()
    /// tells whether a later attempt may succeed).
    net::awaitable<result<bool>> run();

  private:
    net::awaitable<result<bool>> guard();
    net::awaitable<result<bool>> save_progress();
    net::awaitable<result<bool>> open_account();
    net::awaitable<result<bool>> open_solver();
    net::awaitable<result<bool>> ensure_key();
    net::awaitable<result<bool>> ensure_order();
    net::awaitable<result<bool>> authorize();
    /// A challenge answered and awaiting the CA's verdict; fqdn/value: the DNS-01 record to remove ("" none).
    struct proof {
        std::string authz_url;
        std::string fqdn;
        std::string value;
    };
    net::awaitable<result<std::optional<proof>>> begin_proof(std::string authz_url);
    net::awaitable<void> remove_record(proof const& p);
    net::awaitable<result<acme::authorization>> await_validation(std::string authz_url);
    net::awaitable<result<bool>> prove_by_agents(std::string authz_url, acme::challenge ch, std::string ka,
                                                 std::string identifier);
    net::awaitable<result<bool>> finalize();
    net::awaitable<result<bool>> store();
    net::awaitable<void> follow_renewal_info();

    acme_env env_;
    repo::issue_context ctx_;
    domain::issue_row row_;
    std::string owner_;
    acme_progress progress_;
    std::string account_key_;
    std::unique_ptr<acme::client> client_;
    std::unique_ptr<dns_solver> solver_;
    std::string txt_domain_;  // dns-01-delegated: <public_id>.<delegation domain>; else ""
    std::string leaf_key_;
    acme::order order_;
    std::string chain_;
};

}  // namespace certctrl::worker
