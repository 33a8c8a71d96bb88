#pragma once
// The device update feed and device key wraps, written inside the caller's transaction (internal to
// certctrl_repo_mysql): a change and the signals it causes commit together.

#include "certctrl/core/hex.hpp"
#include "certctrl/repo/devices.hpp"

#include "rows.hpp"

#include <cppconn/statement.h>

#include <algorithm>
#include <atomic>
#include <chrono>

namespace certctrl::repo::mysql_detail {

std::size_t kept_signals_per_device();

/// Writes the next version of a device's install config with its history row and install.updated signal
/// (the device row is locked by the caller).
install_config write_install_config(sql::Connection& c, std::int64_t user_id, std::int64_t device_id,
                                    boost::json::array const& installs,
                                    std::optional<std::string> const& script, std::string const& updated_by,
                                    std::string const& change_note, std::int64_t now);

inline std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Lock order of every transaction that writes signals or wraps: the certificate or CA row first, then the
/// device rows in id order, then assignment rows. emit_signal() locks its device again (a no-op then).
inline void lock_devices(sql::Connection& c, std::vector<std::int64_t> ids) {
    if (ids.empty()) {
        return;
    }
    std::sort(ids.begin(), ids.end());
    std::string list;  // integers only, so the list is built into the statement
    for (auto id : ids) {
        list += (list.empty() ? "" : ",") + std::to_string(id);
    }
    // One statement; InnoDB takes the primary-key locks in the order it reads them, ascending here.
    std::unique_ptr<sql::Statement> st(c.createStatement());
    rs_ptr(st->executeQuery("SELECT id FROM devices WHERE id IN (" + list + ") ORDER BY id FOR UPDATE"));
}

/// Appends a signal to a device's feed and drops the oldest beyond what is kept, remembering the highest
/// id dropped (a cursor before it must resync).
inline void emit_signal(sql::Connection& c, std::int64_t device_id, std::string const& type,
                        boost::json::object const& ref) {
    // The device row is locked first, so a device's signals commit in the order of their ids: a reader that
    // saw id N never misses a smaller id committed later (the feed cursor relies on it).
    exists(c, "SELECT id FROM devices WHERE id = ? FOR UPDATE", {device_id});
    auto ins = prepare(c, "INSERT INTO device_updates (device_id, type, ref, ts_ms) VALUES (?, ?, ?, ?)");
    ins->setInt64(1, device_id);
    ins->setString(2, type);
    ins->setString(3, boost::json::serialize(ref));
    ins->setInt64(4, now_ms());
    ins->executeUpdate();
    auto edge =
        prepare(c, "SELECT id FROM device_updates WHERE device_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?");
    edge->setInt64(1, device_id);
    edge->setInt64(2, static_cast<std::int64_t>(kept_signals_per_device()));
    rs_ptr rs(edge->executeQuery());
    if (rs->next()) {
        std::int64_t const through = i64(*rs, 1);
        auto del = prepare(c, "DELETE FROM device_updates WHERE device_id = ? AND id <= ?");
        del->setInt64(1, device_id);
        del->setInt64(2, through);
        del->executeUpdate();
        auto mark =
            prepare(c,
                    "UPDATE devices SET updates_trimmed_through = GREATEST(updates_trimmed_through, ?) "
                    "WHERE id = ?");
        mark->setInt64(1, through);
        mark->setInt64(2, device_id);
        mark->executeUpdate();
    }
}

/// Adds the default install item for a certificate to the device's install config unless an item already
/// refers to it (a new config version, history row and install.updated signal).
void add_default_install_item(sql::Connection& c, std::int64_t user_id, std::int64_t device_id,
                              std::int64_t cert_id, std::string const& domain_name, std::int64_t now);

/// How an assignment's sealed key stands after wrap_assignment().
enum class wrap_state {
    wrapped,      // sealed to the device's key
    pending,      // the 48-zero sentinel: a wrap is owed (no device key yet, or no master copy to seal from)
    not_issued,   // nothing to seal yet
    master_only,  // the policy keeps no device wraps
};

/// The `cert.updated` ref for a device: wrap details when the key is sealed to it.
inline boost::json::object cert_updated_ref(std::int64_t cert_id, wrap_state s, std::string const& keyfp,
                                            std::string const& serial) {
    boost::json::object ref;
    ref["cert_id"] = cert_id;
    if (s == wrap_state::wrapped) {
        ref["wrap_ready"] = true;
        ref["wrap_alg"] = "x25519";
        ref["device_keyfp_b64"] = base64_encode(keyfp);
    }
    if (!serial.empty()) {
        ref["serial"] = serial;
    }
    return ref;
}

inline void store_wrap(sql::Connection& c, std::int64_t cert_id, std::int64_t device_id,
                       std::optional<std::string> const& sealed, std::optional<std::string> const& keyfp) {
    auto ps =
        prepare(c,
                "UPDATE certificate_assignments SET enc_data_key = ?, device_keyfp = ?, wrap_alg = 'x25519' "
                "WHERE cert_id = ? AND device_id = ?");
    set_optional(*ps, 1, sealed);
    set_optional(*ps, 2, keyfp);
    ps->setInt64(3, cert_id);
    ps->setInt64(4, device_id);
    ps->executeUpdate();
}

/// Seals the certificate's current data key (from its master copy) to the device and stores it on the
/// assignment row, then signals cert.updated. `data_key`: the key to seal instead of opening the master copy
/// (an issuance that has just made it).
inline wrap_state wrap_assignment(sql::Connection& c, std::int64_t cert_id, std::int64_t device_id,
                                  device_sealer const& sealer,
                                  std::optional<std::string> const& data_key = {}) {
    auto q =
        prepare(c,
                "SELECT c.key_dist_policy, c.enc_privkey IS NOT NULL, c.serial_number, d.dev_public_key, "
                "w.key_version, w.wrapped_data_key, w.nonce, w.tag, c.user_id FROM certificates c "
                "JOIN devices d ON d.id = ? LEFT JOIN certificate_master_wrapped w ON w.cert_id = c.id "
                "WHERE c.id = ?");
    q->setInt64(1, device_id);
    q->setInt64(2, cert_id);
    rs_ptr rs(q->executeQuery());
    if (!rs->next()) {
        return wrap_state::not_issued;
    }
    std::string const policy = rs->getString(1);
    bool const issued = rs->getBoolean(2);
    std::string const serial = rs->getString(3);
    auto const pk = opt_string(*rs, 4);
    std::optional<crypto::wrapped_key> master;
    if (!rs->isNull(5)) {
        master = crypto::wrapped_key{
            static_cast<std::uint32_t>(rs->getInt(5)),
            {std::string(rs->getString(7)), std::string(rs->getString(6)), std::string(rs->getString(8))}};
    }
    wrap_state state = wrap_state::pending;
    std::string keyfp;
    if (policy == "MASTER_ONLY") {
        state = wrap_state::master_only;
        store_wrap(c, cert_id, device_id, std::nullopt, std::nullopt);
    } else if (!issued) {
        state = wrap_state::not_issued;
        store_wrap(c, cert_id, device_id, std::nullopt, std::nullopt);
    } else {
        std::optional<std::string> key = data_key;
        if (!key && master) {
            key = sealer.open(cert_id, *master);
        }
        if (key && pk) {
            keyfp = sealer.fingerprint(*pk);
            store_wrap(c, cert_id, device_id, sealer.seal(*key, *pk), keyfp);
            state = wrap_state::wrapped;
        } else {
            store_wrap(c, cert_id, device_id, wrap_pending_sentinel(), std::nullopt);
            if (!master && pk) {
                // No master copy to seal from (DEVICE_REQUIRED): a new key is issued for every device holding
                // the certificate (agent contract 5.2). An issuance already in flight covers it.
                auto q2 = prepare(
                    c,
                    "INSERT IGNORE INTO issue_history (cert_id, user_id, status, kind, inflight_cert_id, "
                    "run_after, created_at) VALUES (?, ?, 'PENDING', 'renew', ?, UNIX_TIMESTAMP(), "
                    "UNIX_TIMESTAMP())");
                q2->setInt64(1, cert_id);
                q2->setInt64(2, i64(*rs, 9));
                q2->setInt64(3, cert_id);
                q2->executeUpdate();
            }
        }
    }
    emit_signal(c, device_id, "cert.updated", cert_updated_ref(cert_id, state, keyfp, serial));
    return state;
}

/// The devices a certificate is assigned to.
inline std::vector<std::int64_t> devices_of_cert(sql::Connection& c, std::int64_t cert_id) {
    auto q = prepare(c, "SELECT device_id FROM certificate_assignments WHERE cert_id = ? ORDER BY device_id");
    q->setInt64(1, cert_id);
    rs_ptr rs(q->executeQuery());
    std::vector<std::int64_t> out;
    while (rs->next()) {
        out.push_back(i64(*rs, 1));
    }
    return out;
}

}  // namespace certctrl::repo::mysql_detail
