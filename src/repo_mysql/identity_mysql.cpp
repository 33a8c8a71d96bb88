// MySQL implementations of the identity repositories: users, sessions, API keys, audit log, rate limits.
// Operations are plain functions returning the awaitable of async_offload (not coroutines), so the capturing
// lambdas never sit inside a co_await expression (gcc 12 destroys such temporaries twice).
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "rows.hpp"

#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <memory>
#include <sstream>

namespace certctrl::repo {

namespace {

using boost::asio::use_awaitable;
using namespace mysql_detail;

std::vector<std::string> split_roles(std::string const& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string r;
    while (std::getline(ss, r, ',')) {
        if (!r.empty())
            out.push_back(r);
    }
    return out;
}

std::string join_roles(std::vector<std::string> const& roles) {
    std::string s;
    for (auto const& r : roles) {
        s += (s.empty() ? "" : ",") + r;
    }
    return s;
}

constexpr char const* user_columns =
    "u.id, u.email, u.name, u.password_hash, u.roles, u.status, u.created_at";

// Reads the 7 user columns starting at column `first`.
domain::user read_user(sql::ResultSet& rs, unsigned first = 1) {
    domain::user u;
    u.id = static_cast<std::int64_t>(rs.getInt64(first));
    u.email = rs.getString(first + 1);
    u.name = rs.getString(first + 2);
    u.password_hash = rs.getString(first + 3);
    u.roles = split_roles(rs.getString(first + 4));
    u.status = rs.getString(first + 5);
    u.created_at = static_cast<std::int64_t>(rs.getInt64(first + 6));
    return u;
}

constexpr char const* key_columns =
    "k.id, k.user_id, k.key_id, k.secret_hash, k.name, k.permissions, k.created_at, k.expires_at";

domain::api_key read_key(sql::ResultSet& rs) {
    domain::api_key k;
    k.id = static_cast<std::int64_t>(rs.getInt64(1));
    k.user_id = static_cast<std::int64_t>(rs.getInt64(2));
    k.key_id = rs.getString(3);
    k.secret_hash = rs.getString(4);
    k.name = rs.getString(5);
    boost::system::error_code ec;
    auto perms = boost::json::parse(std::string(rs.getString(6)), ec);
    if (!ec) {
        if (auto parsed = domain::parse_permissions(perms)) {
            k.permissions = std::move(*parsed);
        }
    }
    k.created_at = static_cast<std::int64_t>(rs.getInt64(7));
    k.expires_at = static_cast<std::int64_t>(rs.getInt64(8));
    return k;
}

domain::audit_entry read_audit(sql::ResultSet& rs) {
    domain::audit_entry e;
    e.id = static_cast<std::int64_t>(rs.getInt64(1));
    e.user_id = static_cast<std::int64_t>(rs.getInt64(2));
    e.action = rs.getString(3);
    e.outcome = rs.getString(4);
    e.ip = rs.getString(5);
    e.request_id = rs.getString(6);
    boost::system::error_code ec;
    auto d = boost::json::parse(std::string(rs.getString(7)), ec);
    if (!ec && d.is_object()) {
        e.detail = std::move(d.get_object());
    }
    e.created_at = static_cast<std::int64_t>(rs.getInt64(8));
    return e;
}

// Moves the revocation epoch inside the caller's transaction (see auth_epoch_repository).
void bump_epoch(sql::Connection& c) {
    auto ps = prepare(c, "UPDATE auth_epoch SET epoch = epoch + 1 WHERE id = 1");
    ps->executeUpdate();
}

class mysql_users final : public user_repository {
  public:
    explicit mysql_users(db::pool& p) : pool_(p) {}

    task<domain::user> create(domain::user u) override {
        return db::async_offload(
            pool_,
            [u](sql::Connection& c) mutable -> result<domain::user> {
                auto ps = prepare(c,
                                  "INSERT INTO users (email, name, password_hash, roles, status, created_at, "
                                  "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
                ps->setString(1, u.email);
                ps->setString(2, u.name);
                ps->setString(3, u.password_hash);
                ps->setString(4, join_roles(u.roles));
                ps->setString(5, u.status);
                ps->setInt64(6, u.created_at);
                ps->setInt64(7, u.created_at);
                ps->executeUpdate();
                u.id = last_insert_id(c);
                return u;
            },
            use_awaitable);
    }

    task<std::optional<domain::user>> find_by_email(std::string email) override {
        return find_one("u.email = ?", [email](sql::PreparedStatement& ps) { ps.setString(1, email); });
    }

    task<std::optional<domain::user>> find_by_id(std::int64_t id) override {
        return find_one("u.id = ?", [id](sql::PreparedStatement& ps) { ps.setInt64(1, id); });
    }

    task<bool> set_status(std::int64_t id, std::string status) override {
        return db::async_offload(
            pool_,
            [id, status](sql::Connection& c) -> result<bool> {
                transaction tx(c);
                auto ps =
                    prepare(c, "UPDATE users SET status = ?, updated_at = UNIX_TIMESTAMP() WHERE id = ?");
                ps->setString(1, status);
                ps->setInt64(2, id);
                if (ps->executeUpdate() == 0) {
                    return false;
                }
                bump_epoch(c);
                tx.commit();
                return true;
            },
            use_awaitable);
    }

  private:
    // The user matching `where` (with its one parameter bound by `bind`), if any.
    template <class Bind>
    task<std::optional<domain::user>> find_one(char const* where, Bind bind) {
        return db::async_offload(
            pool_,
            [where, bind](sql::Connection& c) -> result<std::optional<domain::user>> {
                auto ps = prepare(
                    c, (std::string("SELECT ") + user_columns + " FROM users u WHERE " + where).c_str());
                bind(*ps);
                rs_ptr rs(ps->executeQuery());
                if (!rs->next()) {
                    return std::optional<domain::user>{};
                }
                return std::optional<domain::user>(read_user(*rs));
            },
            use_awaitable);
    }

    db::pool& pool_;
};

class mysql_sessions final : public session_repository {
  public:
    explicit mysql_sessions(db::pool& p) : pool_(p) {}

    task<std::int64_t> create(std::int64_t user_id, std::string token_hash, std::int64_t now,
                              std::int64_t expires_at, std::string ip, std::string user_agent,
                              std::string replaces) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::int64_t> {
                transaction tx(c);
                if (!replaces.empty()) {
                    auto del = prepare(c, "DELETE FROM sessions WHERE token_hash = ?");
                    del->setString(1, replaces);
                    if (del->executeUpdate() > 0) {
                        bump_epoch(c);
                    }
                }
                auto ps = prepare(
                    c,
                    "INSERT INTO sessions (user_id, token_hash, created_at, last_seen_at, expires_at, "
                    "ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)");
                ps->setInt64(1, user_id);
                ps->setString(2, token_hash);
                ps->setInt64(3, now);
                ps->setInt64(4, now);
                ps->setInt64(5, expires_at);
                ps->setString(6, ip.substr(0, 45));
                ps->setString(7, user_agent.substr(0, 255));
                ps->executeUpdate();
                std::int64_t id = last_insert_id(c);
                tx.commit();
                return id;
            },
            use_awaitable);
    }

    task<std::optional<session_row>> find_live(std::string token_hash, std::int64_t now,
                                               std::int64_t idle_since) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<session_row>> {
                auto ps =
                    prepare(c, (std::string("SELECT s.id, s.last_seen_at, s.expires_at, ") + user_columns +
                                " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?")
                                   .c_str());
                ps->setString(1, token_hash);
                rs_ptr rs(ps->executeQuery());
                if (!rs->next())
                    return std::optional<session_row>{};
                session_row row;
                row.id = static_cast<std::int64_t>(rs->getInt64(1));
                row.last_seen_at = static_cast<std::int64_t>(rs->getInt64(2));
                row.expires_at = static_cast<std::int64_t>(rs->getInt64(3));
                row.user = read_user(*rs, 4);
                if (row.expires_at <= now || row.last_seen_at < idle_since) {
                    auto del = prepare(c, "DELETE FROM sessions WHERE id = ?");
                    del->setInt64(1, row.id);
                    del->executeUpdate();
                    return std::optional<session_row>{};
                }
                return std::optional<session_row>(std::move(row));
            },
            use_awaitable);
    }

    task<bool> touch(std::int64_t id, std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(c, "UPDATE sessions SET last_seen_at = ? WHERE id = ?");
                ps->setInt64(1, now);
                ps->setInt64(2, id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<bool> remove(std::string token_hash) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                transaction tx(c);
                auto ps = prepare(c, "DELETE FROM sessions WHERE token_hash = ?");
                ps->setString(1, token_hash);
                if (ps->executeUpdate() == 0) {
                    return false;
                }
                bump_epoch(c);
                tx.commit();
                return true;
            },
            use_awaitable);
    }

    task<std::int64_t> purge(std::int64_t now, std::int64_t idle_since) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::int64_t> {
                auto ps = prepare(c, "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?");
                ps->setInt64(1, now);
                ps->setInt64(2, idle_since);
                return static_cast<std::int64_t>(ps->executeUpdate());
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

class mysql_api_keys final : public api_key_repository {
  public:
    explicit mysql_api_keys(db::pool& p) : pool_(p) {}

    task<domain::api_key> create(domain::api_key k) override {
        return db::async_offload(
            pool_,
            [k](sql::Connection& c) mutable -> result<domain::api_key> {
                auto ps = prepare(
                    c,
                    "INSERT INTO api_keys (user_id, key_id, secret_hash, name, permissions, created_at, "
                    "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
                ps->setInt64(1, k.user_id);
                ps->setString(2, k.key_id);
                ps->setString(3, k.secret_hash);
                ps->setString(4, k.name);
                ps->setString(5, boost::json::serialize(domain::to_json(k.permissions)));
                ps->setInt64(6, k.created_at);
                ps->setInt64(7, k.expires_at);
                ps->executeUpdate();
                k.id = last_insert_id(c);
                return k;
            },
            use_awaitable);
    }

    task<page<domain::api_key>> list(std::int64_t user_id, page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::api_key>> {
                return mysql_detail::list_page<domain::api_key>(c, "api_keys k", key_columns, user_id, q,
                                                                read_key);
            },
            use_awaitable);
    }

    task<std::optional<domain::api_key>> get(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::api_key>> {
                auto ps = prepare(c, (std::string("SELECT ") + key_columns +
                                      " FROM api_keys k WHERE k.user_id = ? AND k.id = ?")
                                         .c_str());
                ps->setInt64(1, user_id);
                ps->setInt64(2, id);
                rs_ptr rs(ps->executeQuery());
                if (!rs->next())
                    return std::optional<domain::api_key>{};
                return std::optional<domain::api_key>(read_key(*rs));
            },
            use_awaitable);
    }

    task<std::optional<std::string>> remove(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<std::string>> {
                transaction tx(c);
                auto key_id = find_one<std::string>(
                    c, "SELECT key_id FROM api_keys WHERE user_id = ? AND id = ? FOR UPDATE",
                    [](sql::ResultSet& rs) { return std::string(rs.getString(1)); }, user_id, id);
                if (!key_id) {
                    return std::optional<std::string>{};
                }
                delete_owned_row(c, "api_keys", user_id, id);
                bump_epoch(c);
                tx.commit();
                return key_id;
            },
            use_awaitable);
    }

    task<std::optional<std::pair<domain::api_key, domain::user>>> find_by_key_id(
        std::string key_id) override {
        using row = std::pair<domain::api_key, domain::user>;
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<row>> {
                auto ps = prepare(c, (std::string("SELECT ") + key_columns + ", " + user_columns +
                                      " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_id = ?")
                                         .c_str());
                ps->setString(1, key_id);
                rs_ptr rs(ps->executeQuery());
                if (!rs->next())
                    return std::optional<row>{};
                return std::optional<row>(row{read_key(*rs), read_user(*rs, 9)});
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

class mysql_audit final : public audit_repository {
  public:
    explicit mysql_audit(db::pool& p) : pool_(p) {}

    task<std::int64_t> append(domain::audit_entry e) override {
        return db::async_offload(
            pool_,
            [e](sql::Connection& c) -> result<std::int64_t> {
                auto ps = prepare(
                    c,
                    "INSERT INTO audit_log (user_id, action, outcome, ip, request_id, detail, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)");
                if (e.user_id) {
                    ps->setInt64(1, *e.user_id);
                } else {
                    ps->setNull(1, 0);
                }
                ps->setString(2, e.action);
                ps->setString(3, e.outcome);
                ps->setString(4, e.ip.substr(0, 45));
                ps->setString(5, e.request_id.substr(0, 64));
                ps->setString(6, boost::json::serialize(e.detail));
                ps->setInt64(7, e.created_at);
                ps->executeUpdate();
                return last_insert_id(c);
            },
            use_awaitable);
    }

    task<page<domain::audit_entry>> list(std::int64_t user_id, page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::audit_entry>> {
                return mysql_detail::list_page<domain::audit_entry>(
                    c, "audit_log", "id, user_id, action, outcome, ip, request_id, detail, created_at",
                    user_id, q, read_audit);
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

class mysql_rate_limits final : public rate_limit_repository {
  public:
    explicit mysql_rate_limits(db::pool& p) : pool_(p) {}

    task<std::vector<rate_count>> add(std::vector<rate_count> deltas,
                                      std::vector<std::string> also_read) override {
        return db::async_offload(
            pool_,
            [deltas = std::move(deltas),
             also_read = std::move(also_read)](sql::Connection& c) -> result<std::vector<rate_count>> {
                transaction tx(c);
                // One statement per batch size: the texts stay few, so their prepared forms are reused.
                // `count` is assigned before `window_start`, so it still sees the old window.
                for (auto const& d : deltas) {
                    auto ps =
                        prepare(c,
                                "INSERT INTO rate_limits (bucket, window_start, count) VALUES (?, ?, ?) ON "
                                "DUPLICATE KEY UPDATE count = IF(window_start = VALUES(window_start), count "
                                "+ VALUES(count), VALUES(count)), window_start = VALUES(window_start)");
                    ps->setString(1, d.bucket);
                    ps->setInt64(2, d.window_start);
                    ps->setInt64(3, d.count);
                    ps->executeUpdate();
                }
                std::vector<rate_count> out;
                auto read = [&](std::string const& bucket) {
                    auto row = find_one<rate_count>(
                        c, "SELECT bucket, window_start, count FROM rate_limits WHERE bucket = ?",
                        [](sql::ResultSet& rs) {
                            return rate_count{std::string(rs.getString(1)),
                                              static_cast<std::int64_t>(rs.getInt64(2)),
                                              static_cast<std::int64_t>(rs.getInt64(3))};
                        },
                        bucket);
                    if (row) {
                        out.push_back(std::move(*row));
                    }
                };
                for (auto const& d : deltas) {
                    read(d.bucket);
                }
                for (auto const& b : also_read) {
                    read(b);
                }
                tx.commit();
                return out;
            },
            use_awaitable);
    }

    task<std::int64_t> purge(std::int64_t before) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::int64_t> {
                auto ps = prepare(c, "DELETE FROM rate_limits WHERE window_start < ?");
                ps->setInt64(1, before);
                return static_cast<std::int64_t>(ps->executeUpdate());
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

class mysql_auth_epoch final : public auth_epoch_repository {
  public:
    explicit mysql_auth_epoch(db::pool& p) : pool_(p) {}

    task<std::int64_t> current() override {
        return db::async_offload(
            pool_,
            [](sql::Connection& c) -> result<std::int64_t> {
                return find_one<std::int64_t>(
                           c, "SELECT epoch FROM auth_epoch WHERE id = 1",
                           [](sql::ResultSet& rs) { return static_cast<std::int64_t>(rs.getInt64(1)); })
                    .value_or(0);
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

}  // namespace

std::unique_ptr<user_repository> make_mysql_user_repository(db::pool& p) {
    return std::make_unique<mysql_users>(p);
}
std::unique_ptr<session_repository> make_mysql_session_repository(db::pool& p) {
    return std::make_unique<mysql_sessions>(p);
}
std::unique_ptr<api_key_repository> make_mysql_api_key_repository(db::pool& p) {
    return std::make_unique<mysql_api_keys>(p);
}
std::unique_ptr<audit_repository> make_mysql_audit_repository(db::pool& p) {
    return std::make_unique<mysql_audit>(p);
}
std::unique_ptr<rate_limit_repository> make_mysql_rate_limit_repository(db::pool& p) {
    return std::make_unique<mysql_rate_limits>(p);
}
std::unique_ptr<auth_epoch_repository> make_mysql_auth_epoch_repository(db::pool& p) {
    return std::make_unique<mysql_auth_epoch>(p);
}

}  // namespace certctrl::repo
