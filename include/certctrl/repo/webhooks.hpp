#pragma once
// The webhook statements: subscriptions, the event outbox and its deliveries, run in a caller's unit of work.

#include "certctrl/domain/webhook.hpp"
#include "certctrl/repo/page.hpp"
#include "certctrl/repo/resources.hpp"
#include "certctrl/repo/work.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace certctrl::repo {

/// An event as the outbox stores it.
struct webhook_event_row {
    std::string public_id;
    std::int64_t user_id = 0;
    std::string type;
    std::optional<std::int64_t> cert_id;
    std::string payload;
    std::int64_t created_at = 0;
};

/// A claimed delivery with what sending it needs.
struct due_delivery {
    std::int64_t id = 0;
    std::int64_t attempt = 0;  // this attempt's number (the claim counted it)
    std::int64_t expires_at = 0;
    std::string event_id;
    std::string event_type;
    std::string payload;
    domain::webhook hook;
};

/// How an attempt ended: SUCCESS, FAILED (gave up), or PENDING again at `next_attempt_ms`.
struct delivery_outcome {
    std::string status;
    std::int64_t next_attempt_ms = 0;
    std::optional<std::int64_t> status_code;
    std::string error;
    std::int64_t at = 0;
};

/// What a claim leaves out: users at their share of a sender, webhooks whose receiver is failing.
struct claim_filter {
    static constexpr std::size_t max = 16;  // of each
    std::vector<std::int64_t> users;
    std::vector<std::int64_t> webhooks;
};

/// A certificate whose expiry may need a warning.
struct expiring_certificate {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::int64_t not_after = 0;
};

class webhook_repository {
  public:
    virtual ~webhook_repository() = default;

    // ---- subscriptions (every query scoped to the owner)
    virtual std::int64_t insert(work& w, domain::webhook const& h) = 0;
    virtual std::optional<domain::webhook> get(work& w, std::int64_t user_id, std::int64_t id,
                                               row_lock lock = row_lock::none) = 0;
    virtual page<domain::webhook> list(work& w, std::int64_t user_id, page_query const& q) = 0;
    /// The user's subscriptions, counted under a lock of that range (creates of the user wait on it).
    virtual std::int64_t count_of(work& w, std::int64_t user_id) = 0;
    /// Writes every member but id, user_id and created_at.
    virtual void update(work& w, domain::webhook const& h) = 0;
    /// False when there was no such subscription (its deliveries go with it).
    virtual bool remove(work& w, std::int64_t user_id, std::int64_t id) = 0;
    /// The user's enabled subscriptions (the ones an event is delivered to).
    virtual std::vector<domain::webhook> enabled_of(work& w, std::int64_t user_id) = 0;

    // ---- the outbox
    /// Stores an event; returns its row id.
    virtual std::int64_t insert_event(work& w, webhook_event_row const& e) = 0;
    /// A PENDING delivery of event `event_id` to `webhook_id`, due at `due_ms`.
    virtual std::int64_t insert_delivery(work& w, std::int64_t webhook_id, std::int64_t event_id,
                                         std::int64_t user_id, std::int64_t due_ms, std::int64_t expires_at,
                                         std::int64_t now) = 0;
    /// Closes the subscription's PENDING deliveries as FAILED with `why` (it was disabled).
    virtual void fail_pending(work& w, std::int64_t webhook_id, std::string const& why, std::int64_t now) = 0;
    /// The subscription's deliveries, newest first (`status` "" for all).
    virtual page<domain::webhook_delivery> deliveries(work& w, std::int64_t user_id, std::int64_t webhook_id,
                                                      std::string const& status, page_query const& q) = 0;
    /// One delivery with its payload.
    virtual std::optional<domain::webhook_delivery> delivery(work& w, std::int64_t user_id,
                                                             std::int64_t webhook_id, std::int64_t id) = 0;
    /// Makes a delivery PENDING and due at `due_ms` again, with a new `expires_at`.
    virtual void redeliver(work& w, std::int64_t id, std::int64_t due_ms, std::int64_t expires_at) = 0;

    // ---- senders
    /// Claims up to `n` due PENDING deliveries (SKIP LOCKED), none of the users or webhooks `leave_out` names
    /// (at most claim_filter::max of each): each is counted as an attempt, owned by `owner` and not due again
    /// before `lease_until_ms` (when a sender that died leaves it to the others).
    virtual std::vector<due_delivery> claim(work& w, std::int64_t now_ms, std::size_t n,
                                            claim_filter const& leave_out, std::string const& owner,
                                            std::int64_t lease_until_ms) = 0;
    /// Gives a claimed delivery back unattempted (due at `due_ms`), only while `owner` holds `attempt`.
    virtual void release(work& w, std::int64_t id, std::string const& owner, std::int64_t attempt,
                         std::int64_t due_ms) = 0;
    /// Records an attempt's outcome, only while `owner` still holds attempt `attempt` of the delivery.
    virtual bool finish(work& w, std::int64_t id, std::string const& owner, std::int64_t attempt,
                        delivery_outcome const& o) = 0;
    /// Deletes finished deliveries and the events without deliveries older than `before`; at most `limit`
    /// rows each. Returns the rows deleted.
    virtual std::int64_t purge(work& w, std::int64_t before, std::size_t limit) = 0;
    /// PENDING deliveries (due now or later), for the metrics.
    virtual std::int64_t pending_count(work& w) = 0;

    // ---- certificate.expiring
    /// Certificates expiring in (now, now + days] not yet warned at `days` or below, locked (SKIP LOCKED).
    virtual std::vector<expiring_certificate> expiring(work& w, std::int64_t now, std::int64_t days,
                                                       std::size_t limit) = 0;
    virtual void mark_warned(work& w, std::int64_t cert_id, std::int64_t days) = 0;

    // ---- certificate.deployed
    /// Notes that the device fetched the deploy materials of `serial`.
    virtual void note_fetched(work& w, std::int64_t device_id, std::int64_t cert_id,
                              std::string const& serial) = 0;
    /// The certificates the device fetched a serial of that it has not confirmed (cert id, serial).
    virtual std::vector<std::pair<std::int64_t, std::string>> unconfirmed(work& w,
                                                                          std::int64_t device_id) = 0;
    /// Marks `serial` confirmed on the device; false when it already was (or the assignment is gone).
    virtual bool confirm(work& w, std::int64_t device_id, std::int64_t cert_id,
                         std::string const& serial) = 0;
};

}  // namespace certctrl::repo
