#pragma once
// The device side (agent contract 5, 6): the update feed with its long-poll, key delivery, and the CAs
// assigned to devices. Onboarding and tokens are in device_auth.hpp, the sealing policy in device_keys.hpp,
// install configs in install_configs.hpp.

#include "certctrl/config/config.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/repo/repositories.hpp"
#include "certctrl/service/device_auth.hpp"
#include "certctrl/service/device_keys.hpp"
#include "certctrl/service/identity.hpp"
#include "certctrl/service/install_configs.hpp"
#include "certctrl/service/webhooks.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace certctrl::service {

/// Wakes long-polls when their device's feed grows. One poller per instance watches the feed's highest id
/// (every `period`), so signals written by any instance or worker wake the waiters here; a waiter holds no
/// thread, only a timer.
class update_notifier {
  public:
    update_notifier(repo::repositories& r, std::chrono::milliseconds period) : r_(r), period_(period) {}

    /// Runs until the executor stops (co_spawn it once).
    boost::asio::awaitable<void> run();

    /// Waits until the device's feed may have grown, or `deadline`. Register with watch() before reading the
    /// feed, so nothing committed in between is missed.
    struct waiter;
    std::shared_ptr<waiter> watch(boost::asio::any_io_executor ex, std::int64_t device_id);
    boost::asio::awaitable<void> wait(std::shared_ptr<waiter> w,
                                      std::chrono::steady_clock::time_point deadline);
    void unwatch(std::shared_ptr<waiter> const& w);
    /// Ends the waiter's current wait early without a signal (its owner has something else to do).
    void interrupt(std::shared_ptr<waiter> const& w);
    std::size_t waiting() const;
    /// Shutdown: wakes every waiter, and later waits return at once.
    void stop();
    bool stopping() const { return stopping_; }

  private:
    void wake(std::vector<std::int64_t> const& devices);

    repo::repositories& r_;
    std::chrono::milliseconds period_;
    mutable std::mutex mu_;
    std::multimap<std::int64_t, std::shared_ptr<waiter>> waiters_;
    std::atomic<bool> stopping_{false};
};

/// A page of the update feed.
struct update_batch {
    std::string cursor;
    std::vector<repo::device_signal> signals;
};

/// Everything a device fetches, and the CAs assigned to devices.
class device_service {
  public:
    device_service(repo::repositories& r, device_signals const& signals, crypto::keyring const& keys,
                   update_notifier& notifier, config::devices_config const& cfg, webhook_events const& events)
        : r_(r), signals_(signals), keys_(keys), notifier_(notifier), cfg_(cfg), events_(events) {}

    /// The signals after `cursor` ("" or "0-0": from the start), waiting up to `wait_s` for one. A user
    /// with devices.max_waiting_polls_per_user polls waiting here already is answered at once (no wait).
    /// Errors: updates_cursor_expired (params for the resync), database.
    /// `record_receipt`: the cursor says the device received everything up to it (an HTTP poll; a WebSocket
    /// records its acks instead).
    task<update_batch> updates(std::int64_t device_id, std::string cursor, std::size_t limit, unsigned wait_s,
                               std::int64_t user_id = 0, bool record_receipt = true);
    /// Long-polls of `user_id` waiting in this instance.
    std::size_t waiting_polls(std::int64_t user_id) const;
    /// What wakes readers of the feed (the device WebSocket waits on it too).
    update_notifier& notifier() { return notifier_; }

    /// The certificate assigned to the device. Errors: not_found (not assigned).
    task<repo::device_cert_material> certificate(std::int64_t user_id, std::int64_t device_id,
                                                 std::int64_t cert_id);
    /// deploy-materials (agent contract 5.3). The serial fetched is noted: the device's next feed
    /// acknowledgement confirms it deployed (certificate.deployed). Errors: not_found (not assigned),
    /// conflict with key WRAP_PENDING (wrap missing) or NOT_ISSUED, forbidden with key EXPORT_FORBIDDEN,
    /// internal.
    task<boost::json::object> deploy_materials(std::int64_t user_id, std::int64_t device_id,
                                               std::int64_t cert_id);
    /// A CA assigned to the device. Errors: not_found.
    task<domain::ca> ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id);
    /// The agent's notify events: agent_version, and cert.deployed {cert_id, serial?} (a deploy hook saying
    /// the certificate is in place; certificate.deployed unless that serial was confirmed already). Unknown
    /// types are ignored. Errors: bad_request.
    task<bool> notify(std::int64_t device_id, boost::json::object body, std::string ip);

    /// A WebSocket ack: the device received its feed up to `feed_id` (workers waiting for agents read it).
    task<bool> note_received(std::int64_t device_id, std::int64_t feed_id);

    /// config.updated (agent contract 6.2): the agent replaces its own configuration files with
    /// `ref.replace`. Errors: not_found (no such device of the user).
    task<bool> push_agent_config(std::int64_t user_id, std::int64_t device_id, boost::json::object ref);

    /// Errors: not_found (no such device).
    task<repo::page<domain::ca>> device_cas(std::int64_t user_id, std::int64_t device_id, repo::page_query q);
    /// Signals ca.assigned. Errors: not_found (device, or CA naming the field), conflict is not raised:
    /// assigning twice succeeds.
    task<bool> assign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id);
    /// Signals ca.unassigned. Errors: not_found.
    task<bool> unassign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id);

  private:
    /// One read of the feed: the page after `after`, checked against the kept window.
    task<std::pair<std::vector<repo::device_signal>, std::int64_t>> read_feed(std::int64_t device_id,
                                                                              std::int64_t after,
                                                                              std::size_t limit,
                                                                              bool record_receipt);

    repo::repositories& r_;
    device_signals const& signals_;
    crypto::keyring const& keys_;
    update_notifier& notifier_;
    config::devices_config cfg_;
    /// The deploy-materials answer for the material read (agent contract 5.3).
    result<boost::json::object> materials_of(repo::device_cert_material const& m, std::int64_t cert_id) const;
    /// True when `feed_id` is newer than what this instance recorded for the device (then it is).
    bool note_wanted(std::int64_t device_id, std::int64_t feed_id);
    /// The device acknowledged its feed: each certificate it fetched a serial of since is deployed (inside
    /// `w`).
    void confirm_deployments(repo::work& w, std::int64_t device_id) const;
    /// Marks `serial` of the certificate deployed on `dev` and emits certificate.deployed when it is the
    /// certificate's current serial and was not confirmed before.
    void deployed(repo::work& w, domain::device const& dev, std::int64_t cert_id,
                  std::string const& serial) const;
    webhook_events const& events_;

    mutable std::mutex polls_mu_;
    std::mutex noted_mu_;
    std::unordered_map<std::int64_t, std::int64_t> noted_;  // feed ids recorded as received, per device
    std::unordered_map<std::int64_t, std::size_t> polls_;   // waiting long-polls per user
};

}  // namespace certctrl::service
