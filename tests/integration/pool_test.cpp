#include "certctrl/db/pool.hpp"
#include "certctrl/db/migrations.hpp"
#include "test_env.hpp"

#include <cppconn/connection.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <set>
#include <thread>

namespace certctrl::test {
namespace {

namespace asio = boost::asio;

result<long long> connection_id(sql::Connection& c) {
    std::unique_ptr<sql::Statement> st(c.createStatement());
    std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT CONNECTION_ID()"));
    rs->next();
    return static_cast<long long>(rs->getInt64(1));
}

// Runs `fn` on the pool from a coroutine on an io_context thread and returns its result.
template <class Fn>
auto offload(db::pool& p, Fn fn) {
    asio::io_context ioc;
    using R = std::invoke_result_t<Fn&, sql::Connection&>;
    std::optional<R> out;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            out.emplace(co_await db::async_offload(p, fn, asio::use_awaitable));
        },
        asio::detached);
    ioc.run();
    return std::move(*out);
}

class Pool : public ::testing::Test {
  protected:
    void SetUp() override {
        CERTCTRL_REQUIRE_DB();
        schema_ = std::make_unique<test_schema>();
        auto cfg = schema_->db();
        cfg.pool_size = 1;  // one connection, so the test knows which one it kills
        pool_ = std::make_unique<db::pool>(cfg);
        auto conn = pool_->connect();
        ASSERT_TRUE(db::migrate(*conn));
    }
    std::unique_ptr<test_schema> schema_;
    std::unique_ptr<db::pool> pool_;
};

TEST_F(Pool, OffloadReturnsValueOnCallersExecutor) {
    asio::io_context ioc;
    std::thread::id pool_thread;
    std::thread::id resumed_on;
    std::optional<result<long long>> out;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            out.emplace(co_await db::async_offload(
                *pool_,
                [&](sql::Connection& c) {
                    pool_thread = std::this_thread::get_id();
                    return connection_id(c);
                },
                asio::use_awaitable));
            resumed_on = std::this_thread::get_id();
        },
        asio::detached);
    ioc.run();
    ASSERT_TRUE(out && *out);
    EXPECT_GT(**out, 0);
    EXPECT_NE(pool_thread, std::this_thread::get_id());
    EXPECT_EQ(resumed_on, std::this_thread::get_id());
}

// How the server sees this connection: "localhost" over a Unix socket, "127.0.0.1:port" over TCP.
result<std::string> client_host(sql::Connection& c) {
    std::unique_ptr<sql::Statement> st(c.createStatement());
    std::unique_ptr<sql::ResultSet> rs(
        st->executeQuery("SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"));
    rs->next();
    return std::string(rs->getString(1));
}

TEST_F(Pool, ConnectsOverTheUnixSocketWhenOneIsConfigured) {
    auto over_tcp = offload(*pool_, client_host);
    ASSERT_TRUE(over_tcp);
    EXPECT_EQ(over_tcp->rfind("127.0.0.1:", 0), 0u) << *over_tcp;

    if (admin_db_socket().empty()) {
        if (in_ci()) {
            FAIL() << "CERTCTRL_TEST_DB_SOCKET not set (run scripts/test.sh)";
        }
        GTEST_SKIP() << "CERTCTRL_TEST_DB_SOCKET not set";
    }
    auto cfg = schema_->db();
    cfg.pool_size = 1;
    cfg.socket = admin_db_socket();
    cfg.host = "203.0.113.1";  // unused when a socket is set: a TCP attempt here would time out
    db::pool over_socket(cfg);
    auto host = offload(over_socket, client_host);
    ASSERT_TRUE(host) << host.error().what;
    EXPECT_EQ(*host, "localhost");
    auto users = offload(over_socket, [](sql::Connection& c) -> result<long long> {
        std::unique_ptr<sql::Statement> st(c.createStatement());
        std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT COUNT(*) FROM users"));
        rs->next();
        return static_cast<long long>(rs->getInt64(1));
    });
    ASSERT_TRUE(users) << users.error().what;  // the schema is the configured one
    EXPECT_EQ(*users, 0);
}

TEST_F(Pool, AClusterListSkipsANodeThatIsDownAndFailsOnlyWhenEveryNodeIs) {
    auto cfg = schema_->db();
    cfg.pool_size = 1;
    auto const dead = free_port();  // nothing listens: a node that is down
    cfg.hosts = {"127.0.0.1:" + std::to_string(dead), "127.0.0.1:" + std::to_string(cfg.port)};
    cfg.host = "203.0.113.1";  // unused when hosts is set
    db::pool cluster(cfg);
    auto first = offload(cluster, connection_id);
    ASSERT_TRUE(first) << first.error().what << " " << first.error().detail;
    // A new connection (after this one is killed) is made again without the dead node.
    schema_->exec("KILL " + std::to_string(*first));
    std::optional<long long> second;
    for (int i = 0; i < 3 && !second; ++i) {
        if (auto r = offload(cluster, connection_id)) {
            second = *r;
        }
    }
    ASSERT_TRUE(second);
    EXPECT_NE(*second, *first);
    // Every node down: the database error, at once.
    auto all_down = schema_->db();
    all_down.pool_size = 1;
    all_down.hosts = {"127.0.0.1:" + std::to_string(dead), "127.0.0.1:" + std::to_string(free_port())};
    db::pool down(all_down);
    auto r = offload(down, connection_id);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::database);
}

TEST_F(Pool, DuplicateKeyMapsToConflict) {
    auto insert = [](sql::Connection& c) -> result<int> {
        std::unique_ptr<sql::Statement> st(c.createStatement());
        st->execute(
            "INSERT INTO users (email, password_hash, created_at, updated_at) VALUES ('dup@x.y', 'h', 1, 1)");
        return 1;
    };
    ASSERT_TRUE(offload(*pool_, insert));
    auto second = offload(*pool_, insert);
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, errc::conflict);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM users"), 1);
}

TEST_F(Pool, SqlSyntaxErrorIsInternalAndDoesNotEscape) {
    auto bad = offload(*pool_, [](sql::Connection& c) -> result<int> {
        std::unique_ptr<sql::Statement> st(c.createStatement());
        st->execute("SELEKT nonsense");
        return 1;
    });
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::internal);
    // The same connection still works afterwards.
    EXPECT_TRUE(offload(*pool_, connection_id));
}

TEST_F(Pool, ReconnectsAfterTheServerKillsTheConnection) {
    auto first = offload(*pool_, connection_id);
    ASSERT_TRUE(first);
    schema_->exec("KILL " + std::to_string(*first));

    // Used at once: the dead connection may fail one request with 5001, never more.
    auto r = offload(*pool_, connection_id);
    if (!r) {
        EXPECT_EQ(r.error().code, errc::database);
        r = offload(*pool_, connection_id);
    }
    ASSERT_TRUE(r) << r.error().what;
    EXPECT_NE(*r, *first);

    // Used after an idle pause: the pool pings and replaces the dead connection without any failure.
    schema_->exec("KILL " + std::to_string(*r));
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    auto after_idle = offload(*pool_, connection_id);
    ASSERT_TRUE(after_idle) << after_idle.error().what;
    EXPECT_NE(*after_idle, *r);
}

TEST_F(Pool, FailedTransactionIsRolledBackBeforeTheNextJob) {
    auto failing = offload(*pool_, [](sql::Connection& c) -> result<int> {
        c.setAutoCommit(false);
        std::unique_ptr<sql::Statement> st(c.createStatement());
        st->execute(
            "INSERT INTO users (email, password_hash, created_at, updated_at) VALUES ('tx@x.y', 'h', 1, 1)");
        return make_error(errc::bad_request, "validation failed after the insert");  // no commit
    });
    ASSERT_FALSE(failing);
    // Same (only) connection: the insert must be gone and autocommit back on.
    auto seen = offload(*pool_, [](sql::Connection& c) -> result<long long> {
        if (!c.getAutoCommit()) {
            return make_error(errc::internal, "transaction left open");
        }
        std::unique_ptr<sql::Statement> st(c.createStatement());
        std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT COUNT(*) FROM users"));
        rs->next();
        return static_cast<long long>(rs->getInt64(1));
    });
    ASSERT_TRUE(seen) << seen.error().what;
    EXPECT_EQ(*seen, 0);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM users"), 0);
}

TEST_F(Pool, StopFailsQueuedJobsInsteadOfRunningThem) {
    asio::io_context ioc;
    std::vector<std::optional<result<int>>> results(4);
    std::atomic<int> ran{0};
    for (std::size_t i = 0; i < results.size(); ++i) {
        asio::co_spawn(
            ioc,
            [&, i]() -> asio::awaitable<void> {
                results[i].emplace(co_await db::async_offload(
                    *pool_,
                    [&, i](sql::Connection&) -> result<int> {
                        ++ran;
                        if (i == 0) {
                            std::this_thread::sleep_for(std::chrono::milliseconds(2000));
                        }
                        return static_cast<int>(i);
                    },
                    asio::use_awaitable));
            },
            asio::detached);
    }
    std::thread runner([&] { ioc.run(); });
    // Job 0 running on the only thread, the other three queued behind it (bounded wait: never hang).
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
    bool staged = false;
    while (!staged && std::chrono::steady_clock::now() < deadline) {
        auto st = pool_->current_stats();
        staged = st.in_use == 1 && st.waiting == 3;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pool_->stop();
    runner.join();
    ASSERT_TRUE(staged) << "the jobs never reached the running + 3 queued state";
    ASSERT_TRUE(results[0] && *results[0]);
    EXPECT_EQ(ran.load(), 1);
    for (std::size_t i = 1; i < results.size(); ++i) {
        ASSERT_TRUE(results[i]);
        ASSERT_FALSE(*results[i]);
        EXPECT_EQ(results[i]->error().code, errc::unavailable);
    }
    // Work submitted after stop() is refused the same way.
    auto late = offload(*pool_, connection_id);
    ASSERT_FALSE(late);
    EXPECT_EQ(late.error().code, errc::unavailable);
}

TEST_F(Pool, ColdPoolConnectsEveryThreadUnderConcurrentLoad) {
    auto cfg = schema_->db();
    cfg.pool_size = 4;
    db::pool cold(cfg);
    asio::io_context ioc;
    std::vector<std::optional<result<long long>>> results(16);
    for (auto& slot : results) {
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                slot.emplace(co_await db::async_offload(
                    cold,
                    [](sql::Connection& c) {
                        std::this_thread::sleep_for(std::chrono::milliseconds(50));
                        return connection_id(c);
                    },
                    asio::use_awaitable));
            },
            asio::detached);
    }
    ioc.run();
    std::set<long long> ids;
    for (auto const& r : results) {
        ASSERT_TRUE(r);
        ASSERT_TRUE(*r) << r->error().what;
        ids.insert(**r);
    }
    EXPECT_EQ(ids.size(), 4u);  // every thread made its own connection, none failed
}

TEST_F(Pool, UnreachableServerGivesDatabaseError) {
    auto cfg = schema_->db();
    cfg.port = free_port();  // nothing listens there
    db::pool dead(cfg);
    auto r = offload(dead, connection_id);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::database);
}

}  // namespace
}  // namespace certctrl::test
