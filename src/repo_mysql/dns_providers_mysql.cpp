// MySQL implementation of the DNS provider repository (plain functions returning awaitables).
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"

#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <memory>

namespace certctrl::repo {

namespace {

using boost::asio::use_awaitable;
using namespace mysql_detail;

constexpr char const* columns = "id, user_id, name, kind, settings, enc_credentials, created_at, updated_at";

domain::dns_provider read(sql::ResultSet& rs) {
    domain::dns_provider p;
    p.id = static_cast<std::int64_t>(rs.getInt64(1));
    p.user_id = static_cast<std::int64_t>(rs.getInt64(2));
    p.name = rs.getString(3);
    p.kind = rs.getString(4);
    boost::system::error_code ec;
    auto v = boost::json::parse(std::string(rs.getString(5)), ec);
    if (!ec && v.is_object())
        p.settings = std::move(v.get_object());
    p.enc_credentials = rs.isNull(6) ? std::string() : std::string(rs.getString(6));
    p.created_at = static_cast<std::int64_t>(rs.getInt64(7));
    p.updated_at = static_cast<std::int64_t>(rs.getInt64(8));
    return p;
}

void bind_credentials(sql::PreparedStatement& ps, unsigned i, std::string const& enc) {
    if (enc.empty()) {
        ps.setNull(i, 0);
    } else {
        ps.setString(i, enc);
    }
}

class mysql_dns_providers final : public dns_provider_repository {
  public:
    explicit mysql_dns_providers(db::pool& p) : pool_(p) {}

    task<domain::dns_provider> create(domain::dns_provider p) override {
        return db::async_offload(
            pool_,
            [p](sql::Connection& c) mutable -> result<domain::dns_provider> {
                auto ps = prepare(
                    c,
                    "INSERT INTO dns_providers (user_id, name, kind, settings, enc_credentials, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
                ps->setInt64(1, p.user_id);
                ps->setString(2, p.name);
                ps->setString(3, p.kind);
                ps->setString(4, boost::json::serialize(p.settings));
                bind_credentials(*ps, 5, p.enc_credentials);
                ps->setInt64(6, p.created_at);
                ps->setInt64(7, p.updated_at);
                ps->executeUpdate();
                p.id = last_insert_id(c);
                return p;
            },
            use_awaitable);
    }

    task<page<domain::dns_provider>> list(std::int64_t user_id, page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::dns_provider>> {
                return mysql_detail::list_page<domain::dns_provider>(c, "dns_providers", columns, user_id, q,
                                                                     read);
            },
            use_awaitable);
    }

    task<std::optional<domain::dns_provider>> get(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::dns_provider>> {
                auto ps = prepare(
                    c, std::string("SELECT ") + columns + " FROM dns_providers WHERE user_id = ? AND id = ?");
                ps->setInt64(1, user_id);
                ps->setInt64(2, id);
                rs_ptr rs(ps->executeQuery());
                if (!rs->next())
                    return std::optional<domain::dns_provider>{};
                return std::optional<domain::dns_provider>(read(*rs));
            },
            use_awaitable);
    }

    task<bool> replace(domain::dns_provider p) override {
        return db::async_offload(
            pool_,
            [p](sql::Connection& c) -> result<bool> {
                auto ps = prepare(
                    c,
                    "UPDATE dns_providers SET name = ?, settings = ?, enc_credentials = ?, updated_at = ? "
                    "WHERE user_id = ? AND id = ?");
                ps->setString(1, p.name);
                ps->setString(2, boost::json::serialize(p.settings));
                bind_credentials(*ps, 3, p.enc_credentials);
                ps->setInt64(4, p.updated_at);
                ps->setInt64(5, p.user_id);
                ps->setInt64(6, p.id);
                ps->executeUpdate();
                return owned_row_exists(c, "dns_providers", p.user_id, p.id);
            },
            use_awaitable);
    }

    task<bool> remove(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                return delete_owned_row(c, "dns_providers", user_id, id);
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

}  // namespace

std::unique_ptr<dns_provider_repository> make_mysql_dns_provider_repository(db::pool& p) {
    return std::make_unique<mysql_dns_providers>(p);
}

}  // namespace certctrl::repo
