#include "certctrl/config/config.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace certctrl::config {
namespace {

std::filesystem::path const here = ".";

// Expects parse(text) to throw a config_error whose message contains `needle`.
void expect_error(std::string const& text, std::string const& needle) {
    try {
        parse(text, here);
        ADD_FAILURE() << "no error for: " << text;
    } catch (config_error const& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(Config, EmptyObjectGivesDefaults) {
    ::unsetenv("CERTCTRL_DB_PASSWORD");
    ::unsetenv("CERTCTRL_MASTER_KEY");
    auto c = parse("{}", here);
    EXPECT_EQ(c.server.port, 8080);
    EXPECT_EQ(c.server.body_limit_bytes, 1024u * 1024u);
    EXPECT_EQ(c.database.pool_size, 4u);
    EXPECT_TRUE(c.database.password.empty());
    EXPECT_TRUE(c.crypto.master_key.empty());
    EXPECT_EQ(c.log.level, "info");
}

TEST(Config, ReadsEveryDocumentedKeyOfTheExample) {
    ::setenv("CERTCTRL_DB_PASSWORD", "pw-from-env", 1);
    ::setenv("CERTCTRL_MASTER_KEY", std::string(64, 'a').c_str(), 1);
    ::setenv("CERTCTRL_METRICS_TOKEN", "0123456789abcdef0123", 1);
    auto c = load(CERTCTRL_SOURCE_DIR "/config/certctrl.example.json");
    EXPECT_EQ(c.database.password, "pw-from-env");
    EXPECT_EQ(c.crypto.master_key.size(), 32u);
    EXPECT_EQ(c.crypto.master_key[0], '\xaa');
    EXPECT_EQ(c.devices.access_token_ttl_seconds, 3600);
    EXPECT_EQ(c.devices.updates_kept_per_device, 1000u);
    ASSERT_EQ(c.issuance.ca_limits.size(), 1u);
    EXPECT_EQ(c.issuance.ca_limits[0].directory_url, "https://acme-v02.api.letsencrypt.org/directory");
    EXPECT_EQ(c.issuance.ca_limits[0].requests_per_second, 20u);
    EXPECT_EQ(c.issuance.ca_limits[0].max_orders_in_flight, 50u);
    EXPECT_EQ(c.issuance.ca_limits[0].max_pause_seconds, 300u);
    EXPECT_EQ(c.issuance.ari_min_recheck_seconds, 60u);
    EXPECT_EQ(c.issuance.dns_authoritative_port, 53u);
    ::unsetenv("CERTCTRL_DB_PASSWORD");
    ::unsetenv("CERTCTRL_MASTER_KEY");
    ::unsetenv("CERTCTRL_METRICS_TOKEN");
}

TEST(Config, CommentsAndNestedValues) {
    auto c = parse(R"({
        // the listener
        "server": {"port": 9000, "read_timeout_ms": 2500, "threads": 4},
        "database": {"host": "db.internal", "name": "certctrl_prod", "migrate_on_start": false},
        "log": {"level": "debug"}
    })",
                   here);
    EXPECT_EQ(c.server.port, 9000);
    EXPECT_EQ(c.server.read_timeout.count(), 2500);
    EXPECT_EQ(c.server.threads, 4u);
    EXPECT_EQ(c.database.host, "db.internal");
    EXPECT_FALSE(c.database.migrate_on_start);
    EXPECT_EQ(c.log.level, "debug");
}

TEST(Config, DatabaseSocketIsAPathRelativeToTheConfigFolder) {
    EXPECT_TRUE(parse("{}", here).database.socket.empty());
    auto c = parse(R"({"database": {"socket": "var/mysqld.sock"}})", here);
    EXPECT_EQ(c.database.socket, (here / "var/mysqld.sock").string());
    auto abs = parse(R"({"database": {"socket": "/run/mysqld/mysqld.sock"}})", here);
    EXPECT_EQ(abs.database.socket, "/run/mysqld/mysqld.sock");
    expect_error(R"({"database": {"socket": 3306}})", "database.socket");
}

TEST(Config, DatabaseHostsListAClustersNodes) {
    EXPECT_TRUE(parse("{}", here).database.hosts.empty());
    auto c = parse(R"({"database": {"hosts": ["10.0.0.21:3306", "db-2.internal:3307"]}})", here);
    EXPECT_EQ(c.database.hosts, (std::vector<std::string>{"10.0.0.21:3306", "db-2.internal:3307"}));
    expect_error(R"({"database": {"hosts": ["10.0.0.21"]}})", "database.hosts");
    expect_error(R"({"database": {"hosts": ["10.0.0.21:0"]}})", "database.hosts");
    expect_error(R"({"database": {"hosts": [":3306"]}})", "database.hosts");
    expect_error(R"({"database": {"hosts": ["h:3306x"]}})", "database.hosts");
    expect_error(R"({"database": {"hosts": ["h:3306"], "socket": "/run/mysqld/mysqld.sock"}})",
                 "database.hosts");
    expect_error(R"({"database": {"hosts": "h:3306"}})", "database.hosts");
}

TEST(Config, UnknownKeysAreNamed) {
    expect_error(R"({"sever": {}})", "unknown config key 'sever'");
    expect_error(R"({"server": {"prot": 1}})", "unknown config key 'server.prot'");
    expect_error(R"({"database": {"password": "inline"}})", "unknown config key 'database.password'");
}

TEST(Config, BadValuesAreNamed) {
    expect_error(R"({"server": {"port": 70000}})", "server.port");
    expect_error(R"({"server": {"port": "80"}})", "server.port");
    expect_error(R"({"server": {"port": -1}})", "server.port");
    expect_error(R"({"server": {"threads": 0}})", "server.threads");
    expect_error(R"({"server": {"public_url": "ftp://x"}})", "server.public_url");
    expect_error(R"({"server": {"body_limit_bytes": 1.5}})", "server.body_limit_bytes");
    expect_error(R"({"database": {"name": "bad-name; DROP"}})", "database.name");
    expect_error(R"({"database": {"migrate_on_start": "yes"}})", "database.migrate_on_start");
    expect_error(R"({"log": {"level": "loud"}})", "log.level");
    expect_error(R"({"server": []})", "server");
    expect_error(R"({"issuance": {"ca_limits": {}}})", "issuance.ca_limits");
    expect_error(R"({"issuance": {"ca_limits": [1]}})", "issuance.ca_limits[0]");
    expect_error(R"({"issuance": {"ca_limits": [{"directory_url": "ftp://ca"}]}})",
                 "issuance.ca_limits[0].directory_url");
    expect_error(R"({"issuance": {"ca_limits": [{"directory_url": "https://ca/dir", "rps": 1}]}})",
                 "issuance.ca_limits[0].rps");
    expect_error(R"({"issuance": {"ari_min_recheck_seconds": 0}})", "issuance.ari_min_recheck_seconds");
    expect_error(R"([1])", "JSON object");
    expect_error(R"({"server": )", "not valid JSON");
}

TEST(Config, SecretsFromFilesRelativeToTheConfig) {
    ::unsetenv("CERTCTRL_DB_PASSWORD");
    ::unsetenv("CERTCTRL_MASTER_KEY");
    auto dir =
        std::filesystem::temp_directory_path() / ("certctrl-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir / "secrets");
    std::ofstream(dir / "secrets/db") << "file-pw\n";
    std::ofstream(dir / "secrets/mk") << std::string(64, '0') << "\n";
    std::ofstream(dir / "c.json")
        << R"({"database": {"password_file": "secrets/db"}, "crypto": {"master_key_file": "secrets/mk"}})";
    auto c = load(dir / "c.json");
    EXPECT_EQ(c.database.password, "file-pw");
    EXPECT_EQ(c.crypto.master_key, std::string(32, '\0'));

    std::ofstream(dir / "secrets/mk") << "not-hex";
    EXPECT_THROW(load(dir / "c.json"), config_error);
    std::ofstream(dir / "c2.json") << R"({"database": {"password_file": "secrets/missing"}})";
    EXPECT_THROW(load(dir / "c2.json"), config_error);
    std::filesystem::remove_all(dir);
}

TEST(Config, EnvironmentWinsOverFile) {
    ::setenv("MY_DB_PW", "env-pw", 1);
    auto c = parse(R"({"database": {"password_env": "MY_DB_PW", "password_file": "/nonexistent"}})", here);
    EXPECT_EQ(c.database.password, "env-pw");
    ::unsetenv("MY_DB_PW");
}

TEST(Config, MetricsTokenMustBeLongEnough) {
    ::setenv("SHORT_TOKEN", "abc", 1);
    expect_error(R"({"metrics": {"token_env": "SHORT_TOKEN"}})", "metrics.token_env");
    ::unsetenv("SHORT_TOKEN");
    expect_error(R"({"metrics": {"token_env": "UNSET_TOKEN_VAR_XYZ"}})", "metrics.token_env");
}

TEST(Config, AuthAndRateLimitSections) {
    auto c = parse(R"({"server": {"trusted_proxies": ["127.0.0.1", "::1"]},
                      "auth": {"cookie_name": "sid", "session_idle_timeout_s": 600,
                               "dashboard_origins": ["https://dash.example.com"]},
                      "rate_limits": {"auth_per_minute": 3, "api_per_minute": 0}})",
                   here);
    EXPECT_EQ(c.server.trusted_proxies.size(), 2u);
    EXPECT_EQ(c.auth.cookie_name, "sid");
    EXPECT_EQ(c.auth.session_idle_timeout_s, 600);
    EXPECT_EQ(c.auth.dashboard_origins[0], "https://dash.example.com");
    EXPECT_EQ(c.rate_limits.auth_per_minute, 3u);
    EXPECT_EQ(c.rate_limits.api_per_minute, 0u);
    EXPECT_EQ(c.rate_limits.issuance_per_hour, 5u);
    expect_error(R"({"server": {"trusted_proxies": ["not-an-ip"]}})", "server.trusted_proxies");
    expect_error(R"({"server": {"trusted_proxies": "127.0.0.1"}})", "server.trusted_proxies");
    expect_error(R"({"auth": {"cookie_name": "bad name"}})", "auth.cookie_name");
    expect_error(R"({"auth": {"dashboard_origins": ["dash.example.com"]}})", "auth.dashboard_origins");
    expect_error(R"({"auth": {"session_ttl_s": 5}})", "auth.session_ttl_s");
    expect_error(R"({"rate_limits": {"api_per_minute": -1}})", "rate_limits.api_per_minute");
    ::unsetenv("CERTCTRL_ACTIVATION_CODE");
    expect_error(R"({"auth": {"registration_enabled": true}})", "auth.registration_enabled");
    ::setenv("CERTCTRL_ACTIVATION_CODE", "code-1234", 1);
    EXPECT_EQ(parse(R"({"auth": {"registration_enabled": true}})", here).auth.activation_code, "code-1234");
    ::unsetenv("CERTCTRL_ACTIVATION_CODE");
}

TEST(Config, DevicesSection) {
    auto c = parse(R"({"devices":{"access_token_ttl_seconds":600,"updates_kept_per_device":5,)"
                   R"("verification_uri":"https://example.com/activate","poll_interval_hint_seconds":15}})",
                   here);
    EXPECT_EQ(c.devices.access_token_ttl_seconds, 600);
    EXPECT_EQ(c.devices.updates_kept_per_device, 5u);
    EXPECT_EQ(c.devices.verification_uri, "https://example.com/activate");
    EXPECT_EQ(c.devices.poll_interval_hint_seconds, 15u);
    EXPECT_EQ(c.devices.refresh_token_ttl_seconds, 30 * 24 * 3600) << "default";
    expect_error(R"({"devices":{"updates_max_wait_seconds":31}})", "devices.updates_max_wait_seconds");
    expect_error(R"({"devices":{"access_token_ttl_seconds":1}})", "devices.access_token_ttl_seconds");
    expect_error(R"({"devices":{"jwt_secret":"x"}})", "devices.jwt_secret");
}

TEST(Config, MissingFileIsAnError) {
    EXPECT_THROW(load("/nonexistent/certctrl.json"), config_error);
}

}  // namespace
}  // namespace certctrl::config

namespace certctrl::config {
namespace {

TEST(Config, WebhooksThresholdsAreSortedAndTheRetryScheduleChecked) {
    auto c = parse(R"({"webhooks":{"expiring_days":[7,30,7,1],"concurrency":4,"sender":false}})", here);
    EXPECT_EQ(c.webhooks.expiring_days, (std::vector<unsigned>{1, 7, 30}));
    EXPECT_EQ(c.webhooks.concurrency, 4u);
    EXPECT_FALSE(c.webhooks.sender);
    EXPECT_EQ(parse("{}", here).webhooks.expiring_days, (std::vector<unsigned>{1, 7, 14, 30}));
    for (char const* bad : {R"({"webhooks":{"expiring_days":[0]}})", R"({"webhooks":{"expiring_days":"30"}})",
                            R"({"webhooks":{"expiring_days":[400]}})"}) {
        EXPECT_THROW(parse(bad, here), config_error) << bad;
    }
    expect_error(R"({"webhooks":{"retry_initial_ms":5000,"retry_max_ms":1000}})", "webhooks.retry_max_ms");
    EXPECT_THROW(parse(R"({"webhooks":{"unknown":1}})", here), config_error);
}

}  // namespace
}  // namespace certctrl::config
