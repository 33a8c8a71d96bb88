// MySQL statement set of issuance: the issue history (the job queue) and HTTP-01 key authorizations.
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "factories.hpp"
#include "rows.hpp"

#include <cppconn/exception.h>

namespace certctrl::repo::mysql_detail {

namespace {

constexpr char const* issue_columns =
    "id, cert_id, user_id, issue_attempt_number, status, kind, acme_order_id, error_message, "
    "cancel_requested, "
    "started_at, completed_at, created_at, run_after, acct_id";
constexpr unsigned issue_column_count = 14;
static_assert(column_count(issue_columns) == issue_column_count, "lock_slot reads the columns after these");

domain::issue_row read_issue_at(sql::ResultSet& rs, unsigned f) {
    domain::issue_row r;
    r.id = i64(rs, f);
    r.cert_id = i64(rs, f + 1);
    r.user_id = i64(rs, f + 2);
    r.attempt = rs.getInt(f + 3);
    r.status = rs.getString(f + 4);
    r.kind = rs.getString(f + 5);
    r.acme_order_id = rs.getString(f + 6);
    r.error_message = rs.getString(f + 7);
    r.cancel_requested = rs.getBoolean(f + 8);
    r.started_at = i64(rs, f + 9);
    r.completed_at = i64(rs, f + 10);
    r.created_at = i64(rs, f + 11);
    r.run_after = i64(rs, f + 12);
    r.acct_id = opt_int(rs, f + 13);
    return r;
}

domain::issue_row read_issue(sql::ResultSet& rs) {
    return read_issue_at(rs, 1);
}

std::string const context_query =
    std::string("SELECT ") + cert_columns + ", " + qualified("a", account_columns) + ", " +
    ca_columns_of("ca") +
    " FROM certificates c JOIN acme_accounts a ON a.id = c.acct_id AND a.user_id = "
    "c.user_id LEFT JOIN cas ca ON ca.id = a.ca_id AND ca.user_id = c.user_id "
    "WHERE c.user_id = ? AND c.id = ?";

// Read after the certificate row is locked, without locking itself: a locking read of the history would take
// gap locks that concurrent inserts of other certificates' rows deadlock on. Every writer of a certificate's
// open row or assignments locks the certificate row first (or relies on the unique in-flight key).
std::string const slot_query =
    std::string("SELECT ") + qualified("h", issue_columns) +
    ", (SELECT COUNT(*) FROM issue_history x WHERE x.cert_id = ?), (SELECT "
    "GROUP_CONCAT(a.device_id ORDER BY a.device_id) FROM certificate_assignments a WHERE "
    "a.cert_id = ?) FROM (SELECT 1) one LEFT JOIN issue_history h ON h.inflight_cert_id = ?";

class mysql_issuance final : public issuance_repository {
  public:
    std::optional<issue_context> context(work& w, std::int64_t user_id, std::int64_t cert_id) override {
        return find_one<issue_context>(
            conn(w), context_query,
            [](sql::ResultSet& rs) {
                issue_context ctx;
                ctx.cert = read_cert(rs);
                ctx.account = read_account_at(rs, cert_column_count + 1);
                unsigned const ca_first = cert_column_count + account_column_count + 1;
                if (!rs.isNull(ca_first)) {
                    ctx.ca = read_ca_at(rs, ca_first);
                }
                return ctx;
            },
            user_id, cert_id);
    }

    std::optional<issue_slot> lock_slot(work& w, std::int64_t user_id, std::int64_t cert_id) override {
        auto& c = conn(w);
        if (!exists(c, "SELECT id FROM certificates WHERE user_id = ? AND id = ? FOR UPDATE",
                    {user_id, cert_id})) {
            return std::nullopt;
        }
        return find_one<issue_slot>(
            c, slot_query,
            [](sql::ResultSet& rs) {
                issue_slot s;
                if (!rs.isNull(1)) {
                    s.open_row = read_issue_at(rs, 1);
                }
                s.attempts = rs.getInt(issue_column_count + 1);
                std::string const devices = opt_string(rs, issue_column_count + 2).value_or("");
                for (std::size_t at = 0; at < devices.size();) {
                    auto const comma = devices.find(',', at);
                    s.devices.push_back(std::stoll(devices.substr(at, comma - at)));
                    at = comma == std::string::npos ? devices.size() : comma + 1;
                }
                return s;
            },
            cert_id, cert_id, cert_id);
    }

    std::optional<std::int64_t> insert(work& w, domain::issue_row const& r, std::int64_t run_after) override {
        auto& c = conn(w);
        auto ps = prepare(
            c,
            "INSERT INTO issue_history (cert_id, user_id, issue_attempt_number, status, kind, "
            "inflight_cert_id, run_after, error_message, started_at, completed_at, created_at) "
            "VALUES (?, ?, ?, ?, ?, IF(? IN ('PENDING', 'PROCESSING'), ?, NULL), ?, LEFT(?, 2048), ?, "
            "?, ?)");
        ps->setInt64(1, r.cert_id);
        ps->setInt64(2, r.user_id);
        ps->setInt(3, r.attempt);
        ps->setString(4, r.status);
        ps->setString(5, r.kind);
        ps->setString(6, r.status);
        ps->setInt64(7, r.cert_id);
        ps->setInt64(8, run_after);
        ps->setString(9, r.error_message);
        ps->setInt64(10, r.started_at);
        ps->setInt64(11, r.completed_at);
        ps->setInt64(12, r.created_at);
        try {
            ps->executeUpdate();
        } catch (sql::SQLException const& e) {
            if (e.getErrorCode() == 1062) {  // the unique in-flight key: another open row holds the slot
                return std::nullopt;
            }
            throw;
        }
        return last_insert_id(c);
    }

    std::optional<domain::issue_row> open_row(work& w, std::int64_t cert_id) override {
        return find_one<domain::issue_row>(
            conn(w),
            std::string("SELECT ") + issue_columns +
                " FROM issue_history WHERE inflight_cert_id = ? LOCK IN SHARE MODE",
            read_issue, cert_id);
    }

    bool insert_if_idle(work& w, std::int64_t user_id, std::int64_t cert_id, std::string const& kind,
                        std::int64_t now) override {
        // The unique in-flight key makes this a no-op while the certificate has an open row.
        auto ps = prepare(
            conn(w),
            "INSERT IGNORE INTO issue_history (cert_id, user_id, issue_attempt_number, status, kind, "
            "inflight_cert_id, run_after, created_at) SELECT ?, ?, COUNT(*) + 1, 'PENDING', ?, ?, ?, ? "
            "FROM issue_history WHERE cert_id = ?");
        ps->setInt64(1, cert_id);
        ps->setInt64(2, user_id);
        ps->setString(3, kind);
        ps->setInt64(4, cert_id);
        ps->setInt64(5, now);
        ps->setInt64(6, now);
        ps->setInt64(7, cert_id);
        return ps->executeUpdate() > 0;
    }

    page<domain::issue_row> list(work& w, std::int64_t user_id, std::int64_t cert_id,
                                 page_query const& q) override {
        return list_page<domain::issue_row>(conn(w), "issue_history", issue_columns, user_id, q, read_issue,
                                            row_filter{"cert_id = ?", cert_id});
    }

    std::optional<domain::issue_row> get(work& w, std::int64_t id, row_lock lock) override {
        return find_one<domain::issue_row>(conn(w),
                                           std::string("SELECT ") + issue_columns +
                                               " FROM issue_history WHERE id = ?" + lock_clause_of(lock),
                                           read_issue, id);
    }

    bool start(work& w, std::int64_t id, std::string const& owner, std::int64_t lease_until,
               std::int64_t now) override {
        auto ps = prepare(conn(w),
                          "UPDATE issue_history SET status = 'PROCESSING', lease_owner = ?, lease_until = ?, "
                          "started_at = ? WHERE id = ? AND status = 'PENDING'");
        ps->setString(1, owner);
        ps->setInt64(2, lease_until);
        ps->setInt64(3, now);
        ps->setInt64(4, id);
        return ps->executeUpdate() > 0;
    }

    bool close(work& w, std::int64_t id, std::string const& status, std::string const& message,
               std::int64_t now, std::string const& owner) override {
        auto ps = prepare(
            conn(w), owner.empty()
                         ? "UPDATE issue_history SET status = ?, error_message = LEFT(?, 2048), "
                           "inflight_cert_id = NULL, completed_at = ?, lease_owner = NULL WHERE id = ? AND "
                           "status IN ('PENDING', 'PROCESSING')"
                         : "UPDATE issue_history SET status = ?, error_message = LEFT(?, 2048), "
                           "inflight_cert_id = NULL, completed_at = ?, lease_owner = NULL WHERE id = ? AND "
                           "status = 'PROCESSING' AND lease_owner = ?");
        ps->setString(1, status);
        ps->setString(2, message);
        ps->setInt64(3, now);
        ps->setInt64(4, id);
        if (!owner.empty()) {
            ps->setString(5, owner);
        }
        return ps->executeUpdate() > 0;
    }

    bool held_by(work& w, std::int64_t id, std::string const& owner) override {
        return find_one<std::int64_t>(
                   conn(w),
                   "SELECT id FROM issue_history WHERE id = ? AND status = 'PROCESSING' AND "
                   "lease_owner = ? FOR UPDATE",
                   [](sql::ResultSet& rs) { return i64(rs, 1); }, id, owner)
            .has_value();
    }

    void request_cancel(work& w, std::int64_t id) override {
        auto ps = prepare(conn(w), "UPDATE issue_history SET cancel_requested = 1 WHERE id = ?");
        ps->setInt64(1, id);
        ps->executeUpdate();
    }

    std::optional<std::int64_t> claimable(work& w, std::int64_t now, claim_rules const& rules) override {
        auto& c = conn(w);
        // CAs at their cap of rows PROCESSING (every instance; a consistent read, like the user count below).
        // A quarter of each cap is kept for rows a user waits for: renewals stop at the other three quarters.
        std::vector<std::string> full;          // for every row
        std::vector<std::string> full_renewal;  // for renewals
        if (!rules.max_per_ca.empty()) {
            auto ps =
                prepare(c,
                        "SELECT a.directory_url, COUNT(*) FROM issue_history h JOIN certificates c ON c.id "
                        "= h.cert_id JOIN acme_accounts a ON a.id = c.acct_id WHERE h.status = "
                        "'PROCESSING' AND h.lease_until >= ? GROUP BY a.directory_url");
            ps->setInt64(1, now);
            rs_ptr rs(ps->executeQuery());
            while (rs->next()) {
                auto const it = rules.max_per_ca.find(std::string(rs->getString(1)));
                if (it == rules.max_per_ca.end() || it->second == 0) {
                    continue;
                }
                auto const running = static_cast<std::int64_t>(rs->getInt64(2));
                auto const cap = static_cast<std::int64_t>(it->second);
                if (running >= cap) {
                    full.emplace_back(rs->getString(1));
                }
                if (running >= std::max<std::int64_t>(1, cap - std::max<std::int64_t>(1, cap / 4))) {
                    full_renewal.emplace_back(rs->getString(1));
                }
            }
        }
        for (bool const waiting_user : {true, false}) {
            auto const& excluded = waiting_user ? full : full_renewal;
            std::string q =
                "SELECT h.id FROM issue_history h WHERE ((h.status = 'PENDING' AND h.run_after <= ?) OR "
                "(h.status = 'PROCESSING' AND h.lease_until < ?))";
            // The user count reads without locks (a consistent read): two instances may each start one more
            // row of a user in the same instant, so a cap can be exceeded by the number of instances,
            // briefly.
            if (rules.max_per_user > 0) {
                q += " AND (SELECT COUNT(*) FROM issue_history p WHERE p.user_id = h.user_id AND p.status = "
                     "'PROCESSING' AND p.lease_until >= ?) < ?";
            }
            if (!excluded.empty()) {
                q += " AND NOT EXISTS (SELECT 1 FROM certificates c JOIN acme_accounts a ON a.id = c.acct_id "
                     "WHERE c.id = h.cert_id AND a.directory_url IN (?";
                for (std::size_t i = 1; i < excluded.size(); ++i) {
                    q += ", ?";
                }
                q += "))";
            }
            // Rows users wait for are looked for with a consistent read and then the one found is locked: a
            // locking scan would hold every renewal it passes over (REPEATABLE READ keeps those locks) until
            // the claim commits, and other instances' claims would skip them all meanwhile.
            q += waiting_user ? " AND h.kind <> 'renew' ORDER BY h.id LIMIT 1"
                              : " ORDER BY h.id LIMIT 1 FOR UPDATE SKIP LOCKED";
            auto ps = prepare(c, q);
            unsigned i = 1;
            ps->setInt64(i++, now);
            ps->setInt64(i++, now);
            if (rules.max_per_user > 0) {
                ps->setInt64(i++, now);
                ps->setInt64(i++, static_cast<std::int64_t>(rules.max_per_user));
            }
            for (auto const& url : excluded) {
                ps->setString(i++, url);
            }
            rs_ptr rs(ps->executeQuery());
            if (!rs->next()) {
                continue;
            }
            auto const id = static_cast<std::int64_t>(rs->getInt64(1));
            if (!waiting_user) {
                return id;
            }
            auto locked = find_one<std::int64_t>(
                c,
                "SELECT id FROM issue_history WHERE id = ? AND ((status = 'PENDING' AND run_after <= ?) OR "
                "(status = 'PROCESSING' AND lease_until < ?)) FOR UPDATE SKIP LOCKED",
                [](sql::ResultSet& r) { return i64(r, 1); }, id, now, now);
            if (locked) {
                return locked;
            }
        }
        return std::nullopt;
    }

    std::optional<domain::acme_account> account(work& w, std::int64_t user_id, std::int64_t id) override {
        return find_one<domain::acme_account>(
            conn(w),
            std::string("SELECT ") + qualified("a", account_columns) +
                " FROM acme_accounts a WHERE a.user_id = ? AND a.id = ?",
            [](sql::ResultSet& rs) { return read_account_at(rs, 1); }, user_id, id);
    }

    bool set_account(work& w, std::int64_t id, std::string const& owner, std::int64_t acct_id,
                     std::string const& note) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE issue_history SET acct_id = ?, error_message = IF(? = '', error_message, LEFT(?, "
                    "2048)) WHERE id = ? AND status = 'PROCESSING' AND lease_owner = ?");
        ps->setInt64(1, acct_id);
        ps->setString(2, note);
        ps->setString(3, note);
        ps->setInt64(4, id);
        ps->setString(5, owner);
        return ps->executeUpdate() > 0;
    }

    issue_queue_state queue_state(work& w, std::int64_t now) override {
        auto ps =
            prepare(conn(w),
                    "SELECT COALESCE(SUM(status = 'PENDING' AND run_after <= ?), 0), COALESCE(SUM(status = "
                    "'PENDING' AND run_after > ?), 0), COALESCE(SUM(status = 'PROCESSING'), 0), "
                    "COALESCE(MIN(IF(status = 'PENDING' AND run_after > ?, run_after, NULL)), 0) FROM "
                    "issue_history WHERE status IN ('PENDING', 'PROCESSING')");
        ps->setInt64(1, now);
        ps->setInt64(2, now);
        ps->setInt64(3, now);
        rs_ptr rs(ps->executeQuery());
        issue_queue_state q;
        if (rs->next()) {
            q.runnable = i64(*rs, 1);
            q.waiting = i64(*rs, 2);
            q.processing = i64(*rs, 3);
            q.next_retry_at = i64(*rs, 4);
        }
        return q;
    }

    void take(work& w, std::int64_t id, std::string const& owner, std::int64_t lease_until,
              std::int64_t now) override {
        auto ps = prepare(conn(w),
                          "UPDATE issue_history SET status = 'PROCESSING', lease_owner = ?, lease_until = ?, "
                          "started_at = IF(started_at = 0, ?, started_at) WHERE id = ?");
        ps->setString(1, owner);
        ps->setInt64(2, lease_until);
        ps->setInt64(3, now);
        ps->setInt64(4, id);
        ps->executeUpdate();
    }

    std::optional<domain::issue_row> extend_lease(work& w, std::int64_t id, std::string const& owner,
                                                  std::int64_t lease_until) override {
        auto& c = conn(w);
        auto ps =
            prepare(c,
                    "UPDATE issue_history SET lease_until = ? WHERE id = ? AND lease_owner = ? AND status = "
                    "'PROCESSING'");
        ps->setInt64(1, lease_until);
        ps->setInt64(2, id);
        ps->setString(3, owner);
        ps->executeUpdate();
        return find_one<domain::issue_row>(
            c,
            std::string("SELECT ") + issue_columns +
                " FROM issue_history WHERE id = ? AND status = 'PROCESSING' AND "
                "lease_owner = ?",
            read_issue, id, owner);
    }

    std::string progress(work& w, std::int64_t id) override {
        return find_one<std::string>(
                   conn(w), "SELECT COALESCE(acme_state, '') FROM issue_history WHERE id = ?",
                   [](sql::ResultSet& rs) { return std::string(rs.getString(1)); }, id)
            .value_or("");
    }

    bool save_progress(work& w, std::int64_t id, std::string const& owner, std::string const& progress,
                       std::string const& order_url) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE issue_history SET acme_state = ?, acme_order_id = IF(? = '', acme_order_id, "
                    "LEFT(?, 1024)) WHERE id = ? AND status = 'PROCESSING' AND lease_owner = ?");
        ps->setString(1, progress);
        ps->setString(2, order_url);
        ps->setString(3, order_url);
        ps->setInt64(4, id);
        ps->setString(5, owner);
        // MySQL counts changed rows: saving the same progress again changes none, so ask whether it is held.
        return ps->executeUpdate() > 0 || held_by(w, id, owner);
    }

    bool retry_later(work& w, std::int64_t id, std::string const& owner, std::int64_t run_after,
                     std::string const& message) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE issue_history SET status = 'PENDING', run_after = ?, lease_owner = NULL, "
                    "lease_until = 0, error_message = LEFT(?, 2048) WHERE id = ? AND status = 'PROCESSING' "
                    "AND lease_owner = ?");
        ps->setInt64(1, run_after);
        ps->setString(2, message);
        ps->setInt64(3, id);
        ps->setString(4, owner);
        return ps->executeUpdate() > 0;
    }

    void set_account_kid(work& w, std::int64_t account_id, std::string const& kid,
                         std::int64_t now) override {
        auto ps = prepare(conn(w), "UPDATE acme_accounts SET kid = ?, updated_at = ? WHERE id = ?");
        ps->setString(1, kid);
        ps->setInt64(2, now);
        ps->setInt64(3, account_id);
        ps->executeUpdate();
    }

    void put_http_challenge(work& w, std::string const& token, std::string const& identifier,
                            std::string const& key_authorization, std::int64_t history_id,
                            std::int64_t expires_at) override {
        auto ps =
            prepare(conn(w),
                    "REPLACE INTO acme_http_challenges (token, identifier, key_authorization, history_id, "
                    "expires_at) VALUES (?, ?, ?, ?, ?)");
        ps->setString(1, token);
        ps->setString(2, identifier);
        ps->setString(3, key_authorization);
        ps->setInt64(4, history_id);
        ps->setInt64(5, expires_at);
        ps->executeUpdate();
    }

    void drop_http_challenges(work& w, std::int64_t history_id) override {
        auto ps = prepare(conn(w), "DELETE FROM acme_http_challenges WHERE history_id = ?");
        ps->setInt64(1, history_id);
        ps->executeUpdate();
    }

    std::optional<std::string> http_challenge(work& w, std::string const& token, std::string const& host,
                                              std::int64_t now) override {
        return find_one<std::string>(
            conn(w),
            "SELECT key_authorization FROM acme_http_challenges WHERE token = ? AND "
            "identifier = ? AND expires_at >= ?",
            [](sql::ResultSet& rs) { return std::string(rs.getString(1)); }, token, host, now);
    }
};

}  // namespace

std::unique_ptr<issuance_repository> make_issuance() {
    return std::make_unique<mysql_issuance>();
}

}  // namespace certctrl::repo::mysql_detail
