#pragma once
// ACME Renewal Information (RFC 9773) followed over time: after an issuance and then whenever the CA's
// Retry-After says, the worker asks the CA for the certificate's suggested window; the renewal time stays
// where it is while it lies inside the window and moves into it when the CA moves the window (an incident, a
// revocation). A window already over means renew now.

#include "certctrl/acme/client.hpp"
#include "certctrl/config/config.hpp"
#include "certctrl/net/egress.hpp"
#include "certctrl/worker/jobs.hpp"

#include <memory>
#include <random>
#include <string>

namespace certctrl::worker {

/// The options of requests to ACME CAs: the trusted roots, the timeout, the egress policy, https only.
net::outbound_options acme_options(config::issuance_config const& cfg,
                                   std::shared_ptr<net::egress_policy const> egress);

/// When to renew given the CA's window [start, end]: `current` when it lies inside, else a uniform random
/// time in the window, not before `now`.
std::int64_t renewal_time_in(std::int64_t current, std::int64_t start, std::int64_t end, std::int64_t now,
                             std::mt19937_64& rng);

/// Asks the CA (through `client`) for the window of the first certificate of `cert_pem` and stores the
/// renewal time and the next look: the CA's Retry-After (6 h without one) within [ari_min_recheck_seconds,
/// 1 day], an hour after a failure; never again when the CA has no renewalInfo.
net::awaitable<void> follow_renewal_info(issue_jobs& jobs, acme::client& client,
                                         config::issuance_config const& cfg, std::int64_t cert_id,
                                         std::string const& cert_pem, std::int64_t current_renew_after);

}  // namespace certctrl::worker
