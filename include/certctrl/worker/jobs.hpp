#pragma once
// The issuance workers' units of work over the issue history (the job queue): claiming rows with a lease,
// keeping it, the typed progress of an ACME order, retries, and the records an order leaves behind.

#include "certctrl/repo/repositories.hpp"
#include "certctrl/service/device_keys.hpp"
#include "certctrl/service/identity.hpp"

#include <optional>
#include <string>

namespace certctrl::worker {

using service::task;

/// What a worker has achieved of an ACME order, kept on the row (as JSON) so any instance can resume it.
/// The sealing context of an in-flight order's certificate key (acme_progress::sealed_key): bound to its row.
std::string order_key_context(std::int64_t history_id);

struct acme_progress {
    std::string
        sealed_key;         // the certificate key, sealed under the master key (base64); "" before it is made
    std::string order_url;  // the order, once created
    std::string replaced_order;      // an order found invalid on resume and replaced (once)
    std::int64_t retries = 0;        // transient failures so far (at the current account)
    std::int64_t account_index = 0;  // 0: the certificate's account; k: its k-th fallback account
    std::string failovers;           // what made earlier accounts give way, for the SUCCESS row

    /// The progress stored on a row; text that is not ours reads as no progress.
    static acme_progress parse(std::string const& text);
    std::string to_json() const;
};

class issue_jobs {
  public:
    /// `rules`: what keeps runnable rows waiting (rows of one user, or to one CA, PROCESSING at once across
    /// all instances). `signals`: the devices' feed (agent-hosted challenges).
    issue_jobs(repo::repositories& r, service::device_signals const& signals, repo::claim_rules rules = {})
        : r_(r), signals_(signals), rules_(std::move(rules)) {}

    /// Claims the next runnable row (issue_repository::claimable) for `owner` until `lease_until` (SKIP
    /// LOCKED: instances never take the same row), skipping users at their cap of running rows. Nothing when
    /// there is no work.
    task<std::optional<domain::issue_row>> claim(std::string owner, std::int64_t lease_until);
    /// Extends the lease; the row afterwards (e.g. cancel_requested), or nothing when the lease was lost.
    task<std::optional<domain::issue_row>> heartbeat(std::int64_t id, std::string owner,
                                                     std::int64_t lease_until);
    /// The certificate of a row with its account (and CA). Nothing when it or its account is gone.
    task<std::optional<repo::issue_context>> context(std::int64_t user_id, std::int64_t cert_id);
    task<acme_progress> progress(std::int64_t id);
    /// Stores the progress; the order URL also becomes the row's acme_order_id.
    /// False when `owner` no longer holds the row's lease.
    task<bool> save(std::int64_t id, std::string owner, acme_progress p);
    /// Back to PENDING until `run_after`, keeping the progress. False when `owner` does not hold the row.
    task<bool> retry_later(std::int64_t id, std::string owner, std::int64_t run_after, std::string message);
    task<bool> put_http_challenge(std::string token, std::string identifier, std::string key_authorization,
                                  std::int64_t history_id, std::int64_t expires_at);
    task<bool> drop_http_challenges(std::int64_t history_id);
    /// The key authorization stored for an HTTP-01 token (the challenge listener of every instance).
    /// `host`: the request's Host without port, lower-case; a token is answered only for its name.
    task<std::optional<std::string>> http_challenge(std::string token, std::string host);
    /// Errors: conflict when another user holds one of `names` (domain ownership, checked before ordering).
    task<bool> check_names(std::int64_t user_id, std::vector<std::string> names);
    task<bool> set_account_kid(std::int64_t account_id, std::string kid);
    task<bool> set_renew_after(std::int64_t cert_id, std::int64_t when);
    task<bool> set_renewal_info(std::int64_t cert_id, std::int64_t renew_after, std::int64_t next_check);
    task<std::vector<std::array<std::int64_t, 3>>> renewal_info_due(std::int64_t limit);
    /// Most devices an agent-served challenge is signalled to (each is waited for).
    static constexpr std::size_t max_challenge_holders = 256;
    /// Sends a signal to every ACTIVE device holding the certificate (committed before this returns): each
    /// device with the feed id of its signal. Errors: external_service when more than max_challenge_holders
    /// devices hold it.
    task<std::vector<std::pair<std::int64_t, std::int64_t>>> signal_holders(std::int64_t cert_id,
                                                                            std::string type,
                                                                            boost::json::object ref);
    /// Of `sent` (device, feed id), the devices that have not received their signal yet.
    task<std::vector<std::int64_t>> not_received(std::vector<std::pair<std::int64_t, std::int64_t>> sent);
    task<repo::issue_queue_state> queue_state();
    task<std::optional<domain::acme_account>> account(std::int64_t user_id, std::int64_t id);
    task<bool> set_account(std::int64_t id, std::string owner, std::int64_t acct_id, std::string note);
    /// Queues a renewal row for up to `limit` certificates that are due and idle; returns how many.
    task<std::size_t> queue_due_renewals(std::int64_t limit);

  private:
    repo::repositories& r_;
    service::device_signals const& signals_;
    repo::claim_rules rules_;
};

}  // namespace certctrl::worker
