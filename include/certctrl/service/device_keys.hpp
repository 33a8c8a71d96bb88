#pragma once
// The device outbox and the key-sealing policy, run inside the caller's unit of work: a change, the signals
// it causes and the keys it seals to devices commit together.

#include "certctrl/crypto/aead.hpp"
#include "certctrl/repo/repositories.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace certctrl::service {

/// Appends signals to devices' update feeds (agent contract 6.2). Lock order of every transaction that writes
/// signals or wraps: the certificate (or CA) row, then device rows in id order, then assignment rows.
class device_signals {
  public:
    /// `keep`: signals kept per device; a cursor before the kept window must resync.
    device_signals(repo::repositories& r, std::size_t keep) : r_(r), keep_(keep == 0 ? 1 : keep) {}

    /// Appends a signal to the device's feed and drops the oldest beyond what is kept. Locks the device row
    /// first, so one device's signals commit in id order and a cursor never skips one. Returns its feed id.
    std::int64_t emit(repo::work& w, std::int64_t device_id, std::string const& type,
                      boost::json::object const& ref) const;
    /// The same signal to several devices (locked in id order first).
    void emit_all(repo::work& w, std::vector<std::int64_t> const& devices, std::string const& type,
                  boost::json::object const& ref) const;

  private:
    repo::repositories& r_;
    std::size_t keep_;
};

/// How an assignment's sealed key stands after device_keys::wrap().
enum class wrap_state {
    wrapped,      // sealed to the device's key
    pending,      // the 48-zero sentinel: a wrap is owed (no device key yet, or no master copy to seal from)
    not_issued,   // nothing to seal yet
    master_only,  // the policy keeps no device wraps
};

/// The key-distribution policy (agent contract 5): which devices get a certificate's data key, sealed to
/// their X25519 keys, and what happens when there is nothing to seal from.
class device_keys {
  public:
    device_keys(repo::repositories& r, device_signals const& signals, crypto::keyring const& keys)
        : r_(r), signals_(signals), keys_(keys) {}

    /// Seals the certificate's data key (`data_key`, else its master copy) to the device and stores it on the
    /// assignment, then signals cert.updated. MASTER_ONLY keeps no wrap; without a device key or a master
    /// copy the assignment is marked pending, and a DEVICE_REQUIRED certificate (no master copy at all) gets
    /// a re-issue queued so every device receives a fresh key. The device row must be locked by the caller.
    wrap_state wrap(repo::work& w, std::int64_t cert_id, std::int64_t device_id,
                    std::optional<std::string> const& data_key = std::nullopt) const;
    /// wrap() for each of `devices` (the ones holding the certificate, read under its lock; locked here in id
    /// order): after an issuance.
    void wrap_all(repo::work& w, std::int64_t cert_id, std::vector<std::int64_t> const& devices,
                  std::string const& data_key) const;
    /// The feed the wraps signal on (for callers that signal besides).
    device_signals const& signals() const { return signals_; }
    /// The cert.updated ref for a device: wrap details when the key is sealed to it.
    static boost::json::object cert_updated_ref(std::int64_t cert_id, wrap_state s, std::string const& keyfp,
                                                std::string const& serial);

  private:
    repo::repositories& r_;
    device_signals const& signals_;
    crypto::keyring const& keys_;
};

}  // namespace certctrl::service
