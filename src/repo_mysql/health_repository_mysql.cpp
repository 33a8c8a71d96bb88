#include "certctrl/db/migrations.hpp"
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"

#include <boost/asio/use_awaitable.hpp>

namespace certctrl::repo {

namespace {

class mysql_health_repository final : public health_repository {
  public:
    explicit mysql_health_repository(db::pool& p) : pool_(p) {}

    boost::asio::awaitable<result<schema_state>> schema() override {
        return db::async_offload(
            pool_,
            [](sql::Connection& conn) -> result<schema_state> {
                auto st = db::check_schema(conn);
                if (!st) {
                    return st.error();
                }
                return schema_state{st->applied, st->known, st->usable()};
            },
            boost::asio::use_awaitable);
    }

  private:
    db::pool& pool_;
};

}  // namespace

std::unique_ptr<health_repository> make_mysql_health_repository(db::pool& pool) {
    return std::make_unique<mysql_health_repository>(pool);
}

}  // namespace certctrl::repo
