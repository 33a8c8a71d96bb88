#pragma once
// Statement sets of the device side (agent contract 2.3, 2.4, 4.4-4.6, 5, 6), run on a unit of work (see
// work.hpp): devices, the device grant, device sessions and refresh tokens, the update feed, assignments,
// install configs and the CAs assigned to devices. They decide nothing: the services (service/device_*.hpp)
// choose, inside one transaction, what these statements read and write. Every method throws on an SQL error
// (the unit of work turns it into an error value) and runs only inside a unit of work.

#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/device.hpp"
#include "certctrl/repo/page.hpp"
#include "certctrl/repo/work.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace certctrl::repo {

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

/// devices.
class device_repository {
  public:
    virtual ~device_repository() = default;

    /// Inserts a device registered from the user side (no key yet); returns it with its id.
    /// Throws a duplicate-key error (conflict) when the public id is taken.
    virtual domain::device insert(work& w, domain::device d) = 0;
    /// How many devices the user has; the range is locked, so concurrent registrations count one another.
    virtual std::int64_t count_locked(work& w, std::int64_t user_id) = 0;
    virtual page<domain::device> list(work& w, std::int64_t user_id, page_query const& q) = 0;
    /// The devices holding a certificate of the user.
    virtual page<domain::device> list_for_certificate(work& w, std::int64_t user_id, std::int64_t cert_id,
                                                      page_query const& q) = 0;
    virtual std::optional<domain::device> get(work& w, std::int64_t user_id, std::int64_t id) = 0;
    virtual std::optional<domain::device> by_id(work& w, std::int64_t id) = 0;
    virtual std::optional<domain::device> by_public_id(work& w, std::int64_t user_id,
                                                       std::string const& public_id) = 0;
    /// The device, and whether `session_id` is one of its open sessions and the device's user is ACTIVE (a
    /// disabled user's devices lose access at once). One round trip.
    virtual std::optional<std::pair<domain::device, bool>> with_session(work& w, std::int64_t device_id,
                                                                        std::int64_t session_id) = 0;
    /// Records that the device received its feed up to `feed_id` (a poll's cursor, a WebSocket ack); never
    /// moves backwards.
    virtual void note_received(work& w, std::int64_t device_id, std::int64_t feed_id) = 0;
    /// The newest feed id each of `device_ids` is known to have received (absent: none), in one read per
    /// group of ids.
    virtual std::unordered_map<std::int64_t, std::int64_t> received_through(
        work& w, std::vector<std::int64_t> const& device_ids) = 0;
    /// Of `session_ids`, the ones still open whose device is ACTIVE and whose user is ACTIVE (what an open
    /// WebSocket re-checks). Any number of ids; they are asked in fixed-size groups.
    virtual std::vector<std::int64_t> live_sessions(work& w,
                                                    std::vector<std::int64_t> const& session_ids) = 0;
    /// Locks the user's row: registrations of one user then run one after another (two of them taking gap
    /// locks on the devices' indexes and inserting would deadlock).
    virtual void lock_user(work& w, std::int64_t user_id) = 0;
    /// Locks the user's device row for update; false when the user has no such device.
    virtual bool lock_owned(work& w, std::int64_t user_id, std::int64_t id) = 0;
    /// A shared lock on a device row: waits for the transactions writing its signals. False when none.
    virtual bool lock_shared(work& w, std::int64_t id) = 0;
    /// Locks device rows for update in id order, in one statement.
    virtual void lock(work& w, std::vector<std::int64_t> ids) = 0;

    /// The device holding a public id, locked for update.
    struct identity {
        std::int64_t id = 0;
        std::int64_t user_id = 0;
        std::optional<std::string> public_key;
        std::string status;
    };
    virtual std::optional<identity> lock_by_public_id(work& w, std::string const& public_id) = 0;
    /// Inserts an ACTIVE device with its key (`fingerprint`: BLAKE2b-256 of it); returns the id.
    virtual std::int64_t insert_registered(work& w, device_registration const& r,
                                           std::string const& fingerprint, std::int64_t now) = 0;
    /// Overwrites a device's registration data and key, and sets it ACTIVE.
    virtual void update_registered(work& w, std::int64_t id, device_registration const& r,
                                   std::string const& fingerprint, std::int64_t now) = 0;
    /// Sets status and/or name ("" keeps the value); false when the user has no such device.
    virtual bool update(work& w, std::int64_t user_id, std::int64_t id, std::string const& status,
                        std::string const& name) = 0;
    /// Records the agent's version ("" keeps it), address and last contact.
    virtual void note_agent(work& w, std::int64_t id, std::string const& version, std::string const& ip,
                            std::int64_t now) = 0;
    /// Deletes a device and its assignments (its sessions, feed and configs go by cascade).
    virtual void remove(work& w, std::int64_t id) = 0;
};

/// device_auth_codes: the OAuth 2.0 device grant (RFC 8628) and the registration codes it hands out.
class device_grant_repository {
  public:
    virtual ~device_grant_repository() = default;

    struct grant {
        std::int64_t id = 0;
        std::string status;  // PENDING | APPROVED | DENIED | ISSUED
        std::optional<std::int64_t> user_id;
        std::int64_t interval_s = 0;
        std::int64_t expires_at = 0;
        std::int64_t last_poll_ms = 0;
    };
    /// Stores a PENDING grant; false when the user code is taken.
    virtual bool insert(work& w, std::string const& device_code_hash, std::string const& user_code,
                        std::string const& scopes, std::int64_t interval_s, std::int64_t expires_at,
                        std::int64_t now) = 0;
    /// The unexpired grant of a user code, locked.
    virtual std::optional<grant> lock_by_user_code(work& w, std::string const& user_code,
                                                   std::int64_t now) = 0;
    /// The grant of a device code, locked.
    virtual std::optional<grant> lock_by_device_code(work& w, std::string const& device_code_hash) = 0;
    /// Records the user's decision; `device_public_id`: an existing device of the user the grant may register
    /// again.
    virtual void decide(work& w, std::int64_t id, std::string const& status, std::int64_t user_id,
                        std::optional<std::string> const& device_public_id) = 0;
    virtual void note_poll(work& w, std::int64_t id, std::int64_t now_ms, std::int64_t interval_s) = 0;
    /// APPROVED -> ISSUED with the registration code's hash and expiry.
    virtual void issue(work& w, std::int64_t id, std::string const& registration_code_hash,
                       std::int64_t expires_at) = 0;

    struct registration_code {
        std::int64_t id = 0;
        std::optional<std::int64_t> user_id;
        std::int64_t expires_at = 0;
        std::optional<std::int64_t> device_id;                 // the device it registered, once used
        std::optional<std::string> approved_device_public_id;  // an existing device it may register again
    };
    /// The ISSUED grant holding a registration code, locked.
    virtual std::optional<registration_code> lock_registration(work& w, std::string const& code_hash) = 0;
    virtual void mark_registered(work& w, std::int64_t id, std::int64_t device_id) = 0;
    /// Deletes grants whose codes are all long expired; returns how many.
    virtual std::int64_t purge(work& w, std::int64_t before) = 0;
};

/// device_sessions and device_refresh_tokens.
class device_session_repository {
  public:
    virtual ~device_session_repository() = default;

    /// Opens a session; returns its id.
    virtual std::int64_t open(work& w, std::int64_t device_id, std::int64_t user_id, std::int64_t now,
                              std::int64_t expires_at) = 0;
    virtual void add_refresh_token(work& w, std::string const& hash, std::int64_t session_id,
                                   std::int64_t expires_at, std::int64_t now) = 0;
    /// Ends every open session of a device.
    virtual void end_all(work& w, std::int64_t device_id, std::string const& reason, std::int64_t now) = 0;
    /// Ends one session (if still open).
    virtual void end(work& w, std::int64_t session_id, std::string const& reason, std::int64_t now) = 0;

    /// A refresh token with its session and device, locked.
    struct refresh_token {
        device_session session;
        std::int64_t rotated_at = 0;
        std::int64_t expires_at = 0;
        std::int64_t terminated_at = 0;
        std::string terminated_reason;
        std::string device_status;
        std::string device_public_id;
    };
    virtual std::optional<refresh_token> lock_refresh_token(work& w, std::string const& hash) = 0;
    virtual void mark_rotated(work& w, std::string const& hash, std::int64_t now) = 0;
    virtual void extend(work& w, std::int64_t session_id, std::int64_t expires_at) = 0;
    /// Deletes expired tokens and sessions, and sessions ended before `ended_before`; returns how many.
    virtual std::int64_t purge(work& w, std::int64_t now, std::int64_t ended_before) = 0;
};

/// device_updates: the per-device update feed (the outbox of device signals).
class device_feed_repository {
  public:
    virtual ~device_feed_repository() = default;

    /// Appends a signal; returns its id. The caller holds the device row's lock, so one device's signals
    /// commit in id order.
    virtual std::int64_t append(work& w, std::int64_t device_id, std::string const& type,
                                boost::json::object const& ref, std::int64_t ts_ms) = 0;
    /// Drops the device's signals beyond the newest `keep`, remembering the highest id dropped.
    virtual void trim(work& w, std::int64_t device_id, std::size_t keep) = 0;
    /// The device's signals after `after`, oldest first, at most `limit`.
    virtual std::vector<device_signal> after(work& w, std::int64_t device_id, std::int64_t after,
                                             std::size_t limit) = 0;
    /// The highest id trimmed from the device's feed, and the highest id of the whole feed.
    struct bounds {
        std::int64_t trimmed_through = 0;
        std::int64_t newest = 0;
    };
    /// Nothing when the device does not exist.
    virtual std::optional<bounds> bounds_of(work& w, std::int64_t device_id) = 0;
    /// The device's oldest kept signal id (0: none).
    virtual std::int64_t oldest(work& w, std::int64_t device_id) = 0;
    /// Feed rows after `after` as (id, device id), oldest first, at most 10000.
    virtual std::vector<std::pair<std::int64_t, std::int64_t>> changed_since(work& w, std::int64_t after) = 0;
    /// The newest feed id written before `ts_ms` (0: none).
    virtual std::int64_t newest_before(work& w, std::int64_t ts_ms) = 0;
};

/// certificate_assignments, with what a device is sent of an assigned certificate.
class assignment_repository {
  public:
    virtual ~assignment_repository() = default;

    virtual bool exists(work& w, std::int64_t cert_id, std::int64_t device_id) = 0;
    virtual void insert(work& w, std::int64_t cert_id, std::int64_t device_id, std::int64_t now) = 0;
    /// Deletes the user's assignment; false when there was none.
    virtual bool remove(work& w, std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id) = 0;
    virtual std::optional<domain::assignment> get(work& w, std::int64_t user_id, std::int64_t cert_id,
                                                  std::int64_t device_id) = 0;
    /// Device ids holding a certificate, ascending.
    virtual std::vector<std::int64_t> devices_of(work& w, std::int64_t cert_id) = 0;
    /// Certificate ids assigned to a device, ascending.
    virtual std::vector<std::int64_t> certificates_of(work& w, std::int64_t device_id) = 0;

    /// What sealing a certificate's key to a device needs to know.
    struct wrap_inputs {
        std::string policy;  // the certificate's key_dist_policy
        bool issued = false;
        std::string serial;
        std::int64_t user_id = 0;
        std::optional<std::string> device_key;      // the device's X25519 key
        std::optional<crypto::wrapped_key> master;  // the data key under the master key, when kept
        bool was_pending = false;                   // the assignment holds the wrap-pending sentinel now
    };
    virtual std::optional<wrap_inputs> wrap_inputs_of(work& w, std::int64_t cert_id,
                                                      std::int64_t device_id) = 0;
    /// Stores the sealed data key (80 bytes, or the sentinel; nothing: none) and the device key's
    /// fingerprint.
    virtual void store_wrap(work& w, std::int64_t cert_id, std::int64_t device_id,
                            std::optional<std::string> const& sealed,
                            std::optional<std::string> const& keyfp) = 0;
    /// The assigned certificate of the user with its key material; nothing when not assigned.
    virtual std::optional<device_cert_material> material(work& w, std::int64_t user_id,
                                                         std::int64_t device_id, std::int64_t cert_id) = 0;
};

/// device_install_configs and their history.
class install_config_repository {
  public:
    virtual ~install_config_repository() = default;

    /// The device's config (locked for update when `lock`); nothing before the first write.
    virtual std::optional<install_config> current(work& w, std::int64_t device_id, bool lock) = 0;
    /// Inserts a device's first config; returns its id.
    virtual std::int64_t insert(work& w, install_config const& c) = 0;
    /// Writes version, installs, hash, script, updated_by and updated_at of config `c.id`.
    virtual void update(work& w, install_config const& c) = 0;
    virtual void add_history(work& w, install_config const& c, std::string const& change_note) = 0;
    /// Deletes the device's history versions up to `through_version` (the oldest beyond what is kept).
    virtual void prune_history(work& w, std::int64_t device_id, int through_version) = 0;
    virtual page<install_config> history(work& w, std::int64_t device_id, page_query const& q) = 0;
    /// One version of the user's device's config from the history.
    virtual std::optional<install_config> version(work& w, std::int64_t user_id, std::int64_t device_id,
                                                  int version) = 0;
};

/// device_cas: CAs a device trusts.
class device_ca_repository {
  public:
    virtual ~device_ca_repository() = default;

    /// The user's CA when assigned to the device.
    virtual std::optional<domain::ca> get(work& w, std::int64_t user_id, std::int64_t device_id,
                                          std::int64_t ca_id) = 0;
    virtual page<domain::ca> list(work& w, std::int64_t user_id, std::int64_t device_id,
                                  page_query const& q) = 0;
    /// False when it was assigned already.
    virtual bool insert(work& w, std::int64_t device_id, std::int64_t ca_id, std::int64_t now) = 0;
    /// False when it was not assigned.
    virtual bool remove(work& w, std::int64_t device_id, std::int64_t ca_id) = 0;
    /// Device ids a CA is assigned to.
    virtual std::vector<std::int64_t> devices_of(work& w, std::int64_t ca_id) = 0;
    virtual void remove_all(work& w, std::int64_t ca_id) = 0;
};

}  // namespace certctrl::repo
