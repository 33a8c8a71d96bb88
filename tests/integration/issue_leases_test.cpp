// Integration: a worker that lost its lease cannot change the row any more (every status change checks
// lease_owner), against the real MariaDB.
#include "service_stack.hpp"

#include <cppconn/connection.h>
#include <gtest/gtest.h>

namespace certctrl::test {
namespace {

constexpr std::int64_t now = 1'700'000'000;

class IssueLeases : public ServiceStack {
  protected:
    // A new certificate of `uid` for `name` and a PENDING row of `kind` for it: the row's id.
    std::int64_t queued_row(std::int64_t uid, std::int64_t acct, std::string const& name, char const* kind) {
        auto cert = run_awaitable(certs_->create(uid, cert_input(acct, name)));
        EXPECT_TRUE(cert);
        return in_read([&](repo::work& w) -> result<std::int64_t> {
            domain::issue_row row;
            row.cert_id = cert->id;
            row.user_id = uid;
            row.attempt = 1;
            row.kind = kind;
            row.created_at = now;
            return *repos_.issuance->insert(w, row, now);
        });
    }
};

TEST_F(IssueLeases, AWorkerThatLostItsLeaseChangesNothing) {
    auto uid = user("lease@x.y");
    auto const id = queued_row(uid, account(uid), "lease.test", "issue");
    in_read([&](repo::work& w) -> result<bool> {
        EXPECT_TRUE(repos_.issuance->start(w, id, "worker-a", now + 60, now));
        // The lease expired; worker b took the row over.
        repos_.issuance->take(w, id, "worker-b", now + 600, now + 100);
        return true;
    });
    auto const stale = in_read([&](repo::work& w) -> result<std::vector<bool>> {
        return std::vector<bool>{
            repos_.issuance->save_progress(w, id, "worker-a", R"({"order_url":"https://evil/order"})",
                                           "https://evil/order"),
            repos_.issuance->retry_later(w, id, "worker-a", now + 1000, "a says retry"),
            repos_.issuance->close(w, id, "FAILED", "a says failed", now, "worker-a"),
            repos_.issuance->held_by(w, id, "worker-a")};
    });
    EXPECT_EQ(stale, (std::vector<bool>{false, false, false, false}));
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE id = " + std::to_string(id) +
                                 " AND status = 'PROCESSING' AND lease_owner = 'worker-b' AND "
                                 "(acme_order_id IS NULL OR acme_order_id = '') AND error_message = ''"),
              1);
    // The holder can.
    auto const held = in_read([&](repo::work& w) -> result<std::vector<bool>> {
        return std::vector<bool>{repos_.issuance->held_by(w, id, "worker-b"),
                                 repos_.issuance->save_progress(w, id, "worker-b", "{}", ""),
                                 repos_.issuance->save_progress(w, id, "worker-b", "{}", ""),
                                 repos_.issuance->close(w, id, "FAILED", "b says failed", now, "worker-b")};
    });
    EXPECT_EQ(held, (std::vector<bool>{true, true, true, true}));
}

// One tenant with many queued rows cannot hold every worker: at its cap of running rows, the next claim goes
// to another user's row, and to none of its own until one ends.
TEST_F(IssueLeases, AUserAtItsCapOfRunningRowsWaitsForTheOthers) {
    auto busy = user("busy@x.y");
    auto quiet = user("quiet@x.y");
    auto busy_acct = account(busy);
    auto queue = [&](std::int64_t uid, std::int64_t acct, std::string const& name) {
        return queued_row(uid, acct, name, "renew");
    };
    std::vector<std::int64_t> busy_rows;
    for (int i = 0; i < 4; ++i) {
        busy_rows.push_back(queue(busy, busy_acct, "b" + std::to_string(i) + ".busy.test"));
    }
    auto const quiet_row = queue(quiet, account(quiet), "q.quiet.test");
    auto claim = [&](unsigned cap) {
        return in_read([&](repo::work& w) -> result<std::int64_t> {
            auto id = repos_.issuance->claimable(w, now, cap);
            if (!id) {
                return std::int64_t{0};
            }
            repos_.issuance->take(w, *id, "worker", now + 60, now);
            return *id;
        });
    };
    EXPECT_EQ(claim(2), busy_rows[0]);
    EXPECT_EQ(claim(2), busy_rows[1]);
    EXPECT_EQ(claim(2), quiet_row) << "busy is at its cap of 2";
    EXPECT_EQ(claim(2), 0);
    in_read([&](repo::work& w) -> result<bool> {
        return repos_.issuance->close(w, busy_rows[0], "SUCCESS", "", now, "worker");
    });
    EXPECT_EQ(claim(2), busy_rows[2]);
    EXPECT_EQ(claim(0), busy_rows[3]) << "no cap";
}

// Rows users wait for are claimed before older renewals, and a CA's max_orders_in_flight holds over every
// row of that CA, renewals stopping a quarter short of it so users' rows always find room.
TEST_F(IssueLeases, UsersRowsGoFirstAndACasCapKeepsAQuarterForThem) {
    auto uid = user("storm@x.y");
    auto acct = account(uid);
    schema_->exec("UPDATE acme_accounts SET directory_url = 'https://ca.test/dir' WHERE id = " +
                  std::to_string(acct));
    std::vector<std::int64_t> renewals;
    for (int i = 0; i < 5; ++i) {
        renewals.push_back(queued_row(uid, acct, "r" + std::to_string(i) + ".storm.test", "renew"));
    }
    auto const asked = queued_row(uid, acct, "o1.storm.test", "issue");
    repo::claim_rules const rules{0, {{"https://ca.test/dir", 4}}};
    auto claim = [&] {
        return in_read([&](repo::work& w) -> result<std::int64_t> {
            auto id = repos_.issuance->claimable(w, now, rules);
            if (!id) {
                return std::int64_t{0};
            }
            repos_.issuance->take(w, *id, "worker", now + 60, now);
            return *id;
        });
    };
    EXPECT_EQ(claim(), asked) << "the row a user waits for, though newer than every renewal";
    EXPECT_EQ(claim(), renewals[0]);
    EXPECT_EQ(claim(), renewals[1]);
    EXPECT_EQ(claim(), 0) << "3 running: renewals stop at three quarters of 4";
    auto const second = queued_row(uid, acct, "o2.storm.test", "issue");
    EXPECT_EQ(claim(), second) << "the last quarter is the users'";
    auto const third = queued_row(uid, acct, "o3.storm.test", "issue");
    EXPECT_EQ(claim(), 0) << "4 running: the CA's cap holds for every row";
    EXPECT_EQ(in_read([&](repo::work& w) -> result<std::optional<std::int64_t>> {
                  return repos_.issuance->claimable(w, now, repo::claim_rules{});
              }),
              std::optional<std::int64_t>(third))
        << "without the CA's cap it would run";
}

}  // namespace
}  // namespace certctrl::test
