// MySQL implementation of the issuance repository: the issue history (the job queue) and issued material.
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "rows.hpp"
#include "signals.hpp"

#include <boost/asio/use_awaitable.hpp>

namespace certctrl::repo {

namespace {

using boost::asio::use_awaitable;
using namespace mysql_detail;

constexpr char const* issue_columns =
    "id, cert_id, user_id, issue_attempt_number, status, kind, acme_order_id, error_message, "
    "cancel_requested, "
    "started_at, completed_at, created_at";

domain::issue_row read_issue(sql::ResultSet& rs) {
    domain::issue_row r;
    r.id = i64(rs, 1);
    r.cert_id = i64(rs, 2);
    r.user_id = i64(rs, 3);
    r.attempt = rs.getInt(4);
    r.status = rs.getString(5);
    r.kind = rs.getString(6);
    r.acme_order_id = rs.getString(7);
    r.error_message = rs.getString(8);
    r.cancel_requested = rs.getBoolean(9);
    r.started_at = i64(rs, 10);
    r.completed_at = i64(rs, 11);
    r.created_at = i64(rs, 12);
    return r;
}

std::optional<domain::issue_row> row_by_id(sql::Connection& c, std::int64_t id, char const* lock = "") {
    return find_one<domain::issue_row>(
        c, std::string("SELECT ") + issue_columns + " FROM issue_history WHERE id = ?" + lock, read_issue,
        id);
}

class mysql_issuance final : public issuance_repository {
  public:
    explicit mysql_issuance(db::pool& p) : pool_(p) {}

    task<enqueued> enqueue(std::int64_t user_id, std::int64_t cert_id, std::string kind, std::int64_t now,
                           std::int64_t run_after) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<enqueued> {
                transaction tx(c);
                // Locking the certificate row serialises enqueues for it; the unique inflight key backs this
                // up across instances.
                if (!exists(c, "SELECT id FROM certificates WHERE user_id = ? AND id = ? FOR UPDATE",
                            {user_id, cert_id})) {
                    return make_error(errc::not_found, "Certificate not found");
                }
                auto open = find_one<domain::issue_row>(
                    c,
                    std::string("SELECT ") + issue_columns + " FROM issue_history WHERE inflight_cert_id = ?",
                    read_issue, cert_id);
                if (open) {
                    tx.commit();
                    return enqueued{*open, false};
                }
                auto cnt = prepare(c, "SELECT COUNT(*) FROM issue_history WHERE cert_id = ?");
                cnt->setInt64(1, cert_id);
                rs_ptr crs(cnt->executeQuery());
                crs->next();
                int const attempt = crs->getInt(1) + 1;
                auto ps = prepare(
                    c,
                    "INSERT INTO issue_history (cert_id, user_id, issue_attempt_number, status, kind, "
                    "inflight_cert_id, run_after, created_at) VALUES (?, ?, ?, 'PENDING', ?, ?, ?, ?)");
                ps->setInt64(1, cert_id);
                ps->setInt64(2, user_id);
                ps->setInt(3, attempt);
                ps->setString(4, kind);
                ps->setInt64(5, cert_id);
                ps->setInt64(6, run_after);
                ps->setInt64(7, now);
                ps->executeUpdate();
                auto row = row_by_id(c, last_insert_id(c));
                tx.commit();
                return enqueued{*row, true};
            },
            use_awaitable);
    }

    task<page<domain::issue_row>> list(std::int64_t user_id, std::int64_t cert_id, page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::issue_row>> {
                return list_page<domain::issue_row>(c, "issue_history", issue_columns, user_id, q, read_issue,
                                                    row_filter{"cert_id = ?", cert_id});
            },
            use_awaitable);
    }

    task<std::optional<domain::issue_row>> get(std::int64_t history_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::issue_row>> {
                return row_by_id(c, history_id);
            },
            use_awaitable);
    }

    task<bool> start(std::int64_t history_id, std::string owner, std::int64_t lease_until,
                     std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(
                    c,
                    "UPDATE issue_history SET status = 'PROCESSING', lease_owner = ?, lease_until = ?, "
                    "started_at = ? WHERE id = ? AND status = 'PENDING'");
                ps->setString(1, owner);
                ps->setInt64(2, lease_until);
                ps->setInt64(3, now);
                ps->setInt64(4, history_id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<bool> succeed(std::int64_t history_id, issued_material m, std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                transaction tx(c);
                auto row = row_by_id(c, history_id, " FOR UPDATE");
                if (!row || row->status != "PROCESSING") {
                    return false;
                }
                auto cert =
                    prepare(c,
                            "UPDATE certificates SET cert_pem = ?, serial_number = ?, not_before = ?, "
                            "not_after = ?, self_signed = ?, verified = ?, enc_privkey = ?, enc_nonce = ?, "
                            "enc_tag = ?, enc_scheme = 1, renew_after = 0, updated_at = ? WHERE id = ?");
                cert->setString(1, m.cert_pem);
                cert->setString(2, m.serial_number);
                cert->setInt64(3, m.not_before);
                cert->setInt64(4, m.not_after);
                cert->setBoolean(5, m.self_signed);
                cert->setBoolean(6, m.verified);
                cert->setString(7, m.private_key.ciphertext);
                cert->setString(8, m.private_key.nonce);
                cert->setString(9, m.private_key.tag);
                cert->setInt64(10, now);
                cert->setInt64(11, row->cert_id);
                cert->executeUpdate();
                if (m.keep_master_copy) {
                    auto wrap = prepare(
                        c,
                        "REPLACE INTO certificate_master_wrapped (cert_id, key_version, wrapped_data_key, "
                        "nonce, tag) VALUES (?, ?, ?, ?, ?)");
                    wrap->setInt64(1, row->cert_id);
                    wrap->setInt(2, static_cast<int>(m.data_key.version));
                    wrap->setString(3, m.data_key.box.ciphertext);
                    wrap->setString(4, m.data_key.box.nonce);
                    wrap->setString(5, m.data_key.box.tag);
                    wrap->executeUpdate();
                } else {
                    auto drop = prepare(c, "DELETE FROM certificate_master_wrapped WHERE cert_id = ?");
                    drop->setInt64(1, row->cert_id);
                    drop->executeUpdate();
                }
                // Every device holding the certificate gets the new data key sealed to it (or a pending
                // mark) and a cert.updated signal, in this same transaction.
                if (m.sealer.seal) {
                    auto const devices = devices_of_cert(c, row->cert_id);
                    lock_devices(c, devices);
                    for (auto device_id : devices) {
                        wrap_assignment(c, row->cert_id, device_id, m.sealer, m.plain_data_key);
                    }
                }
                auto done = prepare(c,
                                    "UPDATE issue_history SET status = 'SUCCESS', inflight_cert_id = NULL, "
                                    "completed_at = ?, lease_owner = NULL, error_message = '' WHERE id = ?");
                done->setInt64(1, now);
                done->setInt64(2, history_id);
                done->executeUpdate();
                tx.commit();
                return true;
            },
            use_awaitable);
    }

    task<bool> finish_without_certificate(std::int64_t history_id, std::string status, std::string message,
                                          std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps =
                    prepare(c,
                            "UPDATE issue_history SET status = ?, error_message = LEFT(?, 2048), "
                            "inflight_cert_id = NULL, completed_at = ?, lease_owner = NULL WHERE id = ? AND "
                            "status IN ('PENDING', 'PROCESSING')");
                ps->setString(1, status);
                ps->setString(2, message);
                ps->setInt64(3, now);
                ps->setInt64(4, history_id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<domain::issue_row> cancel(std::int64_t user_id, std::int64_t cert_id, std::int64_t history_id,
                                   std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<domain::issue_row> {
                transaction tx(c);
                auto row = row_by_id(c, history_id, " FOR UPDATE");
                if (!row || row->user_id != user_id || row->cert_id != cert_id) {
                    return make_error(errc::not_found, "Issue history row not found");
                }
                if (row->status == "PENDING") {
                    auto ps =
                        prepare(c,
                                "UPDATE issue_history SET status = 'CANCELLED', inflight_cert_id = NULL, "
                                "completed_at = ?, error_message = 'Cancelled by the user' WHERE id = ?");
                    ps->setInt64(1, now);
                    ps->setInt64(2, history_id);
                    ps->executeUpdate();
                } else if (row->status == "PROCESSING") {
                    auto ps = prepare(c, "UPDATE issue_history SET cancel_requested = 1 WHERE id = ?");
                    ps->setInt64(1, history_id);
                    ps->executeUpdate();
                } else {
                    return make_error(errc::conflict, "The issuance already finished (" + row->status + ")");
                }
                auto after = row_by_id(c, history_id);
                tx.commit();
                return *after;
            },
            use_awaitable);
    }

    task<std::optional<issue_context>> context(std::int64_t user_id, std::int64_t cert_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<issue_context>> {
                auto cert =
                    find_one<domain::certificate>(c,
                                                  std::string("SELECT ") + cert_columns +
                                                      " FROM certificates c WHERE c.user_id = ? AND c.id = ?",
                                                  read_cert, user_id, cert_id);
                if (!cert) {
                    return std::optional<issue_context>{};
                }
                auto account =
                    find_one<domain::acme_account>(c,
                                                   std::string("SELECT ") + account_columns +
                                                       " FROM acme_accounts WHERE user_id = ? AND id = ?",
                                                   read_account, user_id, cert->acct_id);
                if (!account) {
                    return std::optional<issue_context>{};
                }
                issue_context ctx{*cert, *account, std::nullopt};
                if (account->ca_id) {
                    ctx.ca = find_one<domain::ca>(
                        c, std::string("SELECT ") + ca_columns + " FROM cas WHERE user_id = ? AND id = ?",
                        read_ca, user_id, *account->ca_id);
                }
                return std::optional<issue_context>(std::move(ctx));
            },
            use_awaitable);
    }

    task<std::optional<stored_key>> key_of(std::int64_t user_id, std::int64_t cert_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<stored_key>> {
                return find_one<stored_key>(
                    c,
                    "SELECT c.enc_privkey, c.enc_nonce, c.enc_tag, w.key_version, w.wrapped_data_key, "
                    "w.nonce, w.tag "
                    "FROM certificates c LEFT JOIN certificate_master_wrapped w ON w.cert_id = c.id "
                    "WHERE c.user_id = ? AND c.id = ? AND c.enc_privkey IS NOT NULL",
                    [](sql::ResultSet& rs) {
                        stored_key k;
                        k.private_key.ciphertext = rs.getString(1);
                        k.private_key.nonce = rs.getString(2);
                        k.private_key.tag = rs.getString(3);
                        if (!rs.isNull(4)) {
                            crypto::wrapped_key w;
                            w.version = static_cast<std::uint32_t>(rs.getInt(4));
                            w.box.ciphertext = rs.getString(5);
                            w.box.nonce = rs.getString(6);
                            w.box.tag = rs.getString(7);
                            k.data_key = w;
                        }
                        return k;
                    },
                    user_id, cert_id);
            },
            use_awaitable);
    }

    task<bool> note_ca_use(std::int64_t ca_id, std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(c,
                                  "UPDATE cas SET issued_cert_count = issued_cert_count + 1, last_used_at = "
                                  "? WHERE id = ?");
                ps->setInt64(1, now);
                ps->setInt64(2, ca_id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<std::optional<domain::issue_row>> claim(std::string owner, std::int64_t now,
                                                 std::int64_t lease_until) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::issue_row>> {
                transaction tx(c);
                auto pick =
                    prepare(c,
                            "SELECT id FROM issue_history WHERE (status = 'PENDING' AND run_after <= ?) OR "
                            "(status = 'PROCESSING' AND lease_until < ?) ORDER BY id LIMIT 1 FOR UPDATE "
                            "SKIP LOCKED");
                pick->setInt64(1, now);
                pick->setInt64(2, now);
                rs_ptr rs(pick->executeQuery());
                if (!rs->next()) {
                    return std::optional<domain::issue_row>{};
                }
                std::int64_t const id = i64(*rs, 1);
                auto ps = prepare(
                    c,
                    "UPDATE issue_history SET status = 'PROCESSING', lease_owner = ?, lease_until = ?, "
                    "started_at = IF(started_at = 0, ?, started_at) WHERE id = ?");
                ps->setString(1, owner);
                ps->setInt64(2, lease_until);
                ps->setInt64(3, now);
                ps->setInt64(4, id);
                ps->executeUpdate();
                auto row = row_by_id(c, id);
                tx.commit();
                return row;
            },
            use_awaitable);
    }

    task<std::optional<domain::issue_row>> heartbeat(std::int64_t history_id, std::string owner,
                                                     std::int64_t lease_until) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::issue_row>> {
                auto ps =
                    prepare(c,
                            "UPDATE issue_history SET lease_until = ? WHERE id = ? AND lease_owner = ? AND "
                            "status = 'PROCESSING'");
                ps->setInt64(1, lease_until);
                ps->setInt64(2, history_id);
                ps->setString(3, owner);
                ps->executeUpdate();
                auto row = row_by_id(c, history_id);
                if (!row || row->status != "PROCESSING") {
                    return std::optional<domain::issue_row>{};
                }
                auto own = prepare(c, "SELECT lease_owner FROM issue_history WHERE id = ?");
                own->setInt64(1, history_id);
                rs_ptr rs(own->executeQuery());
                if (!rs->next() || rs->isNull(1) || rs->getString(1) != owner) {
                    return std::optional<domain::issue_row>{};
                }
                return row;
            },
            use_awaitable);
    }

    task<std::string> acme_state(std::int64_t history_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::string> {
                auto s = find_one<std::string>(
                    c, "SELECT COALESCE(acme_state, '') FROM issue_history WHERE id = ?",
                    [](sql::ResultSet& rs) { return std::string(rs.getString(1)); }, history_id);
                return s.value_or("");
            },
            use_awaitable);
    }

    task<bool> save_acme_state(std::int64_t history_id, std::string state, std::string order_url) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(c,
                                  "UPDATE issue_history SET acme_state = ?, acme_order_id = IF(? = '', "
                                  "acme_order_id, LEFT(?, "
                                  "1024)) WHERE id = ?");
                ps->setString(1, state);
                ps->setString(2, order_url);
                ps->setString(3, order_url);
                ps->setInt64(4, history_id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<bool> retry_later(std::int64_t history_id, std::int64_t run_after, std::string message) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps =
                    prepare(c,
                            "UPDATE issue_history SET status = 'PENDING', run_after = ?, lease_owner = NULL, "
                            "lease_until = 0, error_message = LEFT(?, 2048) WHERE id = ? AND status = "
                            "'PROCESSING'");
                ps->setInt64(1, run_after);
                ps->setString(2, message);
                ps->setInt64(3, history_id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<bool> set_account_kid(std::int64_t account_id, std::string kid, std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(c, "UPDATE acme_accounts SET kid = ?, updated_at = ? WHERE id = ?");
                ps->setString(1, kid);
                ps->setInt64(2, now);
                ps->setInt64(3, account_id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<std::vector<std::pair<std::int64_t, std::int64_t>>> due_for_renewal(std::int64_t now,
                                                                             std::int64_t limit) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::vector<std::pair<std::int64_t, std::int64_t>>> {
                auto ps = prepare(
                    c,
                    "SELECT c.user_id, c.id FROM certificates c WHERE c.auto_renew = 1 AND c.not_after > 0 "
                    "AND "
                    "c.cert_pem IS NOT NULL AND IF(c.renew_after > 0, c.renew_after, c.not_before + "
                    "(c.not_after - "
                    "c.not_before) * 2 DIV 3 - MOD(c.id * 2654435761, GREATEST(1, (c.not_after - "
                    "c.not_before) DIV "
                    "20))) <= ? AND NOT EXISTS "
                    "(SELECT 1 FROM issue_history h WHERE h.inflight_cert_id = c.id) ORDER BY c.not_after "
                    "LIMIT ?");
                ps->setInt64(1, now);
                ps->setInt64(2, limit);
                rs_ptr rs(ps->executeQuery());
                std::vector<std::pair<std::int64_t, std::int64_t>> out;
                while (rs->next()) {
                    out.emplace_back(i64(*rs, 1), i64(*rs, 2));
                }
                return out;
            },
            use_awaitable);
    }

    task<bool> set_renew_after(std::int64_t cert_id, std::int64_t when) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(c, "UPDATE certificates SET renew_after = ? WHERE id = ?");
                ps->setInt64(1, when);
                ps->setInt64(2, cert_id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<bool> put_http_challenge(std::string token, std::string key_authorization, std::int64_t history_id,
                                  std::int64_t expires_at) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(c,
                                  "REPLACE INTO acme_http_challenges (token, key_authorization, history_id, "
                                  "expires_at) VALUES (?, ?, ?, ?)");
                ps->setString(1, token);
                ps->setString(2, key_authorization);
                ps->setInt64(3, history_id);
                ps->setInt64(4, expires_at);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<bool> drop_http_challenges(std::int64_t history_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(c, "DELETE FROM acme_http_challenges WHERE history_id = ?");
                ps->setInt64(1, history_id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<std::optional<std::string>> http_challenge(std::string token, std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<std::string>> {
                return find_one<std::string>(
                    c,
                    "SELECT key_authorization FROM acme_http_challenges WHERE token = ? AND expires_at >= ?",
                    [](sql::ResultSet& rs) { return std::string(rs.getString(1)); }, token, now);
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

}  // namespace

std::unique_ptr<issuance_repository> make_mysql_issuance_repository(db::pool& p) {
    return std::make_unique<mysql_issuance>(p);
}

}  // namespace certctrl::repo
