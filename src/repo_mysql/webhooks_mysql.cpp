// MySQL statements of webhooks: subscriptions, the event outbox, deliveries and their claims.
#include "certctrl/repo/webhooks.hpp"

#include "common.hpp"
#include "factories.hpp"

#include <sstream>

namespace certctrl::repo::mysql_detail {

namespace {

constexpr char const* hook_columns =
    "id, user_id, url, description, events, cert_ids, enabled, enc_secret, enc_previous_secret, "
    "previous_secret_until, created_at, updated_at";

std::vector<std::string> split(std::string const& s) {
    std::vector<std::string> out;
    std::stringstream in(s);
    std::string part;
    while (std::getline(in, part, ',')) {
        if (!part.empty()) {
            out.push_back(part);
        }
    }
    return out;
}

template <class T>
std::string join(std::vector<T> const& v) {
    std::string out;
    for (auto const& x : v) {
        if (!out.empty()) {
            out += ',';
        }
        if constexpr (std::is_same_v<T, std::string>) {
            out += x;
        } else {
            out += std::to_string(x);
        }
    }
    return out;
}

domain::webhook read_hook(sql::ResultSet& rs, unsigned base = 1) {
    domain::webhook h;
    h.id = static_cast<std::int64_t>(rs.getInt64(base));
    h.user_id = static_cast<std::int64_t>(rs.getInt64(base + 1));
    h.url = rs.getString(base + 2);
    h.description = rs.getString(base + 3);
    h.events = split(rs.getString(base + 4));
    if (!rs.isNull(base + 5)) {
        std::vector<std::int64_t> ids;
        for (auto const& s : split(rs.getString(base + 5))) {
            ids.push_back(std::stoll(s));
        }
        h.cert_ids = std::move(ids);
    }
    h.enabled = rs.getBoolean(base + 6);
    h.enc_secret = rs.getString(base + 7);
    h.enc_previous_secret = opt_string(rs, base + 8).value_or("");
    h.previous_secret_until = opt_int(rs, base + 9);
    h.created_at = static_cast<std::int64_t>(rs.getInt64(base + 10));
    h.updated_at = static_cast<std::int64_t>(rs.getInt64(base + 11));
    return h;
}

constexpr char const* delivery_columns =
    "d.id, d.webhook_id, d.user_id, e.public_id, e.type, d.status, d.attempts, d.next_attempt_ms, "
    "d.expires_at, d.last_status_code, d.last_error, d.last_attempt_at, d.completed_at, d.created_at";

domain::webhook_delivery read_delivery(sql::ResultSet& rs) {
    domain::webhook_delivery d;
    d.id = static_cast<std::int64_t>(rs.getInt64(1));
    d.webhook_id = static_cast<std::int64_t>(rs.getInt64(2));
    d.user_id = static_cast<std::int64_t>(rs.getInt64(3));
    d.event_id = rs.getString(4);
    d.event_type = rs.getString(5);
    d.status = rs.getString(6);
    d.attempts = static_cast<std::int64_t>(rs.getInt64(7));
    d.next_attempt_ms = static_cast<std::int64_t>(rs.getInt64(8));
    d.expires_at = static_cast<std::int64_t>(rs.getInt64(9));
    d.last_status_code = opt_int(rs, 10);
    d.last_error = opt_string(rs, 11).value_or("");
    d.last_attempt_at = opt_int(rs, 12);
    d.completed_at = opt_int(rs, 13);
    d.created_at = static_cast<std::int64_t>(rs.getInt64(14));
    return d;
}

void bind_hook(sql::PreparedStatement& ps, unsigned i, domain::webhook const& h) {
    ps.setString(i++, h.url);
    ps.setString(i++, h.description);
    ps.setString(i++, join(h.events));
    set_optional(ps, i++, h.cert_ids ? std::optional<std::string>(join(*h.cert_ids)) : std::nullopt);
    ps.setBoolean(i++, h.enabled);
    ps.setString(i++, h.enc_secret);
    set_optional(
        ps, i++,
        h.enc_previous_secret.empty() ? std::nullopt : std::optional<std::string>(h.enc_previous_secret));
    set_optional(ps, i++, h.previous_secret_until);
    ps.setInt64(i, h.updated_at);
}

class mysql_webhooks final : public webhook_repository {
  public:
    std::int64_t insert(work& w, domain::webhook const& h) override {
        auto& c = conn(w);
        auto ps =
            prepare(c,
                    "INSERT INTO webhooks (url, description, events, cert_ids, enabled, enc_secret, "
                    "enc_previous_secret, previous_secret_until, updated_at, user_id, created_at) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        bind_hook(*ps, 1, h);
        ps->setInt64(10, h.user_id);
        ps->setInt64(11, h.created_at);
        ps->executeUpdate();
        return last_insert_id(c);
    }

    std::optional<domain::webhook> get(work& w, std::int64_t user_id, std::int64_t id,
                                       row_lock lock) override {
        return find_one<domain::webhook>(
            conn(w),
            std::string("SELECT ") + hook_columns + " FROM webhooks WHERE user_id = ? AND id = ?" +
                lock_clause_of(lock),
            [](sql::ResultSet& rs) { return read_hook(rs); }, user_id, id);
    }

    page<domain::webhook> list(work& w, std::int64_t user_id, page_query const& q) override {
        return list_page<domain::webhook>(conn(w), "webhooks", hook_columns, user_id, q,
                                          [](sql::ResultSet& rs) { return read_hook(rs); });
    }

    std::int64_t count_of(work& w, std::int64_t user_id) override {
        // Locking: concurrent creates of one user wait here, so the count they check stays true.
        auto ps = prepare(conn(w), "SELECT COUNT(*) FROM webhooks WHERE user_id = ? FOR UPDATE");
        ps->setInt64(1, user_id);
        rs_ptr rs(ps->executeQuery());
        rs->next();
        return static_cast<std::int64_t>(rs->getInt64(1));
    }

    void update(work& w, domain::webhook const& h) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE webhooks SET url = ?, description = ?, events = ?, cert_ids = ?, enabled = ?, "
                    "enc_secret = ?, enc_previous_secret = ?, previous_secret_until = ?, updated_at = ? "
                    "WHERE user_id = ? AND id = ?");
        bind_hook(*ps, 1, h);
        ps->setInt64(10, h.user_id);
        ps->setInt64(11, h.id);
        ps->executeUpdate();
    }

    bool remove(work& w, std::int64_t user_id, std::int64_t id) override {
        return delete_owned_row(conn(w), "webhooks", user_id, id);
    }

    std::vector<domain::webhook> enabled_of(work& w, std::int64_t user_id) override {
        auto ps = prepare(conn(w), std::string("SELECT ") + hook_columns +
                                       " FROM webhooks WHERE user_id = ? AND enabled = 1 ORDER BY id");
        ps->setInt64(1, user_id);
        rs_ptr rs(ps->executeQuery());
        std::vector<domain::webhook> out;
        while (rs->next()) {
            out.push_back(read_hook(*rs));
        }
        return out;
    }

    std::int64_t insert_event(work& w, webhook_event_row const& e) override {
        auto& c = conn(w);
        auto ps =
            prepare(c,
                    "INSERT INTO webhook_events (public_id, user_id, type, cert_id, payload, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)");
        ps->setString(1, e.public_id);
        ps->setInt64(2, e.user_id);
        ps->setString(3, e.type);
        set_optional(*ps, 4, e.cert_id);
        ps->setString(5, e.payload);
        ps->setInt64(6, e.created_at);
        ps->executeUpdate();
        return last_insert_id(c);
    }

    std::int64_t insert_delivery(work& w, std::int64_t webhook_id, std::int64_t event_id,
                                 std::int64_t user_id, std::int64_t due_ms, std::int64_t expires_at,
                                 std::int64_t now) override {
        auto& c = conn(w);
        auto ps = prepare(c,
                          "INSERT INTO webhook_deliveries (webhook_id, event_id, user_id, status, "
                          "next_attempt_ms, expires_at, created_at) VALUES (?, ?, ?, 'PENDING', ?, ?, ?)");
        ps->setInt64(1, webhook_id);
        ps->setInt64(2, event_id);
        ps->setInt64(3, user_id);
        ps->setInt64(4, due_ms);
        ps->setInt64(5, expires_at);
        ps->setInt64(6, now);
        ps->executeUpdate();
        return last_insert_id(c);
    }

    void fail_pending(work& w, std::int64_t webhook_id, std::string const& why, std::int64_t now) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE webhook_deliveries SET status = 'FAILED', last_error = ?, completed_at = ?, "
                    "lease_owner = NULL WHERE webhook_id = ? AND status = 'PENDING'");
        ps->setString(1, why);
        ps->setInt64(2, now);
        ps->setInt64(3, webhook_id);
        ps->executeUpdate();
    }

    page<domain::webhook_delivery> deliveries(work& w, std::int64_t user_id, std::int64_t webhook_id,
                                              std::string const& status, page_query const& q) override {
        auto& c = conn(w);
        page<domain::webhook_delivery> out;
        std::string const where = " WHERE d.webhook_id = ? AND d.user_id = ?" +
                                  std::string(status.empty() ? "" : " AND d.status = ?");
        auto bind_where = [&](sql::PreparedStatement& ps) {
            unsigned i = 1;
            ps.setInt64(i++, webhook_id);
            ps.setInt64(i++, user_id);
            if (!status.empty()) {
                ps.setString(i++, status);
            }
            return i;
        };
        if (q.with_total) {
            auto cnt = prepare(c, "SELECT COUNT(*) FROM webhook_deliveries d" + where);
            bind_where(*cnt);
            rs_ptr crs(cnt->executeQuery());
            crs->next();
            out.total = static_cast<std::int64_t>(crs->getInt64(1));
        }
        auto ps = prepare(c, std::string("SELECT ") + delivery_columns +
                                 " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id" +
                                 where + " AND d.id < ? ORDER BY d.id DESC LIMIT ? OFFSET ?");
        unsigned i = bind_where(*ps);
        ps->setInt64(i++, q.upper_id());
        ps->setInt64(i++, q.limit + 1);
        ps->setInt64(i, q.offset);
        rs_ptr rs(ps->executeQuery());
        while (rs->next()) {
            out.items.push_back(read_delivery(*rs));
        }
        if (static_cast<std::int64_t>(out.items.size()) > q.limit) {
            out.items.resize(static_cast<std::size_t>(q.limit));
            out.has_more = true;
        }
        return out;
    }

    std::optional<domain::webhook_delivery> delivery(work& w, std::int64_t user_id, std::int64_t webhook_id,
                                                     std::int64_t id) override {
        return find_one<domain::webhook_delivery>(
            conn(w),
            std::string("SELECT ") + delivery_columns +
                ", e.payload FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id WHERE d.id "
                "= ? "
                "AND d.webhook_id = ? AND d.user_id = ?",
            [](sql::ResultSet& rs) {
                auto d = read_delivery(rs);
                d.payload = rs.getString(15);
                return d;
            },
            id, webhook_id, user_id);
    }

    void redeliver(work& w, std::int64_t id, std::int64_t due_ms, std::int64_t expires_at) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_ms = ?, expires_at = ?, "
                    "completed_at = NULL, lease_owner = NULL WHERE id = ?");
        ps->setInt64(1, due_ms);
        ps->setInt64(2, expires_at);
        ps->setInt64(3, id);
        ps->executeUpdate();
    }

    std::vector<due_delivery> claim(work& w, std::int64_t now_ms, std::size_t n,
                                    claim_filter const& leave_out, std::string const& owner,
                                    std::int64_t lease_until_ms) override {
        auto& c = conn(w);
        // Fixed lists of placeholders (unused ones bound to 0, which no row has): one statement text.
        std::string placeholders;
        for (std::size_t k = 0; k < claim_filter::max; ++k) {
            placeholders += k == 0 ? "?" : ", ?";
        }
        auto pick =
            prepare(c,
                    "SELECT id FROM webhook_deliveries WHERE status = 'PENDING' AND next_attempt_ms <= ? "
                    "AND user_id NOT IN (" +
                        placeholders + ") AND webhook_id NOT IN (" + placeholders +
                        ") ORDER BY next_attempt_ms LIMIT ? FOR UPDATE SKIP LOCKED");
        unsigned i = 1;
        pick->setInt64(i++, now_ms);
        for (auto const* ids : {&leave_out.users, &leave_out.webhooks}) {
            for (std::size_t k = 0; k < claim_filter::max; ++k) {
                pick->setInt64(i++, k < ids->size() ? (*ids)[k] : 0);
            }
        }
        pick->setInt64(i, static_cast<std::int64_t>(n));
        std::vector<std::int64_t> ids;
        {
            rs_ptr rs(pick->executeQuery());
            while (rs->next()) {
                ids.push_back(static_cast<std::int64_t>(rs->getInt64(1)));
            }
        }
        std::vector<due_delivery> out;
        if (ids.empty()) {
            return out;
        }
        // One id per statement: the texts stay few, so each pool connection prepares them once.
        auto take = prepare(c,
                            "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_owner = ?, "
                            "next_attempt_ms = ? WHERE id = ?");
        std::string const read =
            "SELECT d.id, d.attempts, d.expires_at, e.public_id, e.type, e.payload, w.id, w.user_id, w.url, "
            "w.description, w.events, w.cert_ids, w.enabled, w.enc_secret, w.enc_previous_secret, "
            "w.previous_secret_until, w.created_at, w.updated_at FROM webhook_deliveries d JOIN "
            "webhook_events e "
            "ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?";
        for (auto id : ids) {
            take->setString(1, owner);
            take->setInt64(2, lease_until_ms);
            take->setInt64(3, id);
            take->executeUpdate();
            auto d = find_one<due_delivery>(
                c, read,
                [](sql::ResultSet& rs) {
                    due_delivery row;
                    row.id = static_cast<std::int64_t>(rs.getInt64(1));
                    row.attempt = static_cast<std::int64_t>(rs.getInt64(2));
                    row.expires_at = static_cast<std::int64_t>(rs.getInt64(3));
                    row.event_id = rs.getString(4);
                    row.event_type = rs.getString(5);
                    row.payload = rs.getString(6);
                    row.hook = read_hook(rs, 7);
                    return row;
                },
                id);
            if (d) {
                out.push_back(std::move(*d));
            }
        }
        return out;
    }

    void release(work& w, std::int64_t id, std::string const& owner, std::int64_t attempt,
                 std::int64_t due_ms) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE webhook_deliveries SET attempts = attempts - 1, lease_owner = NULL, "
                    "next_attempt_ms = ? WHERE id = ? AND lease_owner = ? AND attempts = ? AND status = "
                    "'PENDING'");
        ps->setInt64(1, due_ms);
        ps->setInt64(2, id);
        ps->setString(3, owner);
        ps->setInt64(4, attempt);
        ps->executeUpdate();
    }

    bool finish(work& w, std::int64_t id, std::string const& owner, std::int64_t attempt,
                delivery_outcome const& o) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE webhook_deliveries SET status = ?, next_attempt_ms = ?, last_status_code = ?, "
                    "last_error = ?, last_attempt_at = ?, completed_at = ?, lease_owner = NULL WHERE id = ? "
                    "AND lease_owner = ? AND attempts = ? AND status = 'PENDING'");
        ps->setString(1, o.status);
        ps->setInt64(2, o.next_attempt_ms);
        set_optional(*ps, 3, o.status_code);
        set_optional(*ps, 4,
                     o.error.empty() ? std::nullopt : std::optional<std::string>(o.error.substr(0, 512)));
        ps->setInt64(5, o.at);
        set_optional(*ps, 6, o.status == "PENDING" ? std::nullopt : std::optional<std::int64_t>(o.at));
        ps->setInt64(7, id);
        ps->setString(8, owner);
        ps->setInt64(9, attempt);
        return ps->executeUpdate() > 0;
    }

    std::int64_t purge(work& w, std::int64_t before, std::size_t limit) override {
        auto& c = conn(w);
        auto done = prepare(c,
                            "DELETE FROM webhook_deliveries WHERE status <> 'PENDING' AND completed_at < ? "
                            "LIMIT ?");
        done->setInt64(1, before);
        done->setInt64(2, static_cast<std::int64_t>(limit));
        std::int64_t n = done->executeUpdate();
        auto events = prepare(c,
                              "DELETE FROM webhook_events WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM "
                              "webhook_deliveries d WHERE d.event_id = webhook_events.id) LIMIT ?");
        events->setInt64(1, before);
        events->setInt64(2, static_cast<std::int64_t>(limit));
        n += events->executeUpdate();
        return n;
    }

    std::int64_t pending_count(work& w) override {
        auto ps = prepare(conn(w), "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'PENDING'");
        rs_ptr rs(ps->executeQuery());
        rs->next();
        return static_cast<std::int64_t>(rs->getInt64(1));
    }

    std::vector<expiring_certificate> expiring(work& w, std::int64_t now, std::int64_t days,
                                               std::size_t limit) override {
        auto ps =
            prepare(conn(w),
                    "SELECT id, user_id, not_after FROM certificates WHERE not_after > ? AND not_after <= ? "
                    "AND (expiry_warned_days IS NULL OR expiry_warned_days > ?) ORDER BY not_after LIMIT ? "
                    "FOR UPDATE SKIP LOCKED");
        ps->setInt64(1, now);
        ps->setInt64(2, now + days * 86400);
        ps->setInt64(3, days);
        ps->setInt64(4, static_cast<std::int64_t>(limit));
        rs_ptr rs(ps->executeQuery());
        std::vector<expiring_certificate> out;
        while (rs->next()) {
            out.push_back({static_cast<std::int64_t>(rs->getInt64(1)),
                           static_cast<std::int64_t>(rs->getInt64(2)),
                           static_cast<std::int64_t>(rs->getInt64(3))});
        }
        return out;
    }

    void mark_warned(work& w, std::int64_t cert_id, std::int64_t days) override {
        // Not a change of the record: the row version stays (lists keep their rendered text).
        auto ps = prepare(conn(w), "UPDATE certificates SET expiry_warned_days = ? WHERE id = ?");
        ps->setInt64(1, days);
        ps->setInt64(2, cert_id);
        ps->executeUpdate();
    }

    void note_fetched(work& w, std::int64_t device_id, std::int64_t cert_id,
                      std::string const& serial) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE certificate_assignments SET fetched_serial = ? WHERE cert_id = ? AND device_id = "
                    "? AND (fetched_serial IS NULL OR fetched_serial <> ?)");
        ps->setString(1, serial);
        ps->setInt64(2, cert_id);
        ps->setInt64(3, device_id);
        ps->setString(4, serial);
        ps->executeUpdate();
    }

    std::vector<std::pair<std::int64_t, std::string>> unconfirmed(work& w, std::int64_t device_id) override {
        auto ps =
            prepare(conn(w),
                    "SELECT cert_id, fetched_serial FROM certificate_assignments WHERE device_id = ? AND "
                    "fetched_serial IS NOT NULL AND (deployed_serial IS NULL OR deployed_serial <> "
                    "fetched_serial) ORDER BY cert_id");
        ps->setInt64(1, device_id);
        rs_ptr rs(ps->executeQuery());
        std::vector<std::pair<std::int64_t, std::string>> out;
        while (rs->next()) {
            out.emplace_back(static_cast<std::int64_t>(rs->getInt64(1)), rs->getString(2));
        }
        return out;
    }

    bool confirm(work& w, std::int64_t device_id, std::int64_t cert_id, std::string const& serial) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE certificate_assignments SET deployed_serial = ? WHERE cert_id = ? AND device_id "
                    "= ? AND (deployed_serial IS NULL OR deployed_serial <> ?)");
        ps->setString(1, serial);
        ps->setInt64(2, cert_id);
        ps->setInt64(3, device_id);
        ps->setString(4, serial);
        return ps->executeUpdate() > 0;
    }
};

}  // namespace

std::unique_ptr<webhook_repository> make_webhooks() {
    return std::make_unique<mysql_webhooks>();
}

}  // namespace certctrl::repo::mysql_detail
