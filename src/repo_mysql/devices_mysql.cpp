// MySQL statement sets of devices, the device grant, and device sessions with their refresh tokens.
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "factories.hpp"
#include "rows.hpp"

#include <cppconn/statement.h>

#include <algorithm>

namespace certctrl::repo::mysql_detail {

namespace {

// ---------------------------------------------------------------------------------------------- devices

class mysql_devices final : public device_repository {
  public:
    std::int64_t count_locked(work& w, std::int64_t user_id) override {
        auto ps = prepare(conn(w), "SELECT COUNT(*) FROM devices WHERE user_id = ? FOR UPDATE");
        ps->setInt64(1, user_id);
        rs_ptr rs(ps->executeQuery());
        rs->next();
        return static_cast<std::int64_t>(rs->getInt64(1));
    }

    domain::device insert(work& w, domain::device d) override {
        auto& c = conn(w);
        auto ps =
            prepare(c,
                    "INSERT INTO devices (user_id, device_public_id, name, description, device_type, "
                    "platform, model, app_version, ip, user_agent, status, created_at) VALUES (?, ?, ?, ?, "
                    "?, ?, ?, ?, ?, ?, ?, ?)");
        ps->setInt64(1, d.user_id);
        ps->setString(2, d.device_public_id);
        ps->setString(3, d.name);
        ps->setString(4, d.description);
        ps->setString(5, d.device_type);
        ps->setString(6, d.platform);
        ps->setString(7, d.model);
        ps->setString(8, d.app_version);
        ps->setString(9, d.ip);
        ps->setString(10, d.user_agent);
        ps->setString(11, d.status);
        ps->setInt64(12, d.created_at);
        ps->executeUpdate();
        d.id = last_insert_id(c);
        return d;
    }

    page<domain::device> list(work& w, std::int64_t user_id, page_query const& q) override {
        return list_page<domain::device>(conn(w), "devices d", device_columns, user_id, q, read_device);
    }

    page<domain::device> list_for_certificate(work& w, std::int64_t user_id, std::int64_t cert_id,
                                              page_query const& q) override {
        return list_page<domain::device>(
            conn(w), "devices d JOIN certificate_assignments a ON a.device_id = d.id", device_columns,
            user_id, q, read_device, row_filter{"a.cert_id = ?", cert_id});
    }

    std::optional<domain::device> get(work& w, std::int64_t user_id, std::int64_t id) override {
        return find_one<domain::device>(
            conn(w),
            std::string("SELECT ") + device_columns + " FROM devices d WHERE d.user_id = ? AND d.id = ?",
            read_device, user_id, id);
    }

    std::optional<domain::device> by_id(work& w, std::int64_t id) override {
        return find_one<domain::device>(
            conn(w), std::string("SELECT ") + device_columns + " FROM devices d WHERE d.id = ?", read_device,
            id);
    }

    std::optional<domain::device> by_public_id(work& w, std::int64_t user_id,
                                               std::string const& public_id) override {
        return find_one<domain::device>(conn(w),
                                        std::string("SELECT ") + device_columns +
                                            " FROM devices d WHERE d.user_id = ? AND d.device_public_id = ?",
                                        read_device, user_id, public_id);
    }

    std::optional<std::pair<domain::device, bool>> with_session(work& w, std::int64_t device_id,
                                                                std::int64_t session_id) override {
        return find_one<std::pair<domain::device, bool>>(
            conn(w),
            std::string("SELECT ") + device_columns +
                ", EXISTS(SELECT 1 FROM device_sessions s WHERE s.id = ? AND s.device_id = d.id AND "
                "s.terminated_at = 0) AND EXISTS(SELECT 1 FROM users u WHERE u.id = d.user_id AND u.status = "
                "'ACTIVE') FROM devices d WHERE d.id = ?",
            [](sql::ResultSet& rs) {
                return std::pair<domain::device, bool>(read_device(rs), rs.getBoolean(17));
            },
            session_id, device_id);
    }

    void note_received(work& w, std::int64_t device_id, std::int64_t feed_id) override {
        auto ps =
            prepare(conn(w),
                    "INSERT INTO device_feed_received (device_id, feed_id) VALUES (?, ?) ON DUPLICATE KEY "
                    "UPDATE feed_id = GREATEST(feed_id, VALUES(feed_id))");
        ps->setInt64(1, device_id);
        ps->setInt64(2, feed_id);
        ps->executeUpdate();
    }

    std::unordered_map<std::int64_t, std::int64_t> received_through(
        work& w, std::vector<std::int64_t> const& device_ids) override {
        constexpr std::size_t group = 64;  // padded to whole groups, so the statement text stays the same
        std::string in_list;
        for (std::size_t i = 0; i < group; ++i) {
            in_list += i == 0 ? "?" : ", ?";
        }
        std::string const q =
            "SELECT device_id, feed_id FROM device_feed_received WHERE device_id IN (" + in_list + ")";
        std::unordered_map<std::int64_t, std::int64_t> out;
        for (std::size_t at = 0; at < device_ids.size(); at += group) {
            auto ps = prepare(conn(w), q);
            for (std::size_t k = 0; k < group; ++k) {
                ps->setInt64(static_cast<unsigned>(k + 1),
                             device_ids[std::min(at + k, device_ids.size() - 1)]);
            }
            rs_ptr rs(ps->executeQuery());
            while (rs->next()) {
                out[i64(*rs, 1)] = i64(*rs, 2);
            }
        }
        return out;
    }

    std::vector<std::int64_t> live_sessions(work& w, std::vector<std::int64_t> const& session_ids) override {
        constexpr std::size_t group = 256;  // padded to whole groups, so the statement text stays the same
        std::string in_list;
        for (std::size_t i = 0; i < group; ++i) {
            in_list += i == 0 ? "?" : ", ?";
        }
        std::string const q =
            "SELECT s.id FROM device_sessions s JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = "
            "d.user_id WHERE s.id IN (" +
            in_list + ") AND s.terminated_at = 0 AND d.status = 'ACTIVE' AND u.status = 'ACTIVE'";
        std::vector<std::int64_t> out;
        for (std::size_t at = 0; at < session_ids.size(); at += group) {
            auto ps = prepare(conn(w), q);
            for (std::size_t k = 0; k < group; ++k) {
                std::size_t const i = std::min(at + k, session_ids.size() - 1);
                ps->setInt64(static_cast<unsigned>(k + 1), session_ids[i]);
            }
            rs_ptr rs(ps->executeQuery());
            while (rs->next()) {
                out.push_back(rs->getInt64(1));
            }
        }
        return out;
    }

    void lock_user(work& w, std::int64_t user_id) override {
        exists(conn(w), "SELECT id FROM users WHERE id = ? FOR UPDATE", {user_id});
    }

    bool lock_owned(work& w, std::int64_t user_id, std::int64_t id) override {
        return exists(conn(w), "SELECT id FROM devices WHERE user_id = ? AND id = ? FOR UPDATE",
                      {user_id, id});
    }

    bool lock_shared(work& w, std::int64_t id) override {
        return exists(conn(w), "SELECT id FROM devices WHERE id = ? LOCK IN SHARE MODE", {id});
    }

    void lock(work& w, std::vector<std::int64_t> ids) override {
        if (ids.empty()) {
            return;
        }
        if (ids.size() == 1) {
            exists(conn(w), "SELECT id FROM devices WHERE id = ? FOR UPDATE", {ids.front()});
            return;
        }
        std::sort(ids.begin(), ids.end());
        std::string list;  // integers only, so the list is built into the statement
        for (auto id : ids) {
            list += (list.empty() ? "" : ",") + std::to_string(id);
        }
        // One statement; InnoDB takes the primary-key locks in the order it reads them, ascending here.
        std::unique_ptr<sql::Statement> st(conn(w).createStatement());
        rs_ptr(st->executeQuery("SELECT id FROM devices WHERE id IN (" + list + ") ORDER BY id FOR UPDATE"));
    }

    std::optional<identity> lock_by_public_id(work& w, std::string const& public_id) override {
        return find_one<identity>(
            conn(w),
            "SELECT id, user_id, dev_public_key, status FROM devices WHERE device_public_id = ? FOR UPDATE",
            [](sql::ResultSet& rs) {
                return identity{i64(rs, 1), i64(rs, 2), opt_string(rs, 3), std::string(rs.getString(4))};
            },
            public_id);
    }

    std::int64_t insert_registered(work& w, device_registration const& r, std::string const& fp,
                                   std::int64_t now) override {
        auto& c = conn(w);
        auto ins =
            prepare(c,
                    "INSERT INTO devices (user_id, device_public_id, name, platform, model, app_version, "
                    "ip, user_agent, push_token, status, dev_public_key, device_secret_hash, fp_hash, "
                    "fp_version, created_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'ACTIVE', ?, "
                    "?, ?, 1, ?, ?)");
        ins->setInt64(1, r.user_id);
        ins->setString(2, r.device_public_id);
        ins->setString(3, r.name);
        ins->setString(4, r.platform);
        ins->setString(5, r.model);
        ins->setString(6, r.app_version);
        ins->setString(7, r.ip);
        ins->setString(8, r.user_agent);
        ins->setString(9, r.push_token);
        ins->setString(10, r.public_key);
        ins->setString(11, fp);
        ins->setString(12, fp);
        ins->setInt64(13, now);
        ins->setInt64(14, now);
        ins->executeUpdate();
        return last_insert_id(c);
    }

    void update_registered(work& w, std::int64_t id, device_registration const& r, std::string const& fp,
                           std::int64_t now) override {
        auto up =
            prepare(conn(w),
                    "UPDATE devices SET name = ?, platform = ?, model = ?, app_version = ?, ip = ?, "
                    "user_agent = ?, push_token = ?, status = 'ACTIVE', dev_public_key = ?, "
                    "device_secret_hash = ?, fp_hash = ?, fp_version = 1, last_seen_at = ? WHERE id = ?");
        up->setString(1, r.name);
        up->setString(2, r.platform);
        up->setString(3, r.model);
        up->setString(4, r.app_version);
        up->setString(5, r.ip);
        up->setString(6, r.user_agent);
        up->setString(7, r.push_token);
        up->setString(8, r.public_key);
        up->setString(9, fp);
        up->setString(10, fp);
        up->setInt64(11, now);
        up->setInt64(12, id);
        up->executeUpdate();
    }

    bool update(work& w, std::int64_t user_id, std::int64_t id, std::string const& status,
                std::string const& name) override {
        auto& c = conn(w);
        if (!exists(c, "SELECT id FROM devices WHERE user_id = ? AND id = ? FOR UPDATE", {user_id, id})) {
            return false;
        }
        auto ps =
            prepare(c,
                    "UPDATE devices SET status = IF(? = '', status, ?), name = IF(? = '', name, ?) WHERE "
                    "id = ?");
        ps->setString(1, status);
        ps->setString(2, status);
        ps->setString(3, name);
        ps->setString(4, name);
        ps->setInt64(5, id);
        ps->executeUpdate();
        return true;
    }

    void note_agent(work& w, std::int64_t id, std::string const& version, std::string const& ip,
                    std::int64_t now) override {
        auto ps = prepare(conn(w),
                          "UPDATE devices SET agent_version = IF(? = '', agent_version, LEFT(?, 64)), ip = "
                          "LEFT(?, 45), last_seen_at = ? WHERE id = ?");
        ps->setString(1, version);
        ps->setString(2, version);
        ps->setString(3, ip);
        ps->setInt64(4, now);
        ps->setInt64(5, id);
        ps->executeUpdate();
    }

    void remove(work& w, std::int64_t id) override {
        for (char const* q : {"DELETE FROM certificate_assignments WHERE device_id = ?",
                              "DELETE FROM devices WHERE id = ?"}) {
            auto ps = prepare(conn(w), q);
            ps->setInt64(1, id);
            ps->executeUpdate();
        }
    }
};

// ----------------------------------------------------------------------------------------- device grant

constexpr char const* grant_columns = "id, status, user_id, interval_s, expires_at, last_poll_ms";

device_grant_repository::grant read_grant(sql::ResultSet& rs) {
    return {i64(rs, 1), rs.getString(2), opt_int(rs, 3), i64(rs, 4), i64(rs, 5), i64(rs, 6)};
}

class mysql_grants final : public device_grant_repository {
  public:
    bool insert(work& w, std::string const& device_code_hash, std::string const& user_code,
                std::string const& scopes, std::int64_t interval_s, std::int64_t expires_at,
                std::int64_t now) override {
        auto ps =
            prepare(conn(w),
                    "INSERT IGNORE INTO device_auth_codes (device_code_hash, user_code, status, scopes, "
                    "interval_s, expires_at, created_at) VALUES (?, ?, 'PENDING', ?, ?, ?, ?)");
        ps->setString(1, device_code_hash);
        ps->setString(2, user_code);
        ps->setString(3, scopes);
        ps->setInt64(4, interval_s);
        ps->setInt64(5, expires_at);
        ps->setInt64(6, now);
        return ps->executeUpdate() == 1;
    }

    std::optional<grant> lock_by_user_code(work& w, std::string const& user_code, std::int64_t now) override {
        return find_one<grant>(
            conn(w),
            std::string("SELECT ") + grant_columns +
                " FROM device_auth_codes WHERE user_code = ? AND expires_at > ? FOR UPDATE",
            read_grant, user_code, now);
    }

    std::optional<grant> lock_by_device_code(work& w, std::string const& device_code_hash) override {
        return find_one<grant>(conn(w),
                               std::string("SELECT ") + grant_columns +
                                   " FROM device_auth_codes WHERE device_code_hash = ? FOR UPDATE",
                               read_grant, device_code_hash);
    }

    void decide(work& w, std::int64_t id, std::string const& status, std::int64_t user_id,
                std::optional<std::string> const& device_public_id) override {
        auto u =
            prepare(conn(w),
                    "UPDATE device_auth_codes SET status = ?, user_id = ?, approved_device_public_id = ? "
                    "WHERE id = ?");
        u->setString(1, status);
        u->setInt64(2, user_id);
        set_optional(*u, 3, device_public_id);
        u->setInt64(4, id);
        u->executeUpdate();
    }

    void note_poll(work& w, std::int64_t id, std::int64_t now_ms, std::int64_t interval_s) override {
        auto u =
            prepare(conn(w), "UPDATE device_auth_codes SET last_poll_ms = ?, interval_s = ? WHERE id = ?");
        u->setInt64(1, now_ms);
        u->setInt64(2, interval_s);
        u->setInt64(3, id);
        u->executeUpdate();
    }

    void issue(work& w, std::int64_t id, std::string const& code_hash, std::int64_t expires_at) override {
        auto u = prepare(conn(w),
                         "UPDATE device_auth_codes SET status = 'ISSUED', registration_code_hash = ?, "
                         "registration_expires_at = ? WHERE id = ?");
        u->setString(1, code_hash);
        u->setInt64(2, expires_at);
        u->setInt64(3, id);
        u->executeUpdate();
    }

    std::optional<registration_code> lock_registration(work& w, std::string const& code_hash) override {
        return find_one<registration_code>(
            conn(w),
            "SELECT id, user_id, registration_expires_at, registered_device_id, approved_device_public_id "
            "FROM "
            "device_auth_codes WHERE registration_code_hash = ? AND status = 'ISSUED' FOR UPDATE",
            [](sql::ResultSet& rs) {
                return registration_code{i64(rs, 1), opt_int(rs, 2), i64(rs, 3), opt_int(rs, 4),
                                         opt_string(rs, 5)};
            },
            code_hash);
    }

    void mark_registered(work& w, std::int64_t id, std::int64_t device_id) override {
        auto u = prepare(conn(w), "UPDATE device_auth_codes SET registered_device_id = ? WHERE id = ?");
        u->setInt64(1, device_id);
        u->setInt64(2, id);
        u->executeUpdate();
    }

    std::int64_t purge(work& w, std::int64_t before) override {
        auto ps = prepare(
            conn(w), "DELETE FROM device_auth_codes WHERE expires_at < ? AND registration_expires_at < ?");
        ps->setInt64(1, before);
        ps->setInt64(2, before);
        return ps->executeUpdate();
    }
};

// ------------------------------------------------------------------------------------- device sessions

class mysql_device_sessions final : public device_session_repository {
  public:
    std::int64_t open(work& w, std::int64_t device_id, std::int64_t user_id, std::int64_t now,
                      std::int64_t expires_at) override {
        auto& c = conn(w);
        auto ps =
            prepare(c,
                    "INSERT INTO device_sessions (device_id, user_id, started_at, expires_at) VALUES (?, ?, "
                    "?, ?)");
        ps->setInt64(1, device_id);
        ps->setInt64(2, user_id);
        ps->setInt64(3, now);
        ps->setInt64(4, expires_at);
        ps->executeUpdate();
        return last_insert_id(c);
    }

    void add_refresh_token(work& w, std::string const& hash, std::int64_t session_id, std::int64_t expires_at,
                           std::int64_t now) override {
        auto ps =
            prepare(conn(w),
                    "INSERT INTO device_refresh_tokens (token_hash, session_id, expires_at, created_at) "
                    "VALUES (?, ?, ?, ?)");
        ps->setString(1, hash);
        ps->setInt64(2, session_id);
        ps->setInt64(3, expires_at);
        ps->setInt64(4, now);
        ps->executeUpdate();
    }

    void end_all(work& w, std::int64_t device_id, std::string const& reason, std::int64_t now) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE device_sessions SET terminated_at = ?, terminated_reason = ? WHERE device_id = ? "
                    "AND terminated_at = 0");
        ps->setInt64(1, now);
        ps->setString(2, reason);
        ps->setInt64(3, device_id);
        ps->executeUpdate();
    }

    void end(work& w, std::int64_t session_id, std::string const& reason, std::int64_t now) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE device_sessions SET terminated_at = ?, terminated_reason = ? WHERE id = ? AND "
                    "terminated_at = 0");
        ps->setInt64(1, now);
        ps->setString(2, reason);
        ps->setInt64(3, session_id);
        ps->executeUpdate();
    }

    std::optional<refresh_token> lock_refresh_token(work& w, std::string const& hash) override {
        return find_one<refresh_token>(
            conn(w),
            "SELECT t.session_id, s.device_id, s.user_id, t.rotated_at, t.expires_at, s.terminated_at, "
            "s.terminated_reason, d.status, d.device_public_id FROM device_refresh_tokens t JOIN "
            "device_sessions "
            "s ON s.id = t.session_id JOIN devices d ON d.id = s.device_id WHERE t.token_hash = ? FOR UPDATE",
            [](sql::ResultSet& rs) {
                refresh_token t;
                t.session = {i64(rs, 1), i64(rs, 2), i64(rs, 3)};
                t.rotated_at = i64(rs, 4);
                t.expires_at = i64(rs, 5);
                t.terminated_at = i64(rs, 6);
                t.terminated_reason = rs.getString(7);
                t.device_status = rs.getString(8);
                t.device_public_id = rs.getString(9);
                return t;
            },
            hash);
    }

    void mark_rotated(work& w, std::string const& hash, std::int64_t now) override {
        auto ps = prepare(conn(w), "UPDATE device_refresh_tokens SET rotated_at = ? WHERE token_hash = ?");
        ps->setInt64(1, now);
        ps->setString(2, hash);
        ps->executeUpdate();
    }

    void extend(work& w, std::int64_t session_id, std::int64_t expires_at) override {
        auto ps = prepare(conn(w), "UPDATE device_sessions SET expires_at = ? WHERE id = ?");
        ps->setInt64(1, expires_at);
        ps->setInt64(2, session_id);
        ps->executeUpdate();
    }

    std::int64_t purge(work& w, std::int64_t now, std::int64_t ended_before) override {
        auto& c = conn(w);
        auto tokens = prepare(c, "DELETE FROM device_refresh_tokens WHERE expires_at < ?");
        tokens->setInt64(1, now);
        std::int64_t n = tokens->executeUpdate();
        auto sessions = prepare(c,
                                "DELETE FROM device_sessions WHERE expires_at < ? OR (terminated_at > 0 AND "
                                "terminated_at < ?)");
        sessions->setInt64(1, now);
        sessions->setInt64(2, ended_before);
        return n + sessions->executeUpdate();
    }
};

}  // namespace

std::unique_ptr<device_repository> make_devices() {
    return std::make_unique<mysql_devices>();
}
std::unique_ptr<device_grant_repository> make_grants() {
    return std::make_unique<mysql_grants>();
}
std::unique_ptr<device_session_repository> make_device_sessions() {
    return std::make_unique<mysql_device_sessions>();
}

}  // namespace certctrl::repo::mysql_detail
