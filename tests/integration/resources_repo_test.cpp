// Integration: CAs, certificates, devices and assignments against the real MariaDB.
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/x509.hpp"
#include "service_stack.hpp"

#include <cppconn/connection.h>
#include <gtest/gtest.h>

#include <ctime>
#include <map>
#include <set>
#include <thread>

namespace certctrl::test {
namespace {

using ResourcesRepo = ServiceStack;

using cert_state = repo::certificate_filter::state;
repo::certificate_filter filter(cert_state s, std::string q = "",
                                std::optional<std::int64_t> acct = std::nullopt) {
    repo::certificate_filter f;
    f.status = s;
    f.name_contains = std::move(q);
    f.acct_id = acct;
    return f;
}
repo::certificate_filter of_account(std::int64_t acct) {
    return filter(cert_state::any, "", acct);
}

TEST_F(ResourcesRepo, CaKeyOpensOnlyForItsOwnerAndMatchesTheCertificate) {
    auto uid = user("ca@x.y");
    domain::ca_input in;
    in.name = "root";
    in.key_algorithm = "ECDSA_P256";
    in.subject.common_name = "Root";
    in.subject.country = "SE";
    in.valid_days = 30;
    in.path_length = 1;
    in.key_usage = "keyCertSign,cRLSign";
    auto ca = run_awaitable(cas_->create(uid, in));
    ASSERT_TRUE(ca) << ca.error().what;
    auto loaded = run_awaitable(cas_->get(uid, ca->id));
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->cert_pem, ca->cert_pem);
    EXPECT_EQ(loaded->subject.country, "SE");
    EXPECT_EQ(loaded->valid_days, 30);
    auto key = keys_.open(loaded->enc_private_key, service::ca_service::seal_context(uid, ca->id));
    ASSERT_TRUE(key);
    EXPECT_EQ(crypto::algorithm_of_pem(*key), crypto::key_algorithm::ecdsa_p256);
    EXPECT_FALSE(keys_.open(loaded->enc_private_key, service::ca_service::seal_context(uid + 1, ca->id)));
    EXPECT_FALSE(keys_.open(loaded->enc_private_key, service::ca_service::seal_context(uid, ca->id + 1)))
        << "bound to its row: a blob copied to another CA of the same user does not open";
    auto info = crypto::inspect_certificate_pem(loaded->cert_pem);
    ASSERT_TRUE(info);
    EXPECT_TRUE(info->is_ca);
    EXPECT_EQ(info->path_length, 1);
    EXPECT_EQ(info->serial_hex, loaded->serial_number);
    EXPECT_EQ(info->not_after, loaded->not_after);
    EXPECT_FALSE(run_awaitable(cas_->get(user("other@x.y"), ca->id)));
}

TEST_F(ResourcesRepo, CertificateCreationChecksOwnershipInsideTheTransaction) {
    auto alice = user("alice@x.y");
    auto bob = user("bob@x.y");
    auto bobs = account(bob);
    auto refused = run_awaitable(certs_->create(alice, cert_input(bobs, "example.com")));
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, errc::not_found);
    schema_->exec(
        "INSERT INTO dns_providers (user_id, name, kind, settings, created_at, updated_at) VALUES (" +
        std::to_string(bob) + ", 'm', 'manual', '{}', 1, 1)");
    auto in = cert_input(account(alice), "example.com");
    in.dns_provider_id = schema_->query_int("SELECT MAX(id) FROM dns_providers");
    auto wrong_dns = run_awaitable(certs_->create(alice, in));
    ASSERT_FALSE(wrong_dns);
    EXPECT_EQ(wrong_dns.error().code, errc::not_found);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates"), 0);
    in.dns_provider_id.reset();
    in.sans = {"example.com", "www.example.com"};
    auto ok = run_awaitable(certs_->create(alice, in));
    ASSERT_TRUE(ok);
    EXPECT_EQ(schema_->query_int(
                  "SELECT COUNT(*) FROM certificates WHERE sans = '[\"example.com\",\"www.example.com\"]'"),
              1);
    auto back = run_awaitable(certs_->get(alice, ok->id));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->sans, in.sans);
    EXPECT_EQ(back->public_id.size(), 36u);
    // A legacy sans value that is not a JSON array comes back as one element.
    schema_->exec("UPDATE certificates SET sans = '\"legacy.example.com\"' WHERE id = " +
                  std::to_string(ok->id));
    EXPECT_EQ(run_awaitable(certs_->get(alice, ok->id))->sans,
              std::vector<std::string>{"legacy.example.com"});
}

TEST_F(ResourcesRepo, ConcurrentAssignmentsOfOnePairStoreOneRow) {
    auto uid = user("c@x.y");
    auto cert = run_awaitable(certs_->create(uid, cert_input(account(uid), "example.com")));
    ASSERT_TRUE(cert);
    domain::device_input din;
    din.name = "d";
    auto dev = run_awaitable(certs_->register_device(uid, din, {}));
    ASSERT_TRUE(dev);
    std::atomic<int> assigned{0};
    std::atomic<int> conflicts{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 6; ++i) {
        threads.emplace_back([&] {
            auto r = run_awaitable(certs_->assign(uid, cert->id, dev->id));
            if (r)
                ++assigned;
            else if (r.error().code == errc::conflict)
                ++conflicts;
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(assigned.load(), 1);
    EXPECT_EQ(conflicts.load(), 5);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_assignments"), 1);
}

TEST_F(ResourcesRepo, DeletingACertificateRemovesEverythingItOwns) {
    auto uid = user("d@x.y");
    auto acct = account(uid);
    auto keep = run_awaitable(certs_->create(uid, cert_input(acct, "keep.example.com")));
    auto gone = run_awaitable(certs_->create(uid, cert_input(acct, "gone.example.com")));
    ASSERT_TRUE(keep && gone);
    domain::device_input din;
    din.name = "d";
    auto dev = run_awaitable(certs_->register_device(uid, din, {}));
    ASSERT_TRUE(dev);
    for (auto id : {keep->id, gone->id}) {
        ASSERT_TRUE(run_awaitable(certs_->assign(uid, id, dev->id)));
        schema_->exec("INSERT INTO issue_history (cert_id, user_id, status, created_at) VALUES (" +
                      std::to_string(id) + ", " + std::to_string(uid) + ", 'SUCCESS', 1)");
        schema_->exec("INSERT INTO certificate_master_wrapped VALUES (" + std::to_string(id) +
                      ", 1, REPEAT('k', 48), REPEAT('n', 12), REPEAT('t', 16))");
    }
    EXPECT_FALSE(run_awaitable(certs_->remove(user("e@x.y"), gone->id)));  // not another user's to delete
    ASSERT_TRUE(run_awaitable(certs_->remove(uid, gone->id)));
    for (auto const* table : {"certificate_assignments", "issue_history", "certificate_master_wrapped"}) {
        EXPECT_EQ(schema_->query_int(std::string("SELECT COUNT(*) FROM ") + table), 1) << table;
        EXPECT_EQ(schema_->query_int(std::string("SELECT COUNT(*) FROM ") + table +
                                     " WHERE cert_id = " + std::to_string(keep->id)),
                  1)
            << table;
    }
    // The account-filtered keyset list sees only what is left.
    auto page = run_awaitable(certs_->list(uid, repo::page_query{}, of_account(acct), false));
    ASSERT_TRUE(page);
    ASSERT_EQ(page->items.size(), 1u);
    EXPECT_EQ(page->items[0].id, keep->id);
    EXPECT_FALSE(page->total) << "not counted unless asked";
    repo::page_query counted;
    counted.with_total = true;
    EXPECT_EQ(run_awaitable(certs_->list(uid, counted, of_account(acct), false))->total, 1);
}

TEST_F(ResourcesRepo, ListsFilterByStateAndNameInSql) {
    auto uid = user("filters@x.y");
    auto acct = account(uid);
    auto other_acct = account(uid);
    auto const now = static_cast<std::int64_t>(std::time(nullptr));
    std::map<std::string, std::int64_t> ids;
    for (auto const* name : {"pending.example.com", "active.example.com", "soon.example.com",
                             "old.example.com", "a_b.example.net", "axb.example.net"}) {
        auto c = run_awaitable(certs_->create(uid, cert_input(acct, name)));
        ASSERT_TRUE(c) << name;
        ids[name] = c->id;
    }
    auto other = run_awaitable(certs_->create(uid, cert_input(other_acct, "elsewhere.example.org")));
    ASSERT_TRUE(other);
    auto const issued = [this](std::int64_t id, std::int64_t not_after) {
        schema_->exec("UPDATE certificates SET cert_pem = 'PEM', not_after = " + std::to_string(not_after) +
                      " WHERE id = " + std::to_string(id));
    };
    issued(ids["active.example.com"], now + 80 * 86400);
    issued(ids["soon.example.com"], now + 5 * 86400);
    issued(ids["old.example.com"], now - 86400);
    issued(ids["a_b.example.net"], now + 80 * 86400);
    issued(ids["axb.example.net"], now + 80 * 86400);
    issued(other->id, now + 80 * 86400);
    using st = cert_state;
    auto names = [&](repo::certificate_filter f) {
        std::set<std::string> out;
        auto page = run_awaitable(certs_->list(uid, repo::page_query{}, std::move(f), false));
        EXPECT_TRUE(page);
        if (page) {
            for (auto const& c : page->items) {
                out.insert(c.domain_name);
            }
        }
        return out;
    };
    using names_t = std::set<std::string>;
    EXPECT_EQ(names(filter(st::pending)), names_t{"pending.example.com"});
    EXPECT_EQ(names(filter(st::active, "", acct)),
              (names_t{"active.example.com", "soon.example.com", "a_b.example.net", "axb.example.net"}));
    EXPECT_EQ(names(filter(st::expired)), names_t{"old.example.com"});
    EXPECT_EQ(names(filter(st::expiring)), names_t{"soon.example.com"});
    EXPECT_EQ(names(filter(st::any, "example.org")), names_t{"elsewhere.example.org"});
    // LIKE's wildcards in the text are literal: "_" matches only itself.
    EXPECT_EQ(names(filter(st::any, "a_b")), names_t{"a_b.example.net"});
    EXPECT_EQ(names(filter(st::any, "%")), names_t{});
    // Other names count too; the service checks the account is the user's.
    schema_->exec("UPDATE certificates SET sans = '[\"www.shop.test\"]' WHERE id = " +
                  std::to_string(ids["pending.example.com"]));
    EXPECT_EQ(names(filter(st::any, "shop.test")), names_t{"pending.example.com"});
    EXPECT_FALSE(
        run_awaitable(certs_->list(user("stranger@x.y"), repo::page_query{}, of_account(acct), false)));
    // A filtered count counts what the filter keeps.
    repo::page_query counted;
    counted.with_total = true;
    EXPECT_EQ(run_awaitable(certs_->list(uid, counted, filter(st::active), false))->total, 5);
}

TEST_F(ResourcesRepo, RenewalFollowsTheCasSuggestedTimeWhenThereIsOne) {
    auto uid = user("ari@x.y");
    auto acct = account(uid);
    auto a = run_awaitable(certs_->create(uid, cert_input(acct, "a.example.com")));
    auto b = run_awaitable(certs_->create(uid, cert_input(acct, "b.example.com")));
    ASSERT_TRUE(a && b);
    // Both are 10% into their lifetime: not due by the 2/3 rule.
    schema_->exec(
        "UPDATE certificates SET cert_pem = 'pem', not_before = UNIX_TIMESTAMP() - 100, "
        "not_after = UNIX_TIMESTAMP() + 900");
    auto const now = static_cast<std::int64_t>(std::time(nullptr));
    auto due = [&] {
        return in_read([&](repo::work& w) -> result<std::vector<std::pair<std::int64_t, std::int64_t>>> {
            return repos_.certificates->due_for_renewal(w, now, 10);
        });
    };
    auto renew_after = [&](std::int64_t id, std::int64_t when) {
        in_read([&](repo::work& w) -> result<bool> {
            repos_.certificates->set_renew_after(w, id, when);
            return true;
        });
    };
    EXPECT_TRUE(due().empty());
    // The CA suggested "now" for a: due. For b it suggests later, though the 2/3 point has passed: not due.
    renew_after(a->id, now - 5);
    schema_->exec(
        "UPDATE certificates SET not_before = UNIX_TIMESTAMP() - 900, not_after = UNIX_TIMESTAMP() + 100 "
        "WHERE id = " +
        std::to_string(b->id));
    renew_after(b->id, now + 50);
    auto d = due();
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(d.at(0).second, a->id);
    // Once a row is open for it, it is not queued twice.
    EXPECT_TRUE(in_read([&](repo::work& w) -> result<bool> {
        return repos_.issuance->insert_if_idle(w, uid, a->id, "renew", now);
    }));
    EXPECT_TRUE(due().empty());
    EXPECT_FALSE(in_read([&](repo::work& w) -> result<bool> {
        return repos_.issuance->insert_if_idle(w, uid, a->id, "renew", now);
    })) << "one open row per certificate";
}

}  // namespace
}  // namespace certctrl::test
