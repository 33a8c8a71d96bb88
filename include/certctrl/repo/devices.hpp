#pragma once
// Repositories of the device side (agent contract 2.3, 2.4, 4.4-4.6, 5, 6): the device grant, registration
// and device sessions; the per-device update feed; install configs; CAs assigned to devices; and what a
// device fetches. Signals are written in the transaction of the change that causes them.

#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/device.hpp"
#include "certctrl/repo/identity.hpp"
#include "certctrl/repo/page.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <functional>

namespace certctrl::repo {

/// Seals certificate data keys to device keys inside a repository transaction. `open` returns a
/// certificate's data key from its master-wrapped copy (nothing when it does not open); `seal` seals a data
/// key to an X25519 public key (80 bytes) and `fingerprint` is BLAKE2b-256 of a device key.
struct device_sealer {
    std::function<std::optional<std::string>(std::int64_t cert_id, crypto::wrapped_key const&)> open;
    std::function<std::string(std::string const& data_key, std::string const& device_pk)> seal;
    std::function<std::string(std::string const& device_pk)> fingerprint;
};

/// The 48 zero bytes that mark an assignment whose sealed key is still to come (agent contract 4.5).
inline std::string wrap_pending_sentinel() {
    return std::string(48, '\0');
}

/// What the agent registers (agent contract 2.3 step 4).
struct device_registration {
    std::int64_t user_id = 0;
    std::string device_public_id;  // lower-case UUID
    std::string name;
    std::string platform;
    std::string model;
    std::string app_version;
    std::string ip;
    std::string user_agent;
    std::string push_token;
    std::string public_key;  // 32-byte X25519 key
};

/// A device session (one registration) and the device it belongs to.
struct device_session {
    std::int64_t session_id = 0;
    std::int64_t device_id = 0;
    std::int64_t user_id = 0;
};

/// A device after registration, and the session opened for it.
struct registered_device {
    domain::device device;
    device_session session;
    bool created = false;
};

class device_auth_repository {
  public:
    virtual ~device_auth_repository() = default;

    /// Stores a new device grant. False when the user code is taken (the caller draws another).
    virtual task<bool> create_code(std::string device_code_hash, std::string user_code, std::string scopes,
                                   std::int64_t interval_s, std::int64_t expires_at, std::int64_t now) = 0;

    /// Approves or denies a PENDING grant for `user_id`. Returns the grant's status afterwards
    /// ("APPROVED", "DENIED", or "ISSUED" when it was already used). Errors: not_found (no such live code).
    virtual task<std::string> decide(std::string user_code, std::int64_t user_id, bool approve,
                                     std::int64_t now) = 0;

    /// What a poll answers (agent contract 2.3 step 3).
    struct poll_result {
        std::string status;  // authorization_pending | slow_down | access_denied | expired | ready
        std::int64_t user_id = 0;
        std::int64_t interval_s = 0;
    };
    /// Polls a grant: slow_down when polled faster than its interval; ready once (APPROVED -> ISSUED, the
    /// registration code's hash stored with its expiry). Errors: not_found (unknown device code).
    virtual task<poll_result> poll(std::string device_code_hash, std::string registration_code_hash,
                                   std::int64_t registration_expires_at, std::int64_t now_ms) = 0;

    using registered = registered_device;
    /// Registers (or re-registers: same device_public_id, same row) a device and opens a session whose
    /// refresh token hash is `refresh_hash`. With `registration_code_hash`, the code must be the user's,
    /// unexpired, and unused or used before for this same device. A changed device key re-seals the
    /// device's assignments (signals included). Earlier sessions of the device end.
    /// Errors: unauthenticated (bad code), conflict (public id of another user), database.
    virtual task<registered> register_device(device_registration reg,
                                             std::optional<std::string> registration_code_hash,
                                             std::string refresh_hash, std::int64_t refresh_expires_at,
                                             std::int64_t now, device_sealer sealer) = 0;

    /// Rotates a refresh token. Errors: unauthenticated (unknown, expired, or the session ended), and
    /// conflict when the token was already rotated: the session is then ended (the family is revoked).
    /// With `expect_user`/`expect_public_id` (0/"": any) a token of another user or device is refused
    /// (unauthenticated) before anything changes.
    virtual task<device_session> rotate(std::string old_hash, std::string new_hash,
                                        std::int64_t new_expires_at, std::int64_t now,
                                        std::int64_t expect_user, std::string expect_public_id) = 0;

    /// The live device behind an access token: the device is the user's and ACTIVE, the session open.
    /// Errors: forbidden (device revoked, not the user's, or session ended), not_found (no such device).
    virtual task<domain::device> check_session(std::int64_t user_id, std::int64_t device_id,
                                               std::int64_t session_id) = 0;

    /// Changes a device's status and/or name ("" keeps it). REVOKED or LOST ends its sessions, so its
    /// tokens stop working at once. Errors: not_found.
    virtual task<domain::device> update_device(std::int64_t user_id, std::int64_t device_id,
                                               std::string status, std::string name, std::int64_t now) = 0;

    /// Removes expired grants; returns how many.
    virtual task<std::int64_t> purge(std::int64_t now) = 0;
};

/// One signal of the update feed (agent contract 6.2).
struct device_signal {
    std::int64_t id = 0;  // the cursor after this signal
    std::string type;
    std::int64_t ts_ms = 0;
    boost::json::object ref;
};

/// An install config (agent contract 4.6).
struct install_config {
    std::int64_t id = 0;
    std::int64_t device_id = 0;
    std::int64_t user_id = 0;
    int version = 0;
    boost::json::array installs;
    std::string installs_hash;
    std::optional<std::string> after_update_script;
    std::string updated_by;
    std::string change_note;  // history rows only
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
};

/// What a device may fetch of one of its certificates.
struct device_cert_material {
    domain::certificate cert;
    bool issued = false;
    std::optional<std::string> enc_data_key;  // the sealed data key (or the 48-zero sentinel)
    std::string device_keyfp;
    std::string wrap_alg;
    crypto::gcm_box private_key;                  // when issued
    std::optional<crypto::wrapped_key> data_key;  // the master copy, when kept
};

class device_feed_repository {
  public:
    virtual ~device_feed_repository() = default;

    /// A page of the feed and the cursor after it.
    struct updates_page {
        std::vector<device_signal> signals;
        std::int64_t cursor = 0;  // the last signal's id; when none: `after`, or the feed's high-water mark
    };
    /// The signals after `after` (oldest first, at most `limit`; 0: from the oldest kept). Errors:
    /// updates_cursor_expired when `after` is before the kept window or past the whole feed
    /// (params: earliest_retained_id).
    virtual task<updates_page> updates(std::int64_t device_id, std::int64_t after, std::size_t limit) = 0;
    /// The feed rows after `after` as (id, device id), oldest first, at most 10000; after < 0: only the
    /// newest row (none when the feed is empty).
    virtual task<std::vector<std::pair<std::int64_t, std::int64_t>>> changed_since(std::int64_t after) = 0;

    /// Records the agent's version and last contact.
    virtual task<bool> note_agent(std::int64_t device_id, std::string version, std::string ip,
                                  std::int64_t now) = 0;

    /// A certificate assigned to the device, with its key material. Nothing when not assigned.
    virtual task<std::optional<device_cert_material>> material(std::int64_t user_id, std::int64_t device_id,
                                                               std::int64_t cert_id) = 0;

    /// A CA assigned to the device. Nothing when not assigned.
    virtual task<std::optional<domain::ca>> device_ca(std::int64_t user_id, std::int64_t device_id,
                                                      std::int64_t ca_id) = 0;
    virtual task<page<domain::ca>> device_cas(std::int64_t user_id, std::int64_t device_id, page_query q) = 0;
    /// Assigns a CA to a device (signal ca.assigned). False when it already was. Errors: not_found.
    virtual task<bool> assign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id,
                                 std::int64_t now) = 0;
    /// Signal ca.unassigned. False when it was not assigned.
    virtual task<bool> unassign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id,
                                   std::int64_t now) = 0;

    /// The device's install config; nothing when none was written yet.
    virtual task<std::optional<install_config>> install_config_of(std::int64_t user_id,
                                                                  std::int64_t device_id) = 0;
    /// Writes a new version (history row and install.updated signal in the same transaction).
    /// Errors: not_found (device), conflict (`expected_version` given and not current).
    virtual task<install_config> put_install_config(std::int64_t user_id, std::int64_t device_id,
                                                    boost::json::array installs,
                                                    std::optional<std::string> after_update_script,
                                                    std::string updated_by, std::string change_note,
                                                    std::int64_t now) = 0;
    virtual task<page<install_config>> install_config_history(std::int64_t user_id, std::int64_t device_id,
                                                              page_query q) = 0;
    /// One version from the history. Nothing when there is no such version.
    virtual task<std::optional<install_config>> install_config_version(std::int64_t user_id,
                                                                       std::int64_t device_id,
                                                                       int version) = 0;
};

/// Signals kept per device before the oldest are dropped (shared by every MySQL repository that writes
/// signals; set once at start-up from devices.updates_kept_per_device).
void set_kept_signals_per_device(std::size_t n);

}  // namespace certctrl::repo
