#include "certctrl/db/migrations.hpp"

#include <gtest/gtest.h>

namespace certctrl::db {
namespace {

TEST(SplitStatements, SplitsAtTopLevelSemicolons) {
    auto s = split_statements("CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);  \n");
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0], "CREATE TABLE a (x INT)");
    EXPECT_EQ(s[1], "CREATE TABLE b (y INT)");
}

TEST(SplitStatements, IgnoresSemicolonsInCommentsAndStrings) {
    auto s = split_statements(
        "-- a comment; with a semicolon\n"
        "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s; fine', 'esc\\';aped'); # trailing; comment\n"
        "/* block; comment */ SELECT `weird;name` FROM t;\n"
        "SELECT 1--1;\n");
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0], "INSERT INTO t VALUES ('a;b', \"c;d\", 'it''s; fine', 'esc\\';aped')");
    EXPECT_EQ(s[1], "SELECT `weird;name` FROM t");
    EXPECT_EQ(s[2], "SELECT 1--1");
}

TEST(SplitStatements, EmptyAndCommentOnlyScriptsGiveNothing) {
    EXPECT_TRUE(split_statements("").empty());
    EXPECT_TRUE(split_statements("-- nothing\n/* here */\n;;\n").empty());
}

TEST(EmbeddedMigrations, AreNumberedWithoutGapsAndChecksummed) {
    auto const& all = embedded_migrations();
    ASSERT_FALSE(all.empty());
    for (std::size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(all[i].version(), static_cast<int>(i + 1)) << all[i].file_name;
        EXPECT_EQ(all[i].sha256.size(), 64u);
        EXPECT_FALSE(split_statements(all[i].sql).empty());
    }
    EXPECT_EQ(latest_known_version(), static_cast<int>(all.size()));
}

TEST(MigrationVersion, ParsesTheFileName) {
    EXPECT_EQ((migration{"V001__init.sql", "", ""}.version()), 1);
    EXPECT_EQ((migration{"V12__x.sql", "", ""}.version()), 12);
    EXPECT_EQ((migration{"001__init.sql", "", ""}.version()), 0);
    EXPECT_EQ((migration{"V1_init.sql", "", ""}.version()), 0);
}

}  // namespace
}  // namespace certctrl::db

namespace certctrl::test {
namespace {

// The mark of a migration that keeps older binaries working is its own whole line, nothing else.
TEST(MigrationMark, OnlyTheWholeLineMarksAMigrationAsKeepingOlderBinariesWorking) {
    auto with = [](std::string sql) { return db::migration{"V100__x.sql", "", std::move(sql)}; };
    EXPECT_TRUE(with("-- certctrl: older binaries keep working\nALTER TABLE t ADD COLUMN c INT;")
                    .keeps_older_binaries());
    EXPECT_TRUE(with("-- why\r\n-- certctrl: older binaries keep working\r\nCREATE TABLE t (id INT);")
                    .keeps_older_binaries());
    EXPECT_FALSE(with("ALTER TABLE t DROP COLUMN c;").keeps_older_binaries());
    EXPECT_FALSE(with("-- certctrl: older binaries keep working? no\nDROP TABLE t;").keeps_older_binaries());
    EXPECT_FALSE(with("SELECT '-- certctrl: older binaries keep working';").keeps_older_binaries());
    // Every embedded migration before V017 was written without it.
    for (auto const& m : db::embedded_migrations()) {
        if (m.version() < 17) {
            EXPECT_FALSE(m.keeps_older_binaries()) << m.file_name;
        }
    }
}

}  // namespace
}  // namespace certctrl::test
