#include "certctrl/db/migrations.hpp"
#include "certctrl/db/pool.hpp"
#include "test_env.hpp"

#include <cppconn/connection.h>
#include <gtest/gtest.h>

namespace certctrl::test {
namespace {

class Migrations : public ::testing::Test {
  protected:
    void SetUp() override {
        CERTCTRL_REQUIRE_DB();
        schema_ = std::make_unique<test_schema>();
        pool_ = std::make_unique<db::pool>(schema_->db());
    }
    std::unique_ptr<test_schema> schema_;
    std::unique_ptr<db::pool> pool_;
};

TEST_F(Migrations, FreshSchemaGetsEveryMigrationAndTheFirstSchemaTables) {
    auto conn = pool_->connect();
    auto before = db::check_schema(*conn);
    ASSERT_TRUE(before);
    EXPECT_EQ(before->applied, 0);
    EXPECT_EQ(before->pending.size(), db::embedded_migrations().size());

    auto done = db::migrate(*conn);
    ASSERT_TRUE(done) << done.error().what;
    EXPECT_EQ(done->size(), db::embedded_migrations().size());
    EXPECT_EQ(schema_->query_int("SELECT MAX(version) FROM schema_migrations"), db::latest_known_version());

    for (std::string table :
         {"users", "sessions", "api_keys", "acme_accounts", "cas", "dns_providers", "certificates",
          "issue_history", "devices", "certificate_assignments", "audit_log"}) {
        EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
                                     "DATABASE() AND table_name = '" +
                                     table + "'"),
                  1)
            << table;
    }
    auto after = db::check_schema(*conn);
    ASSERT_TRUE(after);
    EXPECT_TRUE(after->current());
}

TEST_F(Migrations, UpToDateSchemaAppliesNothing) {
    auto conn = pool_->connect();
    ASSERT_TRUE(db::migrate(*conn));
    schema_->exec(
        "INSERT INTO users (email, password_hash, created_at, updated_at) VALUES ('a@b.c', 'x', 1, 1)");
    auto again = db::migrate(*conn);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->empty());
    // Data survives a second run.
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM users"), 1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM schema_migrations"),
              static_cast<long long>(db::embedded_migrations().size()));
}

TEST_F(Migrations, RefusesASchemaNewerThanTheBinary) {
    auto conn = pool_->connect();
    ASSERT_TRUE(db::migrate(*conn));
    schema_->exec(
        "INSERT INTO schema_migrations (version, file_name, sha256) VALUES (999, 'V999__future.sql', '" +
        std::string(64, '0') + "')");
    auto st = db::check_schema(*conn);
    ASSERT_TRUE(st);
    EXPECT_TRUE(st->newer_than_known());
    EXPECT_FALSE(st->current());
    auto r = db::migrate(*conn);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::conflict);
    EXPECT_NE(r.error().what.find("newer"), std::string::npos);
}

// A newer binary's migrations marked as keeping older binaries working leave this one usable (it serves and
// its migrate applies nothing); one without the mark does not.
TEST_F(Migrations, ANewerSchemaIsUsableOnlyWhileEveryNewerMigrationKeepsOlderBinariesWorking) {
    auto conn = pool_->connect();
    ASSERT_TRUE(db::migrate(*conn));
    schema_->exec(
        "INSERT INTO schema_migrations (version, file_name, sha256, breaks_older) VALUES (998, "
        "'V998__added.sql', '" +
        std::string(64, '0') + "', 0)");
    auto st = db::check_schema(*conn);
    ASSERT_TRUE(st);
    EXPECT_TRUE(st->newer_than_known());
    EXPECT_FALSE(st->newer_breaks);
    EXPECT_TRUE(st->usable());
    auto r = db::migrate(*conn);
    ASSERT_TRUE(r) << r.error().what;
    EXPECT_TRUE(r->empty());
    schema_->exec("UPDATE schema_migrations SET breaks_older = 1 WHERE version = 998");
    st = db::check_schema(*conn);
    ASSERT_TRUE(st);
    EXPECT_TRUE(st->newer_breaks);
    EXPECT_FALSE(st->usable());
    EXPECT_FALSE(db::migrate(*conn));
}

TEST_F(Migrations, DetectsAnEditedAppliedMigration) {
    auto conn = pool_->connect();
    ASSERT_TRUE(db::migrate(*conn));
    schema_->exec("UPDATE schema_migrations SET sha256 = REPEAT('f', 64) WHERE version = 1");
    auto st = db::check_schema(*conn);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, errc::conflict);
    EXPECT_NE(st.error().what.find("V001"), std::string::npos);
}

}  // namespace
}  // namespace certctrl::test

namespace certctrl::test {
namespace {

// The schema of the release before webhooks (V015), holding rows, is upgraded in place: V016 adds its tables
// and columns around the data (test-audit: an upgrade of a populated schema).
TEST_F(Migrations, AV015SchemaWithRowsUpgradesToWebhooksKeepingThem) {
    auto conn = pool_->connect();
    schema_->exec(
        "CREATE TABLE schema_migrations (version INT NOT NULL PRIMARY KEY, file_name VARCHAR(255) NOT NULL, "
        "sha256 CHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB");
    for (auto const& m : db::embedded_migrations()) {
        if (m.version() > 15) {
            continue;
        }
        for (auto const& statement : db::split_statements(m.sql)) {
            schema_->exec(statement);
        }
        schema_->exec("INSERT INTO schema_migrations (version, file_name, sha256) VALUES (" +
                      std::to_string(m.version()) + ", '" + m.file_name + "', '" + m.sha256 + "')");
    }
    schema_->exec(
        "INSERT INTO users (email, password_hash, created_at, updated_at) VALUES ('u@x.y', 'h', 1, 1)");
    schema_->exec(
        "INSERT INTO acme_accounts (user_id, name, provider, created_at, updated_at) VALUES (1, 'a', "
        "'letsencrypt', 1, 1)");
    schema_->exec(
        "INSERT INTO certificates (user_id, public_id, domain_name, sans, acct_id, not_after, created_at, "
        "updated_at) VALUES (1, UUID(), 'up.example.com', '[\"up.example.com\"]', 1, 4102444800, 1, 1)");
    auto status = db::check_schema(*conn);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->applied, 15);

    auto done = db::migrate(*conn);
    ASSERT_TRUE(done) << done.error().what;
    EXPECT_EQ(schema_->query_int("SELECT MAX(version) FROM schema_migrations"), db::latest_known_version());
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates WHERE domain_name = 'up.example.com' AND "
                                 "not_after = 4102444800 AND expiry_warned_days IS NULL"),
              1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM webhooks"), 0);
    // The old table got breaks_older: its rows count as breaking, the new ones carry their file's mark.
    EXPECT_EQ(
        schema_->query_int("SELECT COUNT(*) FROM schema_migrations WHERE version <= 15 AND breaks_older = 1"),
        15);
    for (auto const& m : db::embedded_migrations()) {
        if (m.version() > 15) {
            EXPECT_EQ(schema_->query_int("SELECT breaks_older FROM schema_migrations WHERE version = " +
                                         std::to_string(m.version())),
                      m.keeps_older_binaries() ? 0 : 1)
                << m.file_name;
        }
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = "
                                 "DATABASE() AND index_name = 'ix_certificates_expiry'"),
              2);
}

}  // namespace
}  // namespace certctrl::test
