// Integration: CAs, certificates, devices and assignments against the real MariaDB.
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/x509.hpp"
#include "service_stack.hpp"

#include <cppconn/connection.h>
#include <gtest/gtest.h>

#include <ctime>
#include <thread>

namespace certctrl::test {
namespace {

using ResourcesRepo = ServiceStack;

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
    auto page = run_awaitable(certs_->list(uid, repo::page_query{}, acct, false));
    ASSERT_TRUE(page);
    ASSERT_EQ(page->items.size(), 1u);
    EXPECT_EQ(page->items[0].id, keep->id);
    EXPECT_FALSE(page->total) << "not counted unless asked";
    repo::page_query counted;
    counted.with_total = true;
    EXPECT_EQ(run_awaitable(certs_->list(uid, counted, acct, false))->total, 1);
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
