// Units of work against the real MariaDB: one transaction per unit (committed on a value, rolled back on an
// error or an exception), deadlock victims run again, statements prepared once per connection and prepared
// afresh on a new connection.
#include "certctrl/db/statements.hpp"
#include "service_stack.hpp"

#include <cppconn/connection.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace certctrl::test {
namespace {

namespace asio = boost::asio;

class Work : public ServiceStack {
  protected:
    void SetUp() override {
        ServiceStack::SetUp();
        if (HasFatalFailure() || IsSkipped()) {
            return;
        }
        uid_ = user("work@example.com");
        acct_ = account(uid_);
    }

    domain::certificate cert(std::string const& public_id) const {
        domain::certificate c;
        c.user_id = uid_;
        c.public_id = public_id;
        c.domain_name = "work.example.com";
        c.sans = {c.domain_name};
        c.acct_id = acct_;
        return c;
    }
    long long certificates() const { return schema_->query_int("SELECT COUNT(*) FROM certificates"); }

    std::int64_t uid_ = 0;
    std::int64_t acct_ = 0;
};

TEST_F(Work, AUnitThatReturnsAValueCommitsAllItsStatements) {
    auto r = run_awaitable(repos_.db->transact([&](repo::work& w) -> result<std::int64_t> {
        repos_.certificates->insert(w, cert("00000000-0000-4000-8000-000000000001"));
        return repos_.certificates->insert(w, cert("00000000-0000-4000-8000-000000000002")).id;
    }));
    ASSERT_TRUE(r) << r.error().what;
    EXPECT_EQ(certificates(), 2);
}

TEST_F(Work, AnErrorResultRollsBackEveryStatementOfTheUnit) {
    auto r = run_awaitable(repos_.db->transact([&](repo::work& w) -> result<std::int64_t> {
        repos_.certificates->insert(w, cert("00000000-0000-4000-8000-000000000001"));
        return make_error(errc::bad_request, "a rule said no after the insert");
    }));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::bad_request);
    EXPECT_EQ(certificates(), 0);
}

TEST_F(Work, AnSqlErrorMidUnitRollsBackTheEarlierStatementsAndMapsToItsCode) {
    auto r = run_awaitable(repos_.db->transact([&](repo::work& w) -> result<std::int64_t> {
        repos_.certificates->insert(w, cert("00000000-0000-4000-8000-000000000001"));
        repos_.certificates->insert(w, cert("00000000-0000-4000-8000-000000000002"));
        repos_.certificates->insert(w, cert("00000000-0000-4000-8000-000000000002"));  // duplicate public_id
        return 1;
    }));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::conflict);
    EXPECT_EQ(certificates(), 0);

    // The connection is clean afterwards: the next unit commits on its own.
    auto next = run_awaitable(repos_.db->transact([&](repo::work& w) -> result<std::int64_t> {
        return repos_.certificates->insert(w, cert("00000000-0000-4000-8000-000000000003")).id;
    }));
    ASSERT_TRUE(next) << next.error().what;
    EXPECT_EQ(certificates(), 1);
}

TEST_F(Work, ADeadlockVictimIsRunAgainAndBothUnitsCommit) {
    auto const a = in_read([&](repo::work& w) -> result<std::int64_t> {
        return repos_.certificates->insert(w, cert("00000000-0000-4000-8000-00000000000a")).id;
    });
    auto const b = in_read([&](repo::work& w) -> result<std::int64_t> {
        return repos_.certificates->insert(w, cert("00000000-0000-4000-8000-00000000000b")).id;
    });

    // Two units lock the same two rows in opposite orders, each taking its first lock before either takes
    // its second (the pool has two threads): InnoDB must pick a victim.
    std::mutex m;
    std::condition_variable cv;
    int first_locks = 0;
    std::atomic<int> runs{0};
    auto both_hold_their_first_lock = [&] {
        std::unique_lock lk(m);
        ++first_locks;
        cv.notify_all();
        return cv.wait_for(lk, std::chrono::seconds(10), [&] { return first_locks >= 2; });
    };
    auto unit = [&](std::int64_t first, std::int64_t second) {
        return [&, first, second](repo::work& w) -> result<int> {
            bool const first_run = runs.fetch_add(1) < 2;
            if (!repos_.certificates->get(w, uid_, first, repo::row_lock::update)) {
                return make_error(errc::not_found, "first row");
            }
            if (first_run && !both_hold_their_first_lock()) {
                return make_error(errc::internal, "the other unit never took its first lock");
            }
            repos_.certificates->set_renew_after(w, second, 42);  // waits for the other unit's lock
            repos_.certificates->set_renew_after(w, first, 42);
            return 1;
        };
    };

    asio::io_context ioc;
    std::optional<result<int>> ra;
    std::optional<result<int>> rb;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            auto op = repos_.db->transact(unit(a, b));
            ra.emplace(co_await std::move(op));
        },
        asio::detached);
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            auto op = repos_.db->transact(unit(b, a));
            rb.emplace(co_await std::move(op));
        },
        asio::detached);
    ioc.run();

    ASSERT_TRUE(ra && rb);
    EXPECT_TRUE(*ra) << ra->error().what << " " << ra->error().detail;
    EXPECT_TRUE(*rb) << rb->error().what << " " << rb->error().detail;
    EXPECT_EQ(runs.load(), 3);  // each once, and the victim once more
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates WHERE renew_after = 42"), 2);
}

// Over a pool of one connection, so the server's session counters are the counters of that connection.
class Statements : public Work {
  protected:
    void SetUp() override {
        Work::SetUp();
        if (HasFatalFailure() || IsSkipped()) {
            return;
        }
        auto cfg = schema_->db();
        cfg.pool_size = 1;
        one_ = std::make_unique<db::pool>(cfg);
        one_repos_ = repo::make_mysql_repositories(*one_);
    }
    void TearDown() override {
        one_repos_ = {};
        one_.reset();
    }

    result<std::int64_t> list_once() {
        return run_awaitable(one_repos_.db->read([&](repo::work& w) -> result<std::int64_t> {
            repo::page_query q;
            q.limit = 20;
            return static_cast<std::int64_t>(
                one_repos_.certificates->list(w, uid_, q, {}, false).items.size());
        }));
    }

    struct session {
        long long connection_id = 0;
        long long prepares = 0;  // Com_stmt_prepare of this session
        long long executes = 0;  // Com_stmt_execute of this session
    };
    session session_counters() {
        auto r = run_awaitable(db::async_offload(
            *one_,
            [](sql::Connection& c) -> result<session> {
                std::unique_ptr<sql::Statement> st(c.createStatement());
                session s;
                std::unique_ptr<sql::ResultSet> rs(
                    st->executeQuery("SELECT CONNECTION_ID(), "
                                     "(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
                                     "  WHERE VARIABLE_NAME = 'COM_STMT_PREPARE'), "
                                     "(SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
                                     "  WHERE VARIABLE_NAME = 'COM_STMT_EXECUTE')"));
                rs->next();
                s.connection_id = rs->getInt64(1);
                s.prepares = rs->getInt64(2);
                s.executes = rs->getInt64(3);
                return s;
            },
            asio::use_awaitable));
        EXPECT_TRUE(r);
        return r ? *r : session{};
    }

    std::unique_ptr<db::pool> one_;
    repo::repositories one_repos_;
};

TEST_F(Statements, AStatementIsPreparedOncePerConnectionAndThenOnlyExecuted) {
    for (int i = 0; i < 3; ++i) {
        in_read([&](repo::work& w) -> result<int> {
            repos_.certificates->insert(w, cert("00000000-0000-4000-8000-00000000001" + std::to_string(i)));
            return 1;
        });
    }
    ASSERT_EQ(*list_once(), 3);
    auto const before = session_counters();
    ASSERT_GT(before.prepares, 0);
    for (int i = 0; i < 50; ++i) {
        auto n = list_once();
        ASSERT_TRUE(n) << n.error().what;
        ASSERT_EQ(*n, 3);
    }
    auto const after = session_counters();
    EXPECT_EQ(after.connection_id, before.connection_id);
    EXPECT_EQ(after.prepares, before.prepares);       // no prepare for 50 more lists
    EXPECT_GE(after.executes - before.executes, 50);  // one execute each at least
}

TEST_F(Statements, ANewConnectionPreparesItsStatementsAfresh) {
    ASSERT_TRUE(list_once());
    auto const old_session = session_counters();
    schema_->exec("KILL " + std::to_string(old_session.connection_id));

    // The killed connection may fail one unit with 5001; after that, statements from the old connection's
    // cache must not be used on the new one.
    auto r = list_once();
    if (!r) {
        EXPECT_EQ(r.error().code, errc::database);
    }
    for (int i = 0; i < 5; ++i) {
        auto n = list_once();
        ASSERT_TRUE(n) << n.error().what << " " << n.error().detail;
    }
    auto const fresh = session_counters();
    EXPECT_NE(fresh.connection_id, old_session.connection_id);
    EXPECT_GT(fresh.prepares, 0);  // prepared on the new connection
}

TEST_F(Statements, AUnitWhoseConnectionDiesBeforeCommitRunsOnceMoreOnANewConnection) {
    ASSERT_TRUE(list_once());
    auto const old_session = session_counters();
    std::atomic<int> runs{0};
    auto r = run_awaitable(one_repos_.db->transact([&](repo::work& w) -> result<std::int64_t> {
        int const n = ++runs;
        auto const made = one_repos_.certificates->insert(w, cert("00000000-0000-4000-8000-0000000000c1"));
        if (n == 1) {
            // This unit's connection dies mid-transaction (a node of a cluster going away): its insert is
            // rolled back by the server, and the next statement fails.
            schema_->exec("KILL " + std::to_string(old_session.connection_id));
            one_repos_.certificates->insert(w, cert("00000000-0000-4000-8000-0000000000c2"));
        }
        return made.id;
    }));
    ASSERT_TRUE(r) << r.error().what << " " << r.error().detail;
    EXPECT_EQ(runs.load(), 2);
    EXPECT_EQ(
        schema_->query_int(
            "SELECT COUNT(*) FROM certificates WHERE public_id = '00000000-0000-4000-8000-0000000000c1'"),
        1)
        << "written once";
    EXPECT_EQ(
        schema_->query_int(
            "SELECT COUNT(*) FROM certificates WHERE public_id = '00000000-0000-4000-8000-0000000000c2'"),
        0);
    EXPECT_NE(session_counters().connection_id, old_session.connection_id);

    // Not twice: a unit that loses its new connection too fails with 503 (5001).
    runs = 0;
    auto again = run_awaitable(one_repos_.db->transact([&](repo::work& w) -> result<std::int64_t> {
        ++runs;
        auto const made = one_repos_.certificates->insert(w, cert("00000000-0000-4000-8000-0000000000c3"));
        schema_->exec("KILL " +
                      std::to_string(schema_->query_int(
                          "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                          "AND DB = DATABASE() AND COMMAND <> 'Daemon' ORDER BY ID DESC LIMIT 1")));
        one_repos_.certificates->insert(w, cert("00000000-0000-4000-8000-0000000000c4"));
        return made.id;
    }));
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().code, errc::database);
    EXPECT_EQ(runs.load(), 2);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates WHERE public_id LIKE '%0000000000c3'"),
              0);
}

}  // namespace
}  // namespace certctrl::test
