#pragma once

#include "certctrl/config/config.hpp"
#include "certctrl/dns/rfc2136.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace certctrl::test {

/// Admin credentials of the MariaDB started by scripts/test.sh (CERTCTRL_TEST_DB_* variables).
std::optional<config::database_config> admin_db();

/// The Unix socket of that MariaDB (CERTCTRL_TEST_DB_SOCKET; the same user may connect over it), or "".
std::string admin_db_socket();

/// True when running under CI=true: missing services are then failures, never skips.
bool in_ci();

/// Rate limits count in fixed windows aligned to the clock (a minute starts at a multiple of 60 s of Unix
/// time). A test that counts requests against one window and needs `seconds` for it sleeps here when fewer
/// remain in the current window, until the next one starts. Returns the window it may count in (its start).
long long wait_for_room_in_window(int seconds, int window_s = 60);

/// Skips the current test (or fails it under CI) when no test MariaDB is configured. Use as
/// `CERTCTRL_REQUIRE_DB();` at the start of a test or SetUp.
#define CERTCTRL_REQUIRE_DB()                                                                               \
    do {                                                                                                    \
        if (!::certctrl::test::admin_db()) {                                                                \
            if (::certctrl::test::in_ci()) {                                                                \
                FAIL() << "CERTCTRL_TEST_DB_* not set: MariaDB is required under CI (run scripts/test.sh)"; \
            }                                                                                               \
            GTEST_SKIP() << "CERTCTRL_TEST_DB_* not set; run through scripts/test.sh";                      \
        }                                                                                                   \
    } while (0)

/// The local pebble ACME CA started by scripts/test.sh (CERTCTRL_TEST_PEBBLE_* variables).
struct pebble_env {
    std::string directory_url;
    std::string ca_file;         // trust anchor of pebble's HTTPS listener
    std::string management_url;  // /roots/0 gives the root that signs issued chains
    unsigned http01_port = 0;    // where pebble connects for HTTP-01 validation
    std::string challtestsrv_url;
};
std::optional<pebble_env> pebble();

/// Skips (or fails under CI) when pebble is not running.
#define CERTCTRL_REQUIRE_PEBBLE()                                                                           \
    do {                                                                                                    \
        if (!::certctrl::test::pebble()) {                                                                  \
            if (::certctrl::test::in_ci()) {                                                                \
                FAIL()                                                                                      \
                    << "CERTCTRL_TEST_PEBBLE_* not set: pebble is required under CI (run scripts/test.sh)"; \
            }                                                                                               \
            GTEST_SKIP() << "CERTCTRL_TEST_PEBBLE_* not set; run through scripts/test.sh";                  \
        }                                                                                                   \
    } while (0)

/// The knot DNS server started by scripts/test.sh (CERTCTRL_TEST_KNOT_*): zone certctrl.test, TSIG-signed
/// RFC 2136 updates. Nothing when it is not running.
std::optional<dns::update_target> knot();

/// Skips (or fails under CI) when knot is not running.
#define CERTCTRL_REQUIRE_KNOT()                                                                            \
    do {                                                                                                   \
        if (!::certctrl::test::knot()) {                                                                   \
            if (::certctrl::test::in_ci()) {                                                               \
                FAIL() << "CERTCTRL_TEST_KNOT_* not set: knot is required under CI (run scripts/test.sh)"; \
            }                                                                                              \
            GTEST_SKIP() << "knot not running; run through scripts/test.sh";                               \
        }                                                                                                  \
    } while (0)

/// A fresh, empty database created for one test and dropped when it goes away (so tests run in
/// parallel). Migrations are applied by the code under test.
class test_schema {
  public:
    test_schema();
    ~test_schema();
    test_schema(test_schema const&) = delete;
    test_schema& operator=(test_schema const&) = delete;

    /// Settings that reach this schema (pool_size 2, short timeouts).
    config::database_config const& db() const { return db_; }
    std::string const& name() const { return db_.name; }

    /// Runs one statement as the admin user in this schema.
    void exec(std::string const& sql) const;
    /// Runs a query returning one integer (first column of the first row; -1 when no row).
    long long query_int(std::string const& sql) const;
    /// The first column of the first row of `sql` as text ("" when there is no row).
    std::string query_text(std::string const& sql) const;
    /// Every column of every row of `tables`, as the bytes stored, separated by '|' and newlines.
    std::string dump_text(std::vector<std::string> const& tables) const;

  private:
    config::database_config db_;
};

/// A fresh temporary directory removed at destruction.
class temp_dir {
  public:
    temp_dir();
    ~temp_dir();
    temp_dir(temp_dir const&) = delete;
    temp_dir& operator=(temp_dir const&) = delete;
    std::filesystem::path const& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

/// A MariaDB server of the test's own (copied from CERTCTRL_TEST_MARIADB_TEMPLATE), which the test may
/// stop and start again on the same port. Same credentials as admin_db().
class private_mariadb {
  public:
    private_mariadb();
    ~private_mariadb();
    private_mariadb(private_mariadb const&) = delete;
    private_mariadb& operator=(private_mariadb const&) = delete;

    static bool available();
    void start();
    void stop();
    std::uint16_t port() const { return port_; }
    /// Admin settings pointing at this server (schema `name`, created by create_schema()).
    config::database_config db(std::string const& name) const;
    void create_schema(std::string const& name) const;

  private:
    temp_dir dir_;
    std::uint16_t port_ = 0;
    int pid_ = -1;
};

/// A TCP port on 127.0.0.1 that was free a moment ago.
std::uint16_t free_port();

/// The whole content of a file ("" when it cannot be read).
std::string read_file(std::filesystem::path const& p);

/// The commit of the source tree (git rev-parse --short=12 HEAD), which --version must name; "" without git.
std::string source_commit();

}  // namespace certctrl::test
