#pragma once
// Webhooks (issue 15): the event outbox written inside the units of work of the changes (webhook_events),
// the subscriptions and their delivery log (webhook_service), and the steps the senders take in the database.
// Signatures follow the Standard Webhooks convention (webhook-id, webhook-timestamp, webhook-signature).

#include "certctrl/config/config.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/webhook.hpp"
#include "certctrl/repo/repositories.hpp"
#include "certctrl/service/identity.hpp"

#include <boost/json/object.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certctrl::service {

/// A new signing secret: "whsec_" and the base64 of 32 random bytes.
std::string new_webhook_secret();

/// The Standard Webhooks signature "v1,<base64 HMAC-SHA256(key, id "." timestamp "." body)>", where the key
/// is the secret's base64 part decoded. Nothing when `secret` is not a "whsec_" secret.
std::optional<std::string> sign_webhook(std::string_view secret, std::string_view id, std::int64_t timestamp,
                                        std::string_view body);

/// The delay before attempt `attempt` + 1 (attempt >= 1): retry_initial_ms doubled per attempt, at most
/// retry_max_ms, times `jitter` (a factor in [0.5, 1.0], random in production).
std::int64_t webhook_retry_delay_ms(config::webhooks_config const& cfg, std::int64_t attempt, double jitter);

/// The outbox: events written in the caller's unit of work, so an event exists exactly when its change
/// committed. An event is stored once, with a delivery for each enabled subscription that wants it; a user
/// without such a subscription costs one indexed read.
class webhook_events {
  public:
    webhook_events(repo::repositories& r, config::webhooks_config const& cfg) : r_(r), cfg_(cfg) {}

    /// The user's enabled subscriptions (read once per unit, then handed to emit()).
    std::vector<domain::webhook> subscribers(repo::work& w, std::int64_t user_id) const;
    /// Stores event `type` for those of `subs` that want it (about `cert_id`); `data` is called only then.
    /// Returns the number of deliveries made.
    std::size_t emit(repo::work& w, std::vector<domain::webhook> const& subs, std::int64_t user_id,
                     std::string const& type, std::optional<std::int64_t> cert_id,
                     std::function<boost::json::object()> const& data) const;
    /// emit() about a certificate of the user, with its record (read in `w`) as data.certificate and the
    /// members of `extra` beside it.
    std::size_t emit_certificate(repo::work& w, std::int64_t user_id, std::string const& type,
                                 std::int64_t cert_id, boost::json::object extra = {}) const;
    /// One event for one subscription whatever it subscribed to (ping). Returns the delivery id.
    std::int64_t emit_to(repo::work& w, domain::webhook const& hook, std::string const& type,
                         boost::json::object data) const;

    /// Events stored by this instance, for the metrics.
    std::uint64_t stored() const { return stored_; }
    /// Called (on a database thread, before the commit) whenever this instance stores an event: the sender
    /// looks for it at once instead of at its next poll. Set once, before any unit of work runs.
    void on_stored(std::function<void()> f) { on_stored_ = std::move(f); }

  private:
    std::int64_t store(repo::work& w, std::int64_t user_id, std::string const& type,
                       std::optional<std::int64_t> cert_id, boost::json::object data) const;

    repo::repositories& r_;
    config::webhooks_config const& cfg_;
    mutable std::atomic<std::uint64_t> stored_{0};
    std::function<void()> on_stored_;
};

/// A subscription with its secret, as create and rotate answer it (the only times the secret is shown).
struct webhook_with_secret {
    domain::webhook hook;
    std::string secret;
};

/// Subscriptions, their log, and the senders' steps.
class webhook_service {
  public:
    webhook_service(repo::repositories& r, webhook_events const& events, crypto::keyring const& keys,
                    config::webhooks_config const& cfg)
        : r_(r), events_(events), keys_(keys), cfg_(cfg) {}

    /// Errors: bad_request (a certificate id that is not the user's, naming the field), conflict (the user
    /// has webhooks.max_per_user), unavailable (no master key), database.
    task<webhook_with_secret> create(std::int64_t user_id, domain::webhook_input in);
    task<repo::page<domain::webhook>> list(std::int64_t user_id, repo::page_query q);
    /// Errors: not_found.
    task<domain::webhook> get(std::int64_t user_id, std::int64_t id);
    /// Applies the members present. Disabling closes the pending deliveries as FAILED. Errors: as create,
    /// not_found.
    task<domain::webhook> update(std::int64_t user_id, std::int64_t id, domain::webhook_input in);
    /// Errors: not_found.
    task<bool> remove(std::int64_t user_id, std::int64_t id);
    /// A new secret; the old one keeps signing (a second signature) for `overlap_seconds`. Errors:
    /// not_found, bad_request (overlap above webhooks.rotation_overlap_max_seconds), unavailable.
    task<webhook_with_secret> rotate(std::int64_t user_id, std::int64_t id, std::int64_t overlap_seconds);
    /// Queues a ping event to the subscription. Errors: not_found, conflict (the subscription is disabled).
    task<domain::webhook_delivery> ping(std::int64_t user_id, std::int64_t id);
    /// The subscription's deliveries, newest first; `status` PENDING, SUCCESS, FAILED or "". Errors:
    /// not_found.
    task<repo::page<domain::webhook_delivery>> deliveries(std::int64_t user_id, std::int64_t id,
                                                          std::string status, repo::page_query q);
    /// One delivery with its payload. Errors: not_found.
    task<domain::webhook_delivery> delivery(std::int64_t user_id, std::int64_t id, std::int64_t delivery_id);
    /// Sends a delivery again now (a new 24 h window). Errors: not_found, conflict (the subscription is
    /// disabled).
    task<domain::webhook_delivery> redeliver(std::int64_t user_id, std::int64_t id, std::int64_t delivery_id);

    // ---- senders
    /// Claims due deliveries for `owner` (each counted as an attempt, leased until `lease_until_ms`), none of
    /// the users or webhooks `out` names.
    task<std::vector<repo::due_delivery>> claim(std::size_t n, repo::claim_filter out, std::string owner,
                                                std::int64_t lease_until_ms);
    /// Gives claimed deliveries back unattempted, due again now (a user over its share of the sender).
    task<bool> release(std::vector<repo::due_delivery> ds, std::string owner);
    /// Records an attempt's outcome (only while `owner` holds that attempt).
    task<bool> finish(std::int64_t id, std::string owner, std::int64_t attempt, repo::delivery_outcome o);
    /// The secrets a delivery is signed with now: the current one, and the previous one during its overlap.
    /// Errors: internal (a secret does not open).
    result<std::vector<std::string>> secrets_of(domain::webhook const& h, std::int64_t now) const;
    /// Warns of certificates crossing a webhooks.expiring_days threshold (once per threshold and certificate
    /// version; a certificate first seen below several thresholds is warned at the lowest). Returns the
    /// certificates looked at.
    task<std::int64_t> warn_expiring(std::int64_t now);
    /// Deletes finished deliveries and events past webhooks.log_retention_days.
    task<std::int64_t> purge(std::int64_t now);
    /// PENDING deliveries in the database, for the metrics.
    task<std::int64_t> pending();

    /// The contexts the secrets are sealed under (bound to the row and column).
    static std::string secret_context(std::int64_t user_id, std::int64_t id);
    static std::string previous_secret_context(std::int64_t user_id, std::int64_t id);

  private:
    /// Checks that every certificate id of `in` is the user's (inside `w`).
    result<bool> check_certificates(repo::work& w, std::int64_t user_id,
                                    domain::webhook_input const& in) const;

    repo::repositories& r_;
    webhook_events const& events_;
    crypto::keyring const& keys_;
    config::webhooks_config const& cfg_;
};

}  // namespace certctrl::service
