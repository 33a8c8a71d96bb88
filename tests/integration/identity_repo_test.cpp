#include "certctrl/db/migrations.hpp"
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"
#include "run_awaitable.hpp"
#include "test_env.hpp"

#include <cppconn/connection.h>
#include <gtest/gtest.h>

namespace certctrl::test {
namespace {

// Runs one repository operation to completion.
class IdentityRepos : public ::testing::Test {
  protected:
    void SetUp() override {
        CERTCTRL_REQUIRE_DB();
        schema_ = std::make_unique<test_schema>();
        pool_ = std::make_unique<db::pool>(schema_->db());
        auto conn = pool_->connect();
        ASSERT_TRUE(db::migrate(*conn));
    }
    std::unique_ptr<test_schema> schema_;
    std::unique_ptr<db::pool> pool_;
};

TEST_F(IdentityRepos, RateLimitCountsPerFixedWindow) {
    auto rates = repo::make_mysql_rate_limit_repository(*pool_);
    for (int i = 1; i <= 3; ++i) {
        auto r = run_awaitable(rates->hit("auth:ip:192.0.2.1", 60, 1200 + i));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->count, i);
        EXPECT_EQ(r->window_start, 1200);
    }
    auto other = run_awaitable(rates->hit("auth:ip:192.0.2.2", 60, 1205));
    ASSERT_TRUE(other);
    EXPECT_EQ(other->count, 1);  // buckets are independent
    auto next = run_awaitable(rates->hit("auth:ip:192.0.2.1", 60, 1260));
    ASSERT_TRUE(next);
    EXPECT_EQ(next->count, 1);  // a new window starts over
    EXPECT_EQ(next->window_start, 1260);
    auto purged = run_awaitable(rates->purge(1250));
    ASSERT_TRUE(purged);
    EXPECT_EQ(*purged, 1);  // the 192.0.2.2 counter of window 1200; 192.0.2.1 moved on to 1260
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM rate_limits"), 1);
}

TEST_F(IdentityRepos, SessionsExpireAndIdleOut) {
    auto users = repo::make_mysql_user_repository(*pool_);
    auto sessions = repo::make_mysql_session_repository(*pool_);
    domain::user u;
    u.email = "s@example.com";
    u.password_hash = "$argon2id$x";
    u.roles = {"user"};
    u.status = "ACTIVE";
    u.created_at = 1;
    auto created = run_awaitable(users->create(u));
    ASSERT_TRUE(created);
    std::string const h1(32, 'a');
    std::string const h2(32, 'b');
    ASSERT_TRUE(run_awaitable(sessions->create(created->id, h1, 1000, 2000, "192.0.2.1", "ua", "")));
    auto live = run_awaitable(sessions->find_live(h1, 1500, 900));
    ASSERT_TRUE(live && *live);
    EXPECT_EQ((*live)->user.email, "s@example.com");
    EXPECT_FALSE(*run_awaitable(sessions->find_live(h1, 1500, 1001)));  // idle too long: gone
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM sessions"), 0);
    ASSERT_TRUE(run_awaitable(sessions->create(created->id, h1, 1000, 2000, "", "", "")));
    ASSERT_TRUE(
        run_awaitable(sessions->create(created->id, h2, 1000, 2000, "", "", h1)));  // rotation replaces h1
    EXPECT_FALSE(*run_awaitable(sessions->find_live(h1, 1500, 900)));
    EXPECT_TRUE(*run_awaitable(sessions->find_live(h2, 1500, 900)));
    EXPECT_FALSE(*run_awaitable(sessions->find_live(h2, 2000, 900)));  // expired
    // Housekeeping removes what is expired or idle, and nothing else.
    std::string const h3(32, 'c');
    std::string const h4(32, 'd');
    ASSERT_TRUE(run_awaitable(sessions->create(created->id, h3, 1000, 5000, "", "", "")));  // live
    ASSERT_TRUE(run_awaitable(sessions->create(created->id, h4, 100, 5000, "", "", "")));   // idle since 100
    std::string const h5(32, 'e');
    ASSERT_TRUE(run_awaitable(sessions->create(created->id, h5, 1000, 2400, "", "", "")));  // expires at 2400
    auto purged = run_awaitable(sessions->purge(2500, 500));
    ASSERT_TRUE(purged);
    EXPECT_EQ(*purged, 2);  // h4 idle, h5 expired (h2 went when it was looked up after expiry)
    EXPECT_TRUE(*run_awaitable(sessions->find_live(h3, 2500, 500)));
    auto dup = run_awaitable(users->create(u));
    ASSERT_FALSE(dup);
    EXPECT_EQ(dup.error().code, errc::conflict);
}

}  // namespace
}  // namespace certctrl::test
