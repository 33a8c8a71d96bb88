// MySQL implementation of the ACME account repository (plain functions returning awaitables: see
// identity_mysql.cpp for why they are not coroutines).
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "rows.hpp"

#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <boost/asio/use_awaitable.hpp>

#include <memory>

namespace certctrl::repo {

namespace {

using boost::asio::use_awaitable;
using namespace mysql_detail;

class mysql_acme_accounts final : public acme_account_repository {
  public:
    explicit mysql_acme_accounts(db::pool& p) : pool_(p) {}

    task<domain::acme_account> create(domain::acme_account a) override {
        return db::async_offload(
            pool_,
            [a](sql::Connection& c) mutable -> result<domain::acme_account> {
                auto ps = prepare(
                    c,
                    "INSERT INTO acme_accounts (user_id, name, email, provider, directory_url, kid, ca_id, "
                    "key_alg, enc_account_key, eab_kid, enc_eab_hmac, leaf_key_algorithm, leaf_rsa_bits, "
                    "leaf_ec_curve, cert_valid_seconds, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
                ps->setInt64(1, a.user_id);
                ps->setString(2, a.name);
                ps->setString(3, a.email);
                ps->setString(4, a.provider);
                ps->setString(5, a.directory_url);
                set_optional(*ps, 6, a.kid);
                set_optional(*ps, 7, a.ca_id);
                ps->setString(8, a.key_algorithm);
                set_optional(*ps, 9,
                             a.enc_account_key.empty() ? std::nullopt : std::optional(a.enc_account_key));
                set_optional(*ps, 10, a.eab_kid);
                set_optional(*ps, 11, a.enc_eab_hmac.empty() ? std::nullopt : std::optional(a.enc_eab_hmac));
                set_optional(*ps, 12, a.leaf_key_algorithm);
                set_optional(*ps, 13, a.leaf_rsa_bits);
                set_optional(*ps, 14, a.leaf_ec_curve);
                set_optional(*ps, 15, a.cert_valid_seconds);
                ps->setInt64(16, a.created_at);
                ps->setInt64(17, a.updated_at);
                ps->executeUpdate();
                a.id = last_insert_id(c);
                return a;
            },
            use_awaitable);
    }

    task<page<domain::acme_account>> list(std::int64_t user_id, page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::acme_account>> {
                return mysql_detail::list_page<domain::acme_account>(c, "acme_accounts", account_columns,
                                                                     user_id, q, read_account);
            },
            use_awaitable);
    }

    task<std::optional<domain::acme_account>> get(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::acme_account>> {
                return find_one<domain::acme_account>(c,
                                                      std::string("SELECT ") + account_columns +
                                                          " FROM acme_accounts WHERE user_id = ? AND id = ?",
                                                      read_account, user_id, id);
            },
            use_awaitable);
    }

    task<bool> update(std::int64_t user_id, std::int64_t id, std::string name, std::string email,
                      std::int64_t now) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(c,
                                  "UPDATE acme_accounts SET name = ?, email = ?, updated_at = ? WHERE "
                                  "user_id = ? AND id = ?");
                ps->setString(1, name);
                ps->setString(2, email);
                ps->setInt64(3, now);
                ps->setInt64(4, user_id);
                ps->setInt64(5, id);
                ps->executeUpdate();
                // MySQL reports 0 rows for an update that changes nothing, so existence is checked apart.
                return owned_row_exists(c, "acme_accounts", user_id, id);
            },
            use_awaitable);
    }

    task<bool> remove(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                return delete_owned_row(c, "acme_accounts", user_id, id);
            },
            use_awaitable);
    }

    task<bool> set_secrets(std::int64_t user_id, std::int64_t id, std::string enc_account_key,
                           std::string enc_eab_hmac) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                auto ps = prepare(
                    c,
                    "UPDATE acme_accounts SET enc_account_key = ?, enc_eab_hmac = ? WHERE user_id = ? "
                    "AND id = ?");
                if (enc_account_key.empty()) {
                    ps->setNull(1, 0);
                } else {
                    ps->setString(1, enc_account_key);
                }
                if (enc_eab_hmac.empty()) {
                    ps->setNull(2, 0);
                } else {
                    ps->setString(2, enc_eab_hmac);
                }
                ps->setInt64(3, user_id);
                ps->setInt64(4, id);
                return ps->executeUpdate() > 0;
            },
            use_awaitable);
    }

    task<bool> ca_belongs_to(std::int64_t user_id, std::int64_t ca_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> { return owned_row_exists(c, "cas", user_id, ca_id); },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

}  // namespace

std::unique_ptr<acme_account_repository> make_mysql_acme_account_repository(db::pool& p) {
    return std::make_unique<mysql_acme_accounts>(p);
}

}  // namespace certctrl::repo
