// MySQL statement sets of the device update feed, install configs and the CAs assigned to devices.
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "factories.hpp"
#include "rows.hpp"

#include <boost/json.hpp>

namespace certctrl::repo::mysql_detail {

namespace {

// ------------------------------------------------------------------------------------------------- feed

class mysql_feed final : public device_feed_repository {
  public:
    std::int64_t append(work& w, std::int64_t device_id, std::string const& type,
                        boost::json::object const& ref, std::int64_t ts_ms) override {
        auto& c = conn(w);
        auto ins = prepare(c, "INSERT INTO device_updates (device_id, type, ref, ts_ms) VALUES (?, ?, ?, ?)");
        ins->setInt64(1, device_id);
        ins->setString(2, type);
        ins->setString(3, boost::json::serialize(ref));
        ins->setInt64(4, ts_ms);
        ins->executeUpdate();
        auto const id = last_insert_id(c);
        // The device's row changes with each signal (V017): on Galera, concurrent signals for one device
        // conflict instead of committing in an order that differs from their ids.
        auto tip = prepare(c, "UPDATE devices SET feed_tip = ? WHERE id = ?");
        tip->setInt64(1, id);
        tip->setInt64(2, device_id);
        tip->executeUpdate();
        return id;
    }

    void trim(work& w, std::int64_t device_id, std::size_t keep) override {
        auto& c = conn(w);
        auto through = find_one<std::int64_t>(
            c, "SELECT id FROM device_updates WHERE device_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
            [](sql::ResultSet& rs) { return i64(rs, 1); }, device_id, static_cast<std::int64_t>(keep));
        if (!through) {
            return;
        }
        auto del = prepare(c, "DELETE FROM device_updates WHERE device_id = ? AND id <= ?");
        del->setInt64(1, device_id);
        del->setInt64(2, *through);
        del->executeUpdate();
        auto mark = prepare(
            c,
            "UPDATE devices SET updates_trimmed_through = GREATEST(updates_trimmed_through, ?) WHERE id = ?");
        mark->setInt64(1, *through);
        mark->setInt64(2, device_id);
        mark->executeUpdate();
    }

    std::vector<device_signal> after(work& w, std::int64_t device_id, std::int64_t after,
                                     std::size_t limit) override {
        auto q =
            prepare(conn(w),
                    "SELECT id, type, ref, ts_ms FROM device_updates WHERE device_id = ? AND id > ? ORDER BY "
                    "id LIMIT ?");
        q->setInt64(1, device_id);
        q->setInt64(2, after);
        q->setInt64(3, static_cast<std::int64_t>(limit));
        rs_ptr rs(q->executeQuery());
        std::vector<device_signal> out;
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
            out.push_back(std::move(s));
        }
        return out;
    }

    std::optional<bounds> bounds_of(work& w, std::int64_t device_id) override {
        return find_one<bounds>(
            conn(w),
            // The device's own newest signal, never the feed's: a cursor must not tell a tenant how much
            // everyone else's devices are told.
            "SELECT d.updates_trimmed_through, GREATEST(d.updates_trimmed_through, (SELECT "
            "COALESCE(MAX(u.id), "
            "0) FROM device_updates u WHERE u.device_id = d.id)) FROM devices d WHERE d.id = ?",
            [](sql::ResultSet& rs) {
                return bounds{i64(rs, 1), i64(rs, 2)};
            },
            device_id);
    }

    std::int64_t oldest(work& w, std::int64_t device_id) override {
        return find_one<std::int64_t>(
                   conn(w), "SELECT COALESCE(MIN(id), 0) FROM device_updates WHERE device_id = ?",
                   [](sql::ResultSet& rs) { return i64(rs, 1); }, device_id)
            .value_or(0);
    }

    std::vector<std::pair<std::int64_t, std::int64_t>> changed_since(work& w, std::int64_t after) override {
        auto q =
            prepare(conn(w), "SELECT id, device_id FROM device_updates WHERE id > ? ORDER BY id LIMIT 10000");
        q->setInt64(1, after);
        rs_ptr rs(q->executeQuery());
        std::vector<std::pair<std::int64_t, std::int64_t>> out;
        while (rs->next()) {
            out.emplace_back(i64(*rs, 1), i64(*rs, 2));
        }
        return out;
    }

    std::int64_t newest_before(work& w, std::int64_t ts_ms) override {
        // Read down the primary key from the newest row: only the rows of the last moments are passed.
        return find_one<std::int64_t>(
                   conn(w), "SELECT id FROM device_updates WHERE ts_ms < ? ORDER BY id DESC LIMIT 1",
                   [](sql::ResultSet& rs) { return i64(rs, 1); }, ts_ms)
            .value_or(0);
    }
};

// -------------------------------------------------------------------------------------- install configs

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

class mysql_install_configs final : public install_config_repository {
  public:
    std::optional<install_config> current(work& w, std::int64_t device_id, bool lock) override {
        return find_one<install_config>(conn(w),
                                        std::string("SELECT ") + config_columns +
                                            " FROM device_install_configs WHERE device_id = ?" +
                                            (lock ? " FOR UPDATE" : ""),
                                        read_config, device_id);
    }

    std::int64_t insert(work& w, install_config const& ic) override {
        auto& c = conn(w);
        auto ins =
            prepare(c,
                    "INSERT INTO device_install_configs (device_id, user_id, version, installs, "
                    "installs_hash, after_update_script, updated_by, created_at, updated_at) VALUES (?, ?, "
                    "?, ?, ?, ?, ?, ?, ?)");
        ins->setInt64(1, ic.device_id);
        ins->setInt64(2, ic.user_id);
        ins->setInt(3, ic.version);
        ins->setString(4, boost::json::serialize(ic.installs));
        ins->setString(5, ic.installs_hash);
        set_optional(*ins, 6, ic.after_update_script);
        ins->setString(7, ic.updated_by);
        ins->setInt64(8, ic.created_at);
        ins->setInt64(9, ic.updated_at);
        ins->executeUpdate();
        return last_insert_id(c);
    }

    void update(work& w, install_config const& ic) override {
        auto up = prepare(conn(w),
                          "UPDATE device_install_configs SET version = ?, installs = ?, installs_hash = ?, "
                          "after_update_script = ?, updated_by = ?, updated_at = ? WHERE id = ?");
        up->setInt(1, ic.version);
        up->setString(2, boost::json::serialize(ic.installs));
        up->setString(3, ic.installs_hash);
        set_optional(*up, 4, ic.after_update_script);
        up->setString(5, ic.updated_by);
        up->setInt64(6, ic.updated_at);
        up->setInt64(7, ic.id);
        up->executeUpdate();
    }

    void add_history(work& w, install_config const& ic, std::string const& change_note) override {
        auto hist =
            prepare(conn(w),
                    "INSERT INTO device_install_config_history (config_id, device_id, version, installs, "
                    "installs_hash, after_update_script, change_note, updated_by, created_at) VALUES (?, "
                    "?, ?, ?, ?, ?, LEFT(?, 512), ?, ?)");
        hist->setInt64(1, ic.id);
        hist->setInt64(2, ic.device_id);
        hist->setInt(3, ic.version);
        hist->setString(4, boost::json::serialize(ic.installs));
        hist->setString(5, ic.installs_hash);
        set_optional(*hist, 6, ic.after_update_script);
        hist->setString(7, change_note);
        hist->setString(8, ic.updated_by);
        hist->setInt64(9, ic.updated_at);
        hist->executeUpdate();
    }

    void prune_history(work& w, std::int64_t device_id, int through_version) override {
        auto del = prepare(conn(w),
                           "DELETE FROM device_install_config_history WHERE device_id = ? AND version <= ?");
        del->setInt64(1, device_id);
        del->setInt(2, through_version);
        del->executeUpdate();
    }

    page<install_config> history(work& w, std::int64_t device_id, page_query const& q) override {
        auto& c = conn(w);
        page<install_config> out;
        if (q.with_total) {
            out.total = find_one<std::int64_t>(
                c,
                "SELECT COUNT(*) FROM device_install_config_history WHERE "
                "device_id = ?",
                [](sql::ResultSet& rs) { return i64(rs, 1); }, device_id);
        }
        auto ps = prepare(c, std::string("SELECT ") + history_columns +
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
    }

    std::optional<install_config> version(work& w, std::int64_t user_id, std::int64_t device_id,
                                          int version) override {
        return find_one<install_config>(
            conn(w),
            std::string("SELECT ") + history_columns +
                " FROM device_install_config_history h JOIN devices d ON d.id = "
                "h.device_id WHERE d.user_id = ? AND h.device_id = ? AND h.version = ?",
            read_history, user_id, device_id, static_cast<std::int64_t>(version));
    }
};

// ------------------------------------------------------------------------------------------ device CAs

class mysql_device_cas final : public device_ca_repository {
  public:
    std::optional<domain::ca> get(work& w, std::int64_t user_id, std::int64_t device_id,
                                  std::int64_t ca_id) override {
        return find_one<domain::ca>(
            conn(w),
            std::string("SELECT ") + ca_columns +
                " FROM cas JOIN device_cas dc ON dc.ca_id = cas.id WHERE cas.user_id = ? "
                "AND cas.id = ? AND dc.device_id = ?",
            read_ca, user_id, ca_id, device_id);
    }

    page<domain::ca> list(work& w, std::int64_t user_id, std::int64_t device_id,
                          page_query const& q) override {
        return list_page<domain::ca>(conn(w), "cas JOIN device_cas dc ON dc.ca_id = cas.id", ca_columns,
                                     user_id, q, read_ca, row_filter{"dc.device_id = ?", device_id});
    }

    bool insert(work& w, std::int64_t device_id, std::int64_t ca_id, std::int64_t now) override {
        auto ins = prepare(conn(w),
                           "INSERT IGNORE INTO device_cas (device_id, ca_id, assigned_at) VALUES (?, ?, ?)");
        ins->setInt64(1, device_id);
        ins->setInt64(2, ca_id);
        ins->setInt64(3, now);
        return ins->executeUpdate() > 0;
    }

    bool remove(work& w, std::int64_t device_id, std::int64_t ca_id) override {
        auto del = prepare(conn(w), "DELETE FROM device_cas WHERE device_id = ? AND ca_id = ?");
        del->setInt64(1, device_id);
        del->setInt64(2, ca_id);
        return del->executeUpdate() > 0;
    }

    std::vector<std::int64_t> devices_of(work& w, std::int64_t ca_id) override {
        return ids_of(conn(w), "SELECT device_id FROM device_cas WHERE ca_id = ? ORDER BY device_id", ca_id);
    }

    void remove_all(work& w, std::int64_t ca_id) override {
        auto del = prepare(conn(w), "DELETE FROM device_cas WHERE ca_id = ?");
        del->setInt64(1, ca_id);
        del->executeUpdate();
    }
};

}  // namespace

std::unique_ptr<device_feed_repository> make_feed() {
    return std::make_unique<mysql_feed>();
}
std::unique_ptr<install_config_repository> make_install_configs() {
    return std::make_unique<mysql_install_configs>();
}
std::unique_ptr<device_ca_repository> make_device_cas() {
    return std::make_unique<mysql_device_cas>();
}

}  // namespace certctrl::repo::mysql_detail
