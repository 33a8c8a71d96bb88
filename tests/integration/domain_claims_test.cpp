// Integration: domain ownership rules (first claim wins; wildcards own the names below them; SELF_CA claims
// nothing; shares) against the real MariaDB, through the certificate service that applies them.
#include "service_stack.hpp"

#include "certctrl/service/domains.hpp"

#include <cppconn/connection.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace certctrl::test {
namespace {

using DomainClaims = ServiceStack;

TEST_F(DomainClaims, ExactNamesAndWildcardsBelongToTheFirstClaimer) {
    auto alice = user("alice@x.y");
    auto bob = user("bob@x.y");
    auto aa = account(alice);
    auto ba = account(bob);
    auto create = [&](std::int64_t uid, std::int64_t acct, std::vector<std::string> names) {
        auto in = cert_input(acct, names.front());
        in.sans = names;
        return run_awaitable(certs_->create(uid, in));
    };
    ASSERT_TRUE(create(alice, aa, {"www.a.test"}));
    auto same = create(bob, ba, {"www.a.test"});
    ASSERT_FALSE(same);
    EXPECT_EQ(same.error().code, errc::conflict);
    EXPECT_EQ(same.error().params.at("name").as_string(), "www.a.test");
    EXPECT_EQ(same.error().params.at("field").as_string(), "domain_name");
    // A wildcard would cover alice's name: refused, naming it.
    auto above = create(bob, ba, {"*.a.test"});
    ASSERT_FALSE(above);
    EXPECT_EQ(above.error().params.at("claimed_name").as_string(), "www.a.test");
    // The apex and a deeper name are not alice's.
    EXPECT_TRUE(create(bob, ba, {"a.test"}));
    EXPECT_TRUE(create(bob, ba, {"x.y.a.test"}));
    auto over_bob = create(alice, aa, {"*.y.a.test"});
    ASSERT_FALSE(over_bob);
    EXPECT_EQ(over_bob.error().params.at("claimed_name").as_string(), "x.y.a.test");
    // Bob's wildcard owns every name below b.test, at any depth, but not b.test itself.
    EXPECT_TRUE(create(bob, ba, {"*.b.test"}));
    auto deep = create(alice, aa, {"c.deep.sub.b.test"});
    ASSERT_FALSE(deep);
    EXPECT_EQ(deep.error().params.at("claimed_name").as_string(), "*.b.test");
    EXPECT_TRUE(create(alice, aa, {"b.test"}));
    // A refused certificate stores nothing, not even the claims of its other names.
    auto mixed = create(alice, aa, {"free.test", "www.b.test"});
    ASSERT_FALSE(mixed);
    EXPECT_EQ(mixed.error().params.at("field").as_string(), "sans");
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM domain_claims WHERE name = 'free.test'"), 0);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates WHERE domain_name = 'free.test'"), 0);
    // The owner holds more certificates for the same name.
    EXPECT_TRUE(create(alice, aa, {"www.a.test"}));
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM domain_claims"), 5);
}

// What a worker checks before ordering (a renewal, or a name transferred since the request): a name another
// user now holds stops it; the owner's and a shared user's names pass; nothing is claimed by checking.
TEST_F(DomainClaims, TheWorkersCheckStopsANameAnotherUserHolds) {
    auto alice = user("alice@x.y");
    auto bob = user("bob@x.y");
    ASSERT_TRUE(run_awaitable(certs_->create(alice, cert_input(account(alice), "*.w.test"))));
    auto check = [&](std::int64_t uid, std::vector<std::string> names) {
        return run_awaitable(repos_.db->read([&](repo::work& w) -> result<bool> {
            auto r = service::check_names(*repos_.domains, w, uid, names);
            return r ? r : result<bool>(false);
        }));
    };
    EXPECT_TRUE(*check(alice, {"a.w.test", "*.w.test"}));
    EXPECT_FALSE(*check(bob, {"free.test", "deep.a.w.test"})) << "below alice's wildcard";
    EXPECT_TRUE(*check(bob, {"free.test"}));
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM domain_claims WHERE name = 'free.test'"), 0);
    schema_->exec("INSERT INTO domain_shares (name, user_id, created_at) VALUES ('*.w.test', " +
                  std::to_string(bob) + ", 1)");
    EXPECT_TRUE(*check(bob, {"deep.a.w.test"}));
}

TEST_F(DomainClaims, SelfCaCertificatesClaimNothing) {
    auto alice = user("alice@x.y");
    auto bob = user("bob@x.y");
    ASSERT_TRUE(run_awaitable(certs_->create(alice, cert_input(account(alice), "intranet.test"))));
    schema_->exec("INSERT INTO acme_accounts (user_id, name, provider, created_at, updated_at) VALUES (" +
                  std::to_string(bob) + ", 's', 'SELF_CA', 1, 1)");
    auto self_ca = schema_->query_int("SELECT MAX(id) FROM acme_accounts");
    EXPECT_TRUE(run_awaitable(certs_->create(bob, cert_input(self_ca, "intranet.test"))));
    EXPECT_TRUE(run_awaitable(certs_->create(bob, cert_input(self_ca, "*.mine.test"))));
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM domain_claims WHERE user_id = " + std::to_string(bob)),
              0);
    // ... so bob's private names do not keep alice from a public certificate for them.
    EXPECT_TRUE(run_awaitable(certs_->create(alice, cert_input(account(alice), "www.mine.test"))));
}

TEST_F(DomainClaims, ASharedNameMayBeUsedByTheUserItIsSharedWith) {
    auto alice = user("alice@x.y");
    auto bob = user("bob@x.y");
    ASSERT_TRUE(run_awaitable(certs_->create(alice, cert_input(account(alice), "*.team.test"))));
    auto ba = account(bob);
    EXPECT_FALSE(run_awaitable(certs_->create(bob, cert_input(ba, "*.team.test"))));
    schema_->exec("INSERT INTO domain_shares (name, user_id, created_at) VALUES ('*.team.test', " +
                  std::to_string(bob) + ", 1)");
    EXPECT_TRUE(run_awaitable(certs_->create(bob, cert_input(ba, "*.team.test"))));
    EXPECT_TRUE(run_awaitable(certs_->create(bob, cert_input(ba, "api.team.test"))));
    EXPECT_EQ(schema_->query_int("SELECT user_id FROM domain_claims WHERE name = '*.team.test'"), alice);
}

// Two users claiming related names (a wildcard and a name below it) at the same time: exactly one wins each
// round, never both (the conflict reads lock what they read).
TEST_F(DomainClaims, ConcurrentClaimsOfRelatedNamesNeverBothSucceed) {
    auto alice = user("alice@x.y");
    auto bob = user("bob@x.y");
    auto aa = account(alice);
    auto ba = account(bob);
    int both = 0;
    int none = 0;
    for (int round = 0; round < 15; ++round) {
        std::string const base = "r" + std::to_string(round) + ".race.test";
        std::atomic<int> ok{0};
        std::thread t1(
            [&] { ok += run_awaitable(certs_->create(alice, cert_input(aa, "*." + base))) ? 1 : 0; });
        std::thread t2(
            [&] { ok += run_awaitable(certs_->create(bob, cert_input(ba, "www." + base))) ? 1 : 0; });
        t1.join();
        t2.join();
        both += ok == 2 ? 1 : 0;
        none += ok == 0 ? 1 : 0;
    }
    EXPECT_EQ(both, 0);
    EXPECT_EQ(none, 0);
}

}  // namespace
}  // namespace certctrl::test
