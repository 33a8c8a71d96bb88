#pragma once
// Statement sets of issuance, run on a unit of work (see work.hpp): the issue history, which doubles as the
// job queue (one open row per certificate, claimed with SKIP LOCKED and a lease), and the HTTP-01 key
// authorizations every instance serves. Methods throw on SQL errors and run only inside a unit of work.

#include "certctrl/domain/acme_account.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/issuance.hpp"
#include "certctrl/repo/page.hpp"
#include "certctrl/repo/resources.hpp"
#include "certctrl/repo/work.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace certctrl::repo {

/// Everything an issuance of one certificate needs.
/// What keeps a runnable row waiting (issue_repository::claimable).
struct claim_rules {
    unsigned max_per_user = 0;                   // rows of one user PROCESSING at once (0: no cap)
    std::map<std::string, unsigned> max_per_ca;  // by ACME directory URL: rows PROCESSING at once
};

/// The job queue at a glance (metrics).
struct issue_queue_state {
    std::int64_t runnable = 0;
    std::int64_t waiting = 0;
    std::int64_t processing = 0;
    std::int64_t next_retry_at = 0;
};

struct issue_context {
    domain::certificate cert;
    domain::acme_account account;
    std::optional<domain::ca> ca;  // SELF_CA accounts only
};

/// A certificate's issuance slot, read under the certificate row's lock.
struct issue_slot {
    std::optional<domain::issue_row> open_row;  // its PENDING/PROCESSING row, if any
    int attempts = 0;                           // the rows it has had
    std::vector<std::int64_t> devices;          // the devices it is assigned to, ascending
};

class issuance_repository {
  public:
    virtual ~issuance_repository() = default;

    /// The certificate with its account (and CA for SELF_CA), in one read. Nothing when the certificate or
    /// its account is not the user's.
    virtual std::optional<issue_context> context(work& w, std::int64_t user_id, std::int64_t cert_id) = 0;
    /// Locks the user's certificate row (serialising issuance requests and assignments for it) and reads its
    /// open row, how many rows it had and the devices holding it. Nothing when the user has no such
    /// certificate.
    virtual std::optional<issue_slot> lock_slot(work& w, std::int64_t user_id, std::int64_t cert_id) = 0;
    /// Inserts a row and returns its id. An open row (PENDING/PROCESSING) takes the certificate's single
    /// in-flight slot: nothing is inserted (nothing returned) while another open row holds it.
    virtual std::optional<std::int64_t> insert(work& w, domain::issue_row const& r,
                                               std::int64_t run_after) = 0;
    /// The certificate's open row as last committed (a locking read, past the transaction's snapshot).
    virtual std::optional<domain::issue_row> open_row(work& w, std::int64_t cert_id) = 0;
    /// Queues a renewal unless the certificate has an open row; true when queued.
    virtual bool insert_if_idle(work& w, std::int64_t user_id, std::int64_t cert_id, std::string const& kind,
                                std::int64_t now) = 0;
    /// The rows of a certificate, newest first.
    virtual page<domain::issue_row> list(work& w, std::int64_t user_id, std::int64_t cert_id,
                                         page_query const& q) = 0;
    virtual std::optional<domain::issue_row> get(work& w, std::int64_t id,
                                                 row_lock lock = row_lock::none) = 0;
    /// PENDING -> PROCESSING with a lease; false when the row was not PENDING.
    virtual bool start(work& w, std::int64_t id, std::string const& owner, std::int64_t lease_until,
                       std::int64_t now) = 0;
    /// Closes an open row (PENDING or PROCESSING) with a terminal status and message, releasing the
    /// certificate's in-flight slot; false when it was not open.
    /// With `owner` (a worker), only a PROCESSING row under that worker's lease is closed.
    virtual bool close(work& w, std::int64_t id, std::string const& status, std::string const& message,
                       std::int64_t now, std::string const& owner = "") = 0;
    /// True when the row is PROCESSING under `owner`'s lease (locked for update).
    virtual bool held_by(work& w, std::int64_t id, std::string const& owner) = 0;
    /// Flags a PROCESSING row for its worker to cancel.
    virtual void request_cancel(work& w, std::int64_t id) = 0;

    // ---- workers
    /// The next runnable row (PENDING with run_after <= now, or PROCESSING with an expired lease), locked
    /// with SKIP LOCKED, so instances never take the same row. Rows that are not renewals (a user waiting for
    /// them) go first, then the oldest.
    /// With `rules.max_per_user` > 0, rows of users who have that many rows PROCESSING under a live lease
    /// wait, so one tenant's slow CA or DNS cannot hold every worker (renewals and re-issues included); rows
    /// whose certificate's ACME directory has its rules.max_per_ca rows PROCESSING wait too, and renewals
    /// already at three quarters of it (the last quarter is kept for rows a user waits for).
    virtual std::optional<std::int64_t> claimable(work& w, std::int64_t now, claim_rules const& rules) = 0;
    std::optional<std::int64_t> claimable(work& w, std::int64_t now, unsigned max_per_user = 0) {
        return claimable(w, now, claim_rules{max_per_user, {}});
    }
    /// An ACME account of the user (a certificate's fallback), or nothing.
    virtual std::optional<domain::acme_account> account(work& w, std::int64_t user_id, std::int64_t id) = 0;
    /// Records on a row the ACME account its order goes to (and, when not empty, a note in its message),
    /// while `owner` holds the row. False when it does not.
    virtual bool set_account(work& w, std::int64_t id, std::string const& owner, std::int64_t acct_id,
                             std::string const& note) = 0;
    /// The open rows of every user: PENDING and runnable, PENDING until a later run_after (retries), and
    /// PROCESSING; with the earliest run_after of the waiting ones (0: none).
    virtual issue_queue_state queue_state(work& w, std::int64_t now) = 0;
    /// Moves a claimed row to PROCESSING under `owner`'s lease.
    virtual void take(work& w, std::int64_t id, std::string const& owner, std::int64_t lease_until,
                      std::int64_t now) = 0;
    /// Extends the lease while `owner` holds the PROCESSING row; the row afterwards, or nothing when the
    /// lease was lost.
    virtual std::optional<domain::issue_row> extend_lease(work& w, std::int64_t id, std::string const& owner,
                                                          std::int64_t lease_until) = 0;
    /// The row's resumable ACME progress (JSON text, "" when none).
    virtual std::string progress(work& w, std::int64_t id) = 0;
    /// Stores the progress while `owner` holds the row; `order_url` "" keeps the recorded acme_order_id.
    /// False when the lease is someone else's.
    virtual bool save_progress(work& w, std::int64_t id, std::string const& owner,
                               std::string const& progress, std::string const& order_url) = 0;
    /// PROCESSING under `owner` -> PENDING until `run_after`, keeping the progress; false otherwise.
    virtual bool retry_later(work& w, std::int64_t id, std::string const& owner, std::int64_t run_after,
                             std::string const& message) = 0;
    /// Records the account URL (kid) the CA gave an account.
    virtual void set_account_kid(work& w, std::int64_t account_id, std::string const& kid,
                                 std::int64_t now) = 0;

    // ---- HTTP-01 key authorizations, served by every instance's challenge listener
    virtual void put_http_challenge(work& w, std::string const& token, std::string const& identifier,
                                    std::string const& key_authorization, std::int64_t history_id,
                                    std::int64_t expires_at) = 0;
    virtual void drop_http_challenges(work& w, std::int64_t history_id) = 0;
    /// The key authorization of `token` when it was stored for the name `host` (the HTTP-01 listener answers
    /// a token only for a Host that is the name its authorization is for).
    virtual std::optional<std::string> http_challenge(work& w, std::string const& token,
                                                      std::string const& host, std::int64_t now) = 0;
};

}  // namespace certctrl::repo
