// MySQL implementations of the device-side repositories: the device grant, registration and sessions, the
// update feed, install configs, device CAs and what a device fetches.
#include "certctrl/crypto/random.hpp"
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "rows.hpp"
#include "signals.hpp"

#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <memory>

namespace certctrl::repo {

namespace {
std::atomic<std::size_t> g_kept_signals{1000};
}  // namespace

void set_kept_signals_per_device(std::size_t n) {
    g_kept_signals = n == 0 ? 1 : n;
}

namespace mysql_detail {
std::size_t kept_signals_per_device() {
    return g_kept_signals.load();
}
}  // namespace mysql_detail

namespace {

using boost::asio::use_awaitable;
using namespace mysql_detail;

// ------------------------------------------------------------------------------------------- auth

class mysql_device_auth final : public device_auth_repository {
  public:
    explicit mysql_device_auth(db::pool& p) : pool_(p) {}

    task<bool> create_code(std::string device_code_hash, std::string user_code, std::string scopes,
                           std::int64_t interval_s, std::int64_t expires_at, std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(
                    c,
                    "INSERT IGNORE INTO device_auth_codes (device_code_hash, user_code, status, scopes, "
                    "interval_s, expires_at, created_at) VALUES (?, ?, 'PENDING', ?, ?, ?, ?)");
                ps->setString(1, device_code_hash);
                ps->setString(2, user_code);
                ps->setString(3, scopes);
                ps->setInt64(4, interval_s);
                ps->setInt64(5, expires_at);
                ps->setInt64(6, now);
                return ps->executeUpdate() == 1;
            },
            use_awaitable);
    }

    task<std::string> decide(std::string user_code, std::int64_t user_id, bool approve,
                             std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::string> {
                transaction tx(c);
                auto q = prepare(c,
                                 "SELECT id, status, user_id FROM device_auth_codes WHERE user_code = ? AND "
                                 "expires_at > ? FOR UPDATE");
                q->setString(1, user_code);
                q->setInt64(2, now);
                rs_ptr rs(q->executeQuery());
                if (!rs->next()) {
                    return make_error(errc::not_found, "No pending device authorization with this user_code");
                }
                std::int64_t const id = i64(*rs, 1);
                std::string status = rs->getString(2);
                auto const owner = opt_int(*rs, 3);
                if (status != "PENDING") {
                    if (owner && *owner != user_id) {
                        return make_error(errc::not_found,
                                          "No pending device authorization with this user_code");
                    }
                    return status;
                }
                status = approve ? "APPROVED" : "DENIED";
                auto u = prepare(c, "UPDATE device_auth_codes SET status = ?, user_id = ? WHERE id = ?");
                u->setString(1, status);
                u->setInt64(2, user_id);
                u->setInt64(3, id);
                u->executeUpdate();
                tx.commit();
                return status;
            },
            use_awaitable);
    }

    task<poll_result> poll(std::string device_code_hash, std::string registration_code_hash,
                           std::int64_t registration_expires_at, std::int64_t now_ms) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<poll_result> {
                transaction tx(c);
                auto q = prepare(c,
                                 "SELECT id, status, user_id, interval_s, expires_at, last_poll_ms FROM "
                                 "device_auth_codes WHERE device_code_hash = ? FOR UPDATE");
                q->setString(1, device_code_hash);
                rs_ptr rs(q->executeQuery());
                if (!rs->next()) {
                    return make_error(errc::not_found, "Unknown device_code");
                }
                std::int64_t const id = i64(*rs, 1);
                std::string const status = rs->getString(2);
                poll_result out;
                out.user_id = opt_int(*rs, 3).value_or(0);
                out.interval_s = i64(*rs, 4);
                std::int64_t const expires_at = i64(*rs, 5);
                std::int64_t const last_poll = i64(*rs, 6);
                if (expires_at * 1000 <= now_ms || status == "ISSUED") {
                    out.status = "expired";
                    return out;
                }
                // A poll sooner than the interval (with a little leeway for timer jitter) slows the device
                // down: RFC 8628 3.5 has the client add 5 s; the server remembers the new interval.
                bool const too_fast = last_poll > 0 && now_ms - last_poll < out.interval_s * 1000 - 500;
                auto touch =
                    prepare(c, "UPDATE device_auth_codes SET last_poll_ms = ?, interval_s = ? WHERE id = ?");
                touch->setInt64(1, now_ms);
                touch->setInt64(2, too_fast ? out.interval_s + 5 : out.interval_s);
                touch->setInt64(3, id);
                touch->executeUpdate();
                if (too_fast) {
                    out.status = "slow_down";
                    out.interval_s += 5;
                } else if (status == "PENDING") {
                    out.status = "authorization_pending";
                } else if (status == "DENIED") {
                    out.status = "access_denied";
                } else {
                    auto issue =
                        prepare(c,
                                "UPDATE device_auth_codes SET status = 'ISSUED', registration_code_hash = ?, "
                                "registration_expires_at = ? WHERE id = ?");
                    issue->setString(1, registration_code_hash);
                    issue->setInt64(2, registration_expires_at);
                    issue->setInt64(3, id);
                    issue->executeUpdate();
                    out.status = "ready";
                }
                tx.commit();
                return out;
            },
            use_awaitable);
    }

    task<registered> register_device(device_registration reg,
                                     std::optional<std::string> registration_code_hash,
                                     std::string refresh_hash, std::int64_t refresh_expires_at,
                                     std::int64_t now, device_sealer sealer) override {
        return db::async_offload(
            pool_,
            [reg = std::move(reg), code = std::move(registration_code_hash), refresh_hash, refresh_expires_at,
             now, sealer = std::move(sealer)](sql::Connection& c) -> result<registered> {
                transaction tx(c);
                std::optional<std::int64_t> code_id;
                std::optional<std::int64_t> code_device;
                if (code) {
                    auto q =
                        prepare(c,
                                "SELECT id, user_id, registration_expires_at, registered_device_id FROM "
                                "device_auth_codes WHERE registration_code_hash = ? AND status = 'ISSUED' "
                                "FOR UPDATE");
                    q->setString(1, *code);
                    rs_ptr rs(q->executeQuery());
                    if (!rs->next() || opt_int(*rs, 2).value_or(0) != reg.user_id || i64(*rs, 3) <= now) {
                        return make_error(errc::unauthenticated,
                                          "registration_code is unknown, expired, or not for this user");
                    }
                    code_id = i64(*rs, 1);
                    code_device = opt_int(*rs, 4);
                }
                auto find = prepare(
                    c,
                    "SELECT id, user_id, dev_public_key, status FROM devices WHERE device_public_id = ? "
                    "FOR UPDATE");
                find->setString(1, reg.device_public_id);
                rs_ptr found(find->executeQuery());
                registered out;
                std::optional<std::string> old_key;
                if (found->next()) {
                    out.device.id = i64(*found, 1);
                    if (i64(*found, 2) != reg.user_id) {
                        return make_error(errc::conflict,
                                          "device_public_id is registered to another account");
                    }
                    old_key = opt_string(*found, 3);
                    std::string const status = found->getString(4);
                    if (status != "ACTIVE") {
                        // A revoked or lost device stays out until its user takes it back: registering again
                        // must not swap in a new key that every assigned certificate would be sealed to.
                        return make_error(errc::forbidden, "The device is " + status +
                                                               "; its user must set it ACTIVE again (PUT "
                                                               ".../devices/:device_id) before it registers");
                    }
                } else {
                    out.created = true;
                }
                if (code_device && *code_device != out.device.id) {
                    return make_error(errc::unauthenticated,
                                      "registration_code was already used for another device");
                }
                std::string const fp = sealer.fingerprint(reg.public_key);
                if (out.created) {
                    auto ins =
                        prepare(c,
                                "INSERT INTO devices (user_id, device_public_id, name, platform, model, "
                                "app_version, ip, user_agent, push_token, status, dev_public_key, "
                                "device_secret_hash, fp_hash, fp_version, created_at, last_seen_at) VALUES "
                                "(?, ?, ?, ?, ?, ?, ?, ?, ?, 'ACTIVE', ?, ?, ?, 1, ?, ?)");
                    ins->setInt64(1, reg.user_id);
                    ins->setString(2, reg.device_public_id);
                    ins->setString(3, reg.name);
                    ins->setString(4, reg.platform);
                    ins->setString(5, reg.model);
                    ins->setString(6, reg.app_version);
                    ins->setString(7, reg.ip);
                    ins->setString(8, reg.user_agent);
                    ins->setString(9, reg.push_token);
                    ins->setString(10, reg.public_key);
                    ins->setString(11, fp);
                    ins->setString(12, fp);
                    ins->setInt64(13, now);
                    ins->setInt64(14, now);
                    ins->executeUpdate();
                    out.device.id = last_insert_id(c);
                } else {
                    auto up = prepare(
                        c,
                        "UPDATE devices SET name = ?, platform = ?, model = ?, app_version = ?, ip = ?, "
                        "user_agent = ?, push_token = ?, status = 'ACTIVE', dev_public_key = ?, "
                        "device_secret_hash = ?, fp_hash = ?, fp_version = 1, last_seen_at = ? WHERE id = ?");
                    up->setString(1, reg.name);
                    up->setString(2, reg.platform);
                    up->setString(3, reg.model);
                    up->setString(4, reg.app_version);
                    up->setString(5, reg.ip);
                    up->setString(6, reg.user_agent);
                    up->setString(7, reg.push_token);
                    up->setString(8, reg.public_key);
                    up->setString(9, fp);
                    up->setString(10, fp);
                    up->setInt64(11, now);
                    up->setInt64(12, out.device.id);
                    up->executeUpdate();
                    // Earlier sessions of this device end: the agent that registers now holds the only live
                    // one.
                    auto end = prepare(c,
                                       "UPDATE device_sessions SET terminated_at = ?, terminated_reason = "
                                       "'re-registered' WHERE device_id = ? AND terminated_at = 0");
                    end->setInt64(1, now);
                    end->setInt64(2, out.device.id);
                    end->executeUpdate();
                }
                if (code_id && !code_device) {
                    auto used =
                        prepare(c, "UPDATE device_auth_codes SET registered_device_id = ? WHERE id = ?");
                    used->setInt64(1, out.device.id);
                    used->setInt64(2, *code_id);
                    used->executeUpdate();
                }
                if (!old_key || *old_key != reg.public_key) {
                    // A new device key: every assignment is sealed again to it (or marked pending).
                    auto q = prepare(c, "SELECT cert_id FROM certificate_assignments WHERE device_id = ?");
                    q->setInt64(1, out.device.id);
                    rs_ptr rs(q->executeQuery());
                    std::vector<std::int64_t> certs;
                    while (rs->next()) {
                        certs.push_back(i64(*rs, 1));
                    }
                    for (auto cert_id : certs) {
                        wrap_assignment(c, cert_id, out.device.id, sealer);
                    }
                }
                auto sess =
                    prepare(c,
                            "INSERT INTO device_sessions (device_id, user_id, started_at, expires_at) VALUES "
                            "(?, ?, ?, ?)");
                sess->setInt64(1, out.device.id);
                sess->setInt64(2, reg.user_id);
                sess->setInt64(3, now);
                sess->setInt64(4, refresh_expires_at);
                sess->executeUpdate();
                out.session = {last_insert_id(c), out.device.id, reg.user_id};
                auto tok = prepare(
                    c,
                    "INSERT INTO device_refresh_tokens (token_hash, session_id, expires_at, created_at) "
                    "VALUES (?, ?, ?, ?)");
                tok->setString(1, refresh_hash);
                tok->setInt64(2, out.session.session_id);
                tok->setInt64(3, refresh_expires_at);
                tok->setInt64(4, now);
                tok->executeUpdate();
                auto dev = find_one<domain::device>(
                    c, std::string("SELECT ") + device_columns + " FROM devices d WHERE d.id = ?",
                    read_device, out.device.id);
                out.device = *dev;
                tx.commit();
                return out;
            },
            use_awaitable);
    }

    task<device_session> rotate(std::string old_hash, std::string new_hash, std::int64_t new_expires_at,
                                std::int64_t now, std::int64_t expect_user,
                                std::string expect_public_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<device_session> {
                transaction tx(c);
                auto q =
                    prepare(c,
                            "SELECT t.session_id, t.rotated_at, t.expires_at, s.device_id, s.user_id, "
                            "s.terminated_at, d.status, s.terminated_reason, d.device_public_id FROM "
                            "device_refresh_tokens t "
                            "JOIN device_sessions s ON "
                            "s.id = t.session_id JOIN devices d ON d.id = s.device_id WHERE t.token_hash = ? "
                            "FOR UPDATE");
                q->setString(1, old_hash);
                rs_ptr rs(q->executeQuery());
                if (!rs->next()) {
                    return make_error(errc::unauthenticated, "Unknown refresh token");
                }
                device_session s{i64(*rs, 1), i64(*rs, 4), i64(*rs, 5)};
                if ((expect_user != 0 && s.user_id != expect_user) ||
                    (!expect_public_id.empty() && rs->getString(9) != expect_public_id)) {
                    return make_error(errc::unauthenticated, "refresh_token does not belong to this device");
                }
                if (i64(*rs, 2) != 0 || rs->getString(8) == "refresh_token_reuse") {
                    // Reuse of a rotated token: someone else may hold the family, so all of it ends.
                    auto end = prepare(c,
                                       "UPDATE device_sessions SET terminated_at = ?, terminated_reason = "
                                       "'refresh_token_reuse' WHERE id = ? AND terminated_at = 0");
                    end->setInt64(1, now);
                    end->setInt64(2, s.session_id);
                    end->executeUpdate();
                    tx.commit();
                    return make_error(errc::refresh_token_rotated,
                                      "Refresh token was rotated; the session is revoked (login again)");
                }
                if (i64(*rs, 3) <= now || i64(*rs, 6) != 0 || rs->getString(7) != "ACTIVE") {
                    return make_error(errc::unauthenticated,
                                      "The refresh token has expired or its session ended");
                }
                auto old = prepare(c, "UPDATE device_refresh_tokens SET rotated_at = ? WHERE token_hash = ?");
                old->setInt64(1, now);
                old->setString(2, old_hash);
                old->executeUpdate();
                auto tok = prepare(
                    c,
                    "INSERT INTO device_refresh_tokens (token_hash, session_id, expires_at, created_at) "
                    "VALUES (?, ?, ?, ?)");
                tok->setString(1, new_hash);
                tok->setInt64(2, s.session_id);
                tok->setInt64(3, new_expires_at);
                tok->setInt64(4, now);
                tok->executeUpdate();
                auto sess = prepare(c, "UPDATE device_sessions SET expires_at = ? WHERE id = ?");
                sess->setInt64(1, new_expires_at);
                sess->setInt64(2, s.session_id);
                sess->executeUpdate();
                tx.commit();
                return s;
            },
            use_awaitable);
    }

    task<domain::device> check_session(std::int64_t user_id, std::int64_t device_id,
                                       std::int64_t session_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<domain::device> {
                // One round trip: the device and whether the token's session is still open.
                auto q = prepare(
                    c, std::string("SELECT ") + device_columns +
                           ", (SELECT COUNT(*) FROM device_sessions s WHERE s.id = ? AND s.device_id = "
                           "d.id AND s.terminated_at = 0) FROM devices d WHERE d.id = ?");
                q->setInt64(1, session_id);
                q->setInt64(2, device_id);
                rs_ptr rs(q->executeQuery());
                if (!rs->next()) {
                    return make_error(errc::unauthenticated, "The device of this token no longer exists");
                }
                domain::device dev = read_device(*rs);
                bool const open = i64(*rs, 17) > 0;
                if (dev.user_id != user_id) {
                    return make_error(errc::forbidden, "The device does not belong to the token's user");
                }
                if (dev.status != "ACTIVE") {
                    return make_error(errc::forbidden, "The device is " + dev.status);
                }
                if (!open) {
                    return make_error(errc::unauthenticated, "The device session of this token has ended");
                }
                return dev;
            },
            use_awaitable);
    }

    task<domain::device> update_device(std::int64_t user_id, std::int64_t device_id, std::string status,
                                       std::string name, std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<domain::device> {
                transaction tx(c);
                auto ps =
                    prepare(c,
                            "UPDATE devices SET status = IF(? = '', status, ?), name = IF(? = '', name, ?) "
                            "WHERE user_id = ? AND id = ?");
                ps->setString(1, status);
                ps->setString(2, status);
                ps->setString(3, name);
                ps->setString(4, name);
                ps->setInt64(5, user_id);
                ps->setInt64(6, device_id);
                ps->executeUpdate();
                auto dev = find_one<domain::device>(c,
                                                    std::string("SELECT ") + device_columns +
                                                        " FROM devices d WHERE d.user_id = ? AND d.id = ?",
                                                    read_device, user_id, device_id);
                if (!dev) {
                    return make_error(errc::not_found, "Device not found");
                }
                if (dev->status != "ACTIVE") {
                    auto end =
                        prepare(c,
                                "UPDATE device_sessions SET terminated_at = ?, terminated_reason = 'revoked' "
                                "WHERE device_id = ? AND terminated_at = 0");
                    end->setInt64(1, now);
                    end->setInt64(2, device_id);
                    end->executeUpdate();
                }
                tx.commit();
                return *dev;
            },
            use_awaitable);
    }

    task<std::int64_t> purge(std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::int64_t> {
                auto codes = prepare(c,
                                     "DELETE FROM device_auth_codes WHERE expires_at < ? AND "
                                     "(registration_expires_at < ?)");
                codes->setInt64(1, now - 3600);
                codes->setInt64(2, now - 3600);
                std::int64_t n = codes->executeUpdate();
                auto tokens = prepare(c, "DELETE FROM device_refresh_tokens WHERE expires_at < ?");
                tokens->setInt64(1, now);
                n += tokens->executeUpdate();
                auto sessions =
                    prepare(c,
                            "DELETE FROM device_sessions WHERE expires_at < ? OR (terminated_at > 0 AND "
                            "terminated_at < ?)");
                sessions->setInt64(1, now);
                sessions->setInt64(2, now - 30 * 86400);
                n += sessions->executeUpdate();
                return n;
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

// ------------------------------------------------------------------------------------------- feed

constexpr char const* config_columns =
    "id, device_id, user_id, version, installs, installs_hash, after_update_script, updated_by, created_at, "
    "updated_at";

install_config read_config(sql::ResultSet& rs) {
    install_config ic;
    ic.id = i64(rs, 1);
    ic.device_id = i64(rs, 2);
    ic.user_id = i64(rs, 3);
    ic.version = rs.getInt(4);
    boost::system::error_code ec;
    auto v = boost::json::parse(std::string(rs.getString(5)), ec);
    if (!ec && v.is_array()) {
        ic.installs = std::move(v.get_array());
    }
    ic.installs_hash = rs.getString(6);
    ic.after_update_script = opt_string(rs, 7);
    ic.updated_by = rs.getString(8);
    ic.created_at = i64(rs, 9);
    ic.updated_at = i64(rs, 10);
    return ic;
}

constexpr char const* history_columns =
    "h.id, h.device_id, d.user_id, h.version, h.installs, h.installs_hash, h.after_update_script, "
    "h.updated_by, "
    "h.created_at, h.created_at, h.change_note, h.config_id";

install_config read_history(sql::ResultSet& rs) {
    install_config ic = read_config(rs);
    ic.change_note = rs.getString(11);
    ic.id = i64(rs, 12);  // the config's id; the version tells the rows apart
    return ic;
}

std::string installs_hash_of(boost::json::array const& installs) {
    return hex_encode(crypto::sha256(boost::json::serialize(installs)));
}

class mysql_device_feed final : public device_feed_repository {
  public:
    explicit mysql_device_feed(db::pool& p) : pool_(p) {}

    task<updates_page> updates(std::int64_t device_id, std::int64_t after, std::size_t limit) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<updates_page> {
                transaction tx(c);
                if (after == 0) {
                    // Without a cursor an empty page answers the feed's high-water mark, read after this
                    // device's in-flight writers committed (they hold its row until then), so nothing of this
                    // device below it can still appear.
                    exists(c, "SELECT id FROM devices WHERE id = ? LOCK IN SHARE MODE", {device_id});
                }
                auto q =
                    prepare(c,
                            "SELECT id, type, ref, ts_ms FROM device_updates WHERE device_id = ? AND id > ? "
                            "ORDER BY id LIMIT ?");
                q->setInt64(1, device_id);
                q->setInt64(2, after);
                q->setInt64(3, static_cast<std::int64_t>(limit));
                rs_ptr rs(q->executeQuery());
                updates_page out;
                while (rs->next()) {
                    device_signal s;
                    s.id = i64(*rs, 1);
                    s.type = rs->getString(2);
                    boost::system::error_code ec;
                    auto v = boost::json::parse(std::string(rs->getString(3)), ec);
                    if (!ec && v.is_object()) {
                        s.ref = std::move(v.get_object());
                    }
                    s.ts_ms = i64(*rs, 4);
                    out.signals.push_back(std::move(s));
                }
                // Checked after the rows were read: a trim committed in between is seen here (and answered
                // with a resync) rather than leaving a silent gap. A cursor before the kept window, or past
                // anything the feed ever held, cannot be continued.
                auto edge = prepare(c,
                                    "SELECT d.updates_trimmed_through, (SELECT COALESCE(MAX(u.id), 0) FROM "
                                    "device_updates u) FROM devices d WHERE d.id = ?");
                edge->setInt64(1, device_id);
                rs_ptr ers(edge->executeQuery());
                if (!ers->next()) {
                    return make_error(errc::not_found, "Device not found");
                }
                std::int64_t const trimmed = i64(*ers, 1);
                std::int64_t const newest = i64(*ers, 2);
                if (after != 0 && (after < trimmed || after > newest)) {
                    auto low =
                        prepare(c, "SELECT COALESCE(MIN(id), 0) FROM device_updates WHERE device_id = ?");
                    low->setInt64(1, device_id);
                    rs_ptr lrs(low->executeQuery());
                    std::int64_t const oldest = lrs->next() ? i64(*lrs, 1) : 0;
                    app_error e =
                        make_error(errc::updates_cursor_expired, "Cursor expired. Full resync required.");
                    e.params["earliest_retained_id"] = std::to_string(oldest == 0 ? trimmed : oldest);
                    return e;
                }
                out.cursor = !out.signals.empty() ? out.signals.back().id : after != 0 ? after : newest;
                tx.commit();
                return out;
            },
            use_awaitable);
    }

    task<std::vector<std::pair<std::int64_t, std::int64_t>>> changed_since(std::int64_t after) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::vector<std::pair<std::int64_t, std::int64_t>>> {
                auto q = prepare(c, after < 0
                                        ? "SELECT id, device_id FROM device_updates ORDER BY id DESC LIMIT 1"
                                        : "SELECT id, device_id FROM device_updates WHERE id > ? ORDER BY id "
                                          "LIMIT 10000");
                if (after >= 0) {
                    q->setInt64(1, after);
                }
                rs_ptr rs(q->executeQuery());
                std::vector<std::pair<std::int64_t, std::int64_t>> out;
                while (rs->next()) {
                    out.emplace_back(i64(*rs, 1), i64(*rs, 2));
                }
                return out;
            },
            use_awaitable);
    }

    task<bool> note_agent(std::int64_t device_id, std::string version, std::string ip,
                          std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps =
                    prepare(c,
                            "UPDATE devices SET agent_version = IF(? = '', agent_version, LEFT(?, 64)), "
                            "ip = LEFT(?, 45), last_seen_at = ? WHERE id = ?");
                ps->setString(1, version);
                ps->setString(2, version);
                ps->setString(3, ip);
                ps->setInt64(4, now);
                ps->setInt64(5, device_id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<std::optional<device_cert_material>> material(std::int64_t user_id, std::int64_t device_id,
                                                       std::int64_t cert_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<device_cert_material>> {
                auto cert =
                    find_one<domain::certificate>(c,
                                                  std::string("SELECT ") + cert_columns +
                                                      " FROM certificates c JOIN certificate_assignments a "
                                                      "ON a.cert_id = c.id WHERE c.user_id = ? "
                                                      "AND c.id = ? AND a.device_id = ?",
                                                  read_cert, user_id, cert_id, device_id);
                if (!cert) {
                    return std::optional<device_cert_material>{};
                }
                device_cert_material m;
                m.cert = std::move(*cert);
                m.issued = m.cert.has_key;
                auto q =
                    prepare(c,
                            "SELECT a.enc_data_key, a.device_keyfp, a.wrap_alg, c.enc_privkey, c.enc_nonce, "
                            "c.enc_tag, w.key_version, w.wrapped_data_key, w.nonce, w.tag FROM "
                            "certificate_assignments a JOIN certificates c ON c.id = a.cert_id LEFT JOIN "
                            "certificate_master_wrapped w ON w.cert_id = c.id WHERE a.cert_id = ? AND "
                            "a.device_id = ?");
                q->setInt64(1, cert_id);
                q->setInt64(2, device_id);
                rs_ptr rs(q->executeQuery());
                if (rs->next()) {
                    m.enc_data_key = opt_string(*rs, 1);
                    m.device_keyfp = opt_string(*rs, 2).value_or("");
                    m.wrap_alg = rs->getString(3);
                    if (m.issued) {
                        m.private_key = {opt_string(*rs, 5).value_or(""), opt_string(*rs, 4).value_or(""),
                                         opt_string(*rs, 6).value_or("")};
                    }
                    if (!rs->isNull(7)) {
                        m.data_key =
                            crypto::wrapped_key{static_cast<std::uint32_t>(rs->getInt(7)),
                                                {std::string(rs->getString(9)), std::string(rs->getString(8)),
                                                 std::string(rs->getString(10))}};
                    }
                }
                return std::optional<device_cert_material>(std::move(m));
            },
            use_awaitable);
    }

    task<std::optional<domain::ca>> device_ca(std::int64_t user_id, std::int64_t device_id,
                                              std::int64_t ca_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::ca>> {
                return find_one<domain::ca>(c,
                                            std::string("SELECT ") + ca_columns +
                                                " FROM cas JOIN device_cas dc ON dc.ca_id = cas.id WHERE "
                                                "cas.user_id = ? AND cas.id = ? AND dc.device_id = ?",
                                            read_ca, user_id, ca_id, device_id);
            },
            use_awaitable);
    }

    task<page<domain::ca>> device_cas(std::int64_t user_id, std::int64_t device_id, page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::ca>> {
                if (!owned_row_exists(c, "devices", user_id, device_id)) {
                    return make_error(errc::not_found, "Device not found");
                }
                return list_page<domain::ca>(c, "cas JOIN device_cas dc ON dc.ca_id = cas.id", ca_columns,
                                             user_id, q, read_ca, row_filter{"dc.device_id = ?", device_id});
            },
            use_awaitable);
    }

    task<bool> assign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id,
                         std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                transaction tx(c);
                // The CA first, then the device (the order CA removal takes them in).
                auto ca =
                    find_one<domain::ca>(c,
                                         std::string("SELECT ") + ca_columns +
                                             " FROM cas WHERE user_id = ? AND id = ? LOCK IN SHARE MODE",
                                         read_ca, user_id, ca_id);
                if (!exists(c, "SELECT id FROM devices WHERE user_id = ? AND id = ? FOR UPDATE",
                            {user_id, device_id})) {
                    return make_error(errc::not_found, "Device not found");
                }
                if (!ca) {
                    app_error e = make_error(errc::not_found, "CA not found");
                    e.params["field"] = "ca_id";
                    return e;
                }
                auto ins = prepare(
                    c, "INSERT IGNORE INTO device_cas (device_id, ca_id, assigned_at) VALUES (?, ?, ?)");
                ins->setInt64(1, device_id);
                ins->setInt64(2, ca_id);
                ins->setInt64(3, now);
                if (ins->executeUpdate() == 0) {
                    return false;
                }
                boost::json::object ref{
                    {"ca_id", ca_id}, {"serial", ca->serial_number}, {"ca_name", ca->name}};
                emit_signal(c, device_id, "ca.assigned", ref);
                tx.commit();
                return true;
            },
            use_awaitable);
    }

    task<bool> unassign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id,
                           std::int64_t /*now*/) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                transaction tx(c);
                exists(c, "SELECT id FROM cas WHERE user_id = ? AND id = ? LOCK IN SHARE MODE",
                       {user_id, ca_id});
                if (!exists(c, "SELECT id FROM devices WHERE user_id = ? AND id = ? FOR UPDATE",
                            {user_id, device_id})) {
                    return false;
                }
                auto q = prepare(
                    c,
                    "SELECT cas.serial_number, cas.name FROM device_cas dc JOIN cas ON cas.id = dc.ca_id "
                    "WHERE dc.device_id = ? AND dc.ca_id = ?");
                q->setInt64(1, device_id);
                q->setInt64(2, ca_id);
                rs_ptr rs(q->executeQuery());
                if (!rs->next()) {
                    return false;
                }
                boost::json::object ref{{"ca_id", ca_id},
                                        {"serial", std::string(rs->getString(1))},
                                        {"ca_name", std::string(rs->getString(2))}};
                auto del = prepare(c, "DELETE FROM device_cas WHERE device_id = ? AND ca_id = ?");
                del->setInt64(1, device_id);
                del->setInt64(2, ca_id);
                del->executeUpdate();
                emit_signal(c, device_id, "ca.unassigned", ref);
                tx.commit();
                return true;
            },
            use_awaitable);
    }

    task<std::optional<install_config>> install_config_of(std::int64_t user_id,
                                                          std::int64_t device_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<install_config>> {
                if (!owned_row_exists(c, "devices", user_id, device_id)) {
                    return make_error(errc::not_found, "Device not found");
                }
                return find_one<install_config>(c,
                                                std::string("SELECT ") + config_columns +
                                                    " FROM device_install_configs WHERE device_id = ?",
                                                read_config, device_id);
            },
            use_awaitable);
    }

    task<install_config> put_install_config(std::int64_t user_id, std::int64_t device_id,
                                            boost::json::array installs, std::optional<std::string> script,
                                            std::string updated_by, std::string change_note,
                                            std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<install_config> {
                transaction tx(c);
                if (!exists(c, "SELECT id FROM devices WHERE user_id = ? AND id = ? FOR UPDATE",
                            {user_id, device_id})) {
                    return make_error(errc::not_found, "Device not found");
                }
                auto r = write_install_config(c, user_id, device_id, installs, script, updated_by,
                                              change_note, now);
                tx.commit();
                return r;
            },
            use_awaitable);
    }

    task<page<install_config>> install_config_history(std::int64_t user_id, std::int64_t device_id,
                                                      page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<install_config>> {
                if (!owned_row_exists(c, "devices", user_id, device_id)) {
                    return make_error(errc::not_found, "Device not found");
                }
                page<install_config> out;
                auto cnt =
                    prepare(c, "SELECT COUNT(*) FROM device_install_config_history WHERE device_id = ?");
                cnt->setInt64(1, device_id);
                rs_ptr crs(cnt->executeQuery());
                crs->next();
                out.total = i64(*crs, 1);
                auto ps = prepare(
                    c, std::string("SELECT ") + history_columns +
                           " FROM device_install_config_history h JOIN devices d ON d.id = h.device_id "
                           "WHERE h.device_id = ? AND h.id < ? ORDER BY h.id DESC LIMIT ? OFFSET ?");
                ps->setInt64(1, device_id);
                ps->setInt64(2, q.upper_id());
                ps->setInt64(3, q.limit + 1);
                ps->setInt64(4, q.offset);
                rs_ptr rs(ps->executeQuery());
                while (rs->next()) {
                    out.items.push_back(read_history(*rs));
                }
                if (static_cast<std::int64_t>(out.items.size()) > q.limit) {
                    out.items.resize(static_cast<std::size_t>(q.limit));
                    out.has_more = true;
                }
                return out;
            },
            use_awaitable);
    }

    task<std::optional<install_config>> install_config_version(std::int64_t user_id, std::int64_t device_id,
                                                               int version) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<install_config>> {
                return find_one<install_config>(
                    c,
                    std::string("SELECT ") + history_columns +
                        " FROM device_install_config_history h JOIN devices d ON d.id = "
                        "h.device_id WHERE d.user_id = ? AND h.device_id = ? AND "
                        "h.version = ?",
                    read_history, user_id, device_id, static_cast<std::int64_t>(version));
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

}  // namespace

namespace mysql_detail {

install_config write_install_config(sql::Connection& c, std::int64_t user_id, std::int64_t device_id,
                                    boost::json::array const& installs,
                                    std::optional<std::string> const& script, std::string const& updated_by,
                                    std::string const& change_note, std::int64_t now) {
    std::string const text = boost::json::serialize(installs);
    std::string const hash = installs_hash_of(installs);
    auto cur = find_one<install_config>(c,
                                        std::string("SELECT ") + config_columns +
                                            " FROM device_install_configs WHERE device_id = ? FOR UPDATE",
                                        read_config, device_id);
    install_config out;
    if (cur) {
        out = *cur;
        out.version = cur->version + 1;
        auto up = prepare(c,
                          "UPDATE device_install_configs SET version = ?, installs = ?, installs_hash = ?, "
                          "after_update_script = ?, updated_by = ?, updated_at = ? WHERE id = ?");
        up->setInt(1, out.version);
        up->setString(2, text);
        up->setString(3, hash);
        set_optional(*up, 4, script);
        up->setString(5, updated_by);
        up->setInt64(6, now);
        up->setInt64(7, cur->id);
        up->executeUpdate();
    } else {
        out.version = 1;
        out.device_id = device_id;
        out.user_id = user_id;
        out.created_at = now;
        auto ins = prepare(
            c,
            "INSERT INTO device_install_configs (device_id, user_id, version, installs, installs_hash, "
            "after_update_script, updated_by, created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?)");
        ins->setInt64(1, device_id);
        ins->setInt64(2, user_id);
        ins->setString(3, text);
        ins->setString(4, hash);
        set_optional(*ins, 5, script);
        ins->setString(6, updated_by);
        ins->setInt64(7, now);
        ins->setInt64(8, now);
        ins->executeUpdate();
        out.id = last_insert_id(c);
    }
    out.installs = installs;
    out.installs_hash = hash;
    out.after_update_script = script;
    out.updated_by = updated_by;
    out.updated_at = now;
    auto hist = prepare(
        c,
        "INSERT INTO device_install_config_history (config_id, device_id, version, installs, "
        "installs_hash, after_update_script, change_note, updated_by, created_at) VALUES (?, ?, ?, ?, "
        "?, ?, LEFT(?, 512), ?, ?)");
    hist->setInt64(1, out.id);
    hist->setInt64(2, device_id);
    hist->setInt(3, out.version);
    hist->setString(4, text);
    hist->setString(5, hash);
    set_optional(*hist, 6, script);
    hist->setString(7, change_note);
    hist->setString(8, updated_by);
    hist->setInt64(9, now);
    hist->executeUpdate();
    boost::json::object ref{{"config_id", out.id},
                            {"version", out.version},
                            {"installs_hash_b64", base64_encode(*hex_decode(hash))}};
    emit_signal(c, device_id, "install.updated", ref);
    return out;
}

void add_default_install_item(sql::Connection& c, std::int64_t user_id, std::int64_t device_id,
                              std::int64_t cert_id, std::string const& domain_name, std::int64_t now) {
    auto cur = find_one<install_config>(c,
                                        std::string("SELECT ") + config_columns +
                                            " FROM device_install_configs WHERE device_id = ? FOR UPDATE",
                                        read_config, device_id);
    boost::json::array installs = cur ? cur->installs : boost::json::array{};
    for (auto const& item : installs) {
        auto const* o = item.if_object();
        if (o && o->if_contains("ob_type") && o->at("ob_type") == "cert" && o->if_contains("ob_id") &&
            o->at("ob_id") == cert_id) {
            return;
        }
    }
    installs.push_back(domain::default_cert_install_item(cert_id, domain_name));
    write_install_config(c, user_id, device_id, installs, cur ? cur->after_update_script : std::nullopt,
                         "server", "certificate " + std::to_string(cert_id) + " assigned", now);
}

}  // namespace mysql_detail

std::unique_ptr<device_auth_repository> make_mysql_device_auth_repository(db::pool& p) {
    return std::make_unique<mysql_device_auth>(p);
}
std::unique_ptr<device_feed_repository> make_mysql_device_feed_repository(db::pool& p) {
    return std::make_unique<mysql_device_feed>(p);
}

}  // namespace certctrl::repo
