#include "certctrl/db/migrations.hpp"
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"
#include "certctrl/service/rate_limiter.hpp"
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

TEST_F(IdentityRepos, RateLimitCountsAddUpPerFixedWindow) {
    auto rates = repo::make_mysql_rate_limit_repository(*pool_);
    auto add = [&](std::vector<repo::rate_count> d, std::vector<std::string> also = {}) {
        auto r = run_awaitable(rates->add(std::move(d), std::move(also)));
        EXPECT_TRUE(r) << (r ? "" : r.error().what);
        return r ? *r : std::vector<repo::rate_count>{};
    };
    auto first = add({{"auth:ip:192.0.2.1", 1200, 3}, {"auth:ip:192.0.2.2", 1200, 1}});
    ASSERT_EQ(first.size(), 2u);
    EXPECT_EQ(first[0].count, 3);
    EXPECT_EQ(first[1].count, 1);  // buckets are independent
    auto more = add({{"auth:ip:192.0.2.1", 1200, 2}}, {"auth:ip:192.0.2.2", "auth:ip:never"});
    ASSERT_EQ(more.size(), 2u) << "a bucket nobody counted is not read back";
    EXPECT_EQ(more[0].count, 5) << "another instance's batch adds to the window";
    EXPECT_EQ(more[1].bucket, "auth:ip:192.0.2.2");
    EXPECT_EQ(more[1].count, 1);
    auto next = add({{"auth:ip:192.0.2.1", 1260, 1}});
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].count, 1);  // a new window starts over
    EXPECT_EQ(next[0].window_start, 1260);
    auto purged = run_awaitable(rates->purge(1250));
    ASSERT_TRUE(purged);
    EXPECT_EQ(*purged, 1);  // the 192.0.2.2 counter of window 1200; 192.0.2.1 moved on to 1260
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM rate_limits"), 1);
}

TEST_F(IdentityRepos, TwoInstancesShareABudgetAfterASync) {
    auto rates = repo::make_mysql_rate_limit_repository(*pool_);
    config::rate_limit_config cfg;
    cfg.api_per_minute = 10;
    wait_for_room_in_window(10);  // the budget is a fixed minute: count inside one
    service::rate_limiter a(*rates, cfg);
    service::rate_limiter b(*rates, cfg);
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(a.check(service::rate_limiter::limit::api, "user:1")) << i;
    }
    ASSERT_TRUE(run_awaitable(a.sync()));
    // b has not counted this bucket yet: it learns a's 6 at its first sync, then admits the rest of the
    // budget.
    ASSERT_TRUE(b.check(service::rate_limiter::limit::api, "user:1"));
    ASSERT_TRUE(run_awaitable(b.sync()));
    int admitted = 0;
    for (int i = 0; i < 10; ++i) {
        admitted += b.check(service::rate_limiter::limit::api, "user:1") ? 1 : 0;
    }
    EXPECT_EQ(admitted, 3) << "10 in all: 6 through a, 1 + 3 through b";
    auto refused = b.check(service::rate_limiter::limit::api, "user:1");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, errc::rate_limited);
    EXPECT_GE(refused.error().params.at("retry_after").as_int64(), 1);
    ASSERT_TRUE(run_awaitable(b.sync()));
    ASSERT_TRUE(run_awaitable(a.sync()));
    EXPECT_FALSE(a.check(service::rate_limiter::limit::api, "user:1")) << "a learns b's counts at its sync";
    EXPECT_EQ(schema_->query_int("SELECT count FROM rate_limits WHERE bucket = 'api:user:1'"), 10);
    // Other buckets and unlimited limits are untouched.
    EXPECT_TRUE(a.check(service::rate_limiter::limit::api, "user:2"));
    EXPECT_TRUE(a.check(service::rate_limiter::limit::issuance, "user:1"));
}

TEST_F(IdentityRepos, EveryRevocationMovesTheEpochInItsTransaction) {
    auto epoch = repo::make_mysql_auth_epoch_repository(*pool_);
    auto users = repo::make_mysql_user_repository(*pool_);
    auto sessions = repo::make_mysql_session_repository(*pool_);
    auto keys = repo::make_mysql_api_key_repository(*pool_);
    auto now = [&] { return *run_awaitable(epoch->current()); };
    domain::user u;
    u.email = "e@example.com";
    u.password_hash = "$argon2id$x";
    u.roles = {"user"};
    u.status = "ACTIVE";
    u.created_at = 1;
    auto created = run_awaitable(users->create(u));
    ASSERT_TRUE(created);
    std::int64_t const e0 = now();
    ASSERT_TRUE(run_awaitable(sessions->create(created->id, std::string(32, 'a'), 1000, 2000, "", "", "")));
    EXPECT_EQ(now(), e0) << "a new session revokes nothing";
    ASSERT_TRUE(run_awaitable(
        sessions->create(created->id, std::string(32, 'b'), 1000, 2000, "", "", std::string(32, 'a'))));
    EXPECT_EQ(now(), e0 + 1) << "login rotation ends the previous session";
    EXPECT_TRUE(*run_awaitable(sessions->remove(std::string(32, 'b'))));
    EXPECT_EQ(now(), e0 + 2) << "logout";
    EXPECT_FALSE(*run_awaitable(sessions->remove(std::string(32, 'b'))));
    EXPECT_EQ(now(), e0 + 2) << "nothing removed, nothing revoked";
    domain::api_key k;
    k.user_id = created->id;
    k.key_id = std::string(32, 'f');
    k.secret_hash = std::string(32, 's');
    k.name = "k";
    k.created_at = 1;
    k.expires_at = 99999999999;
    auto key = run_awaitable(keys->create(k));
    ASSERT_TRUE(key);
    auto removed = run_awaitable(keys->remove(created->id + 1, key->id));
    ASSERT_TRUE(removed);
    EXPECT_FALSE(*removed) << "not another user's key";
    removed = run_awaitable(keys->remove(created->id, key->id));
    ASSERT_TRUE(removed && *removed);
    EXPECT_EQ(**removed, k.key_id);
    EXPECT_EQ(now(), e0 + 3) << "a deleted key";
    ASSERT_TRUE(*run_awaitable(users->set_status(created->id, "DISABLED")));
    EXPECT_EQ(now(), e0 + 4) << "a user's status";
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
