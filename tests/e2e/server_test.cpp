// End to end: the real certctrl-server binary on a free port, against the real MariaDB.
#include "http_client.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;

class Server : public ::testing::Test {
  protected:
    void SetUp() override {
        CERTCTRL_REQUIRE_DB();
        schema_ = std::make_unique<test_schema>();
    }
    std::unique_ptr<server_process> start(json::object const& overrides = {},
                                          std::vector<std::string> env = {}) {
        return std::make_unique<server_process>(make_config(schema_->db(), overrides), schema_->db().password,
                                                std::move(env));
    }
    std::unique_ptr<test_schema> schema_;
};

void expect_error_body(http_response const& r, int status, int code) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    auto v = r.json();
    auto const& e = v.at("error");
    EXPECT_EQ(e.at("code").as_int64(), code) << r.body;
    EXPECT_FALSE(e.at("what").as_string().empty());
    EXPECT_FALSE(e.at("key").as_string().empty());
    EXPECT_TRUE(e.at("params").is_object());
}

TEST_F(Server, HealthAndReadyAfterMigratingOnStart) {
    auto s = start();
    auto h = http_get(s->port(), "/health");
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.json().at("data").at("status").as_string(), "ok");
    EXPECT_EQ(h.header("x-request-id").size(), 32u);
    auto r = http_get(s->port(), "/ready");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_GE(r.json().at("data").at("schema_version").as_int64(), 1);
    EXPECT_GE(schema_->query_int("SELECT COUNT(*) FROM schema_migrations"), 1);
}

TEST_F(Server, EchoesRequestIdAndLogsItOnTheAccessLine) {
    auto s = start();
    auto h = http_get(s->port(), "/health", {{"X-Request-Id", "e2e-req-42"}});
    EXPECT_EQ(h.header("x-request-id"), "e2e-req-42");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto log = s->log();
    EXPECT_NE(log.find("rid=e2e-req-42 access api 127.0.0.1 GET /health route=/health status=200"),
              std::string::npos)
        << log;
}

TEST_F(Server, UnknownPathIs404AndWrongMethodIs405WithAllow) {
    auto s = start();
    http_client c(s->port());
    expect_error_body(c.get("/no/such/path"), 404, 4001);
    auto r = c.request("DELETE", "/health");
    expect_error_body(r, 405, 4005);
    EXPECT_EQ(r.header("allow"), "GET");
    // The same keep-alive connection still serves.
    EXPECT_EQ(c.get("/health").status, 200);
}

TEST_F(Server, OversizedBodyIs413) {
    auto s = start(json::object{{"server", {{"body_limit_bytes", 4096}}}});
    http_client c(s->port());
    auto r = c.request("POST", "/health", std::string(5000, 'x'), {{"Content-Type", "application/json"}});
    expect_error_body(r, 413, 4013);
    // Chunked bodies are limited as well.
    http_client c2(s->port());
    std::string chunk(3000, 'y');
    c2.send_raw("POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nbb8\r\n" + chunk +
                "\r\nbb8\r\n" + chunk + "\r\n0\r\n\r\n");
    expect_error_body(c2.read_response(), 413, 4013);
    EXPECT_EQ(http_get(s->port(), "/health").status, 200);
}

TEST_F(Server, ClientThatKeepsSendingAnOversizedBodyStillReadsThe413) {
    auto s = start();  // default 1 MiB limit
    http_client c(s->port());
    std::string body(3 * 1024 * 1024, 'z');
    // The whole 3 MiB is written before reading: the server answers at the header and must drain the rest
    // instead of resetting the connection, which would destroy the response.
    c.send_raw("POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body);
    expect_error_body(c.read_response(), 413, 4013);
}

TEST_F(Server, OversizedHeaderIs431) {
    auto s = start();
    http_client c(s->port());
    auto r = c.get("/health", {{"X-Big", std::string(20000, 'h')}});
    expect_error_body(r, 431, 4031);
    EXPECT_EQ(http_get(s->port(), "/health").status, 200);
}

TEST_F(Server, MalformedHttpIs400AndTheNextClientIsServed) {
    auto s = start();
    for (std::string garbage :
         {std::string("THIS IS NOT HTTP\r\n\r\n"), std::string("GET /health HTTP/9.9\r\n\r\n"),
          std::string("GET /health HTTP/1.1\r\nBad Header Line\r\n\r\n"),
          std::string("GET /health HTTP/1.1\r\nContent-Length: abc\r\n\r\n")}) {
        http_client bad(s->port());
        bad.send_raw(garbage);
        auto r = bad.read_response();
        expect_error_body(r, 400, 4000);
        EXPECT_TRUE(bad.closed_by_peer(std::chrono::seconds(2)));
        EXPECT_EQ(http_get(s->port(), "/health").status, 200) << garbage;
    }
    EXPECT_TRUE(s->alive());
}

TEST_F(Server, SlowClientCostsOnlyItsOwnConnection) {
    auto s = start(json::object{{"server", {{"read_timeout_ms", 500}, {"idle_timeout_ms", 800}}}});
    http_client slow(s->port());
    slow.send_raw("GET /health HTTP/1.1\r\nHost: x\r\n");  // never finishes its header
    http_client idle(s->port());
    EXPECT_EQ(idle.get("/health").status, 200);  // then stays idle
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(http_get(s->port(), "/health").status, 200);
    }
    EXPECT_TRUE(slow.closed_by_peer(std::chrono::seconds(5)));
    EXPECT_TRUE(idle.closed_by_peer(std::chrono::seconds(5)));
}

TEST_F(Server, ConnectionCapRefusesWith503) {
    auto s = start(json::object{{"server", {{"max_connections", 2}}}});
    http_client a(s->port());
    http_client b(s->port());
    EXPECT_EQ(a.get("/health").status, 200);
    EXPECT_EQ(b.get("/health").status, 200);
    http_client third(s->port());
    auto r = third.read_response();  // the server speaks first: it refuses
    expect_error_body(r, 503, 5003);
    EXPECT_EQ(a.get("/health").status, 200);
}

TEST_F(Server, MetricsNeedTheTokenOnTheApiListener) {
    std::string token = "metrics-token-0123456789";
    auto s = start(json::object{{"metrics", {{"token_env", "E2E_METRICS_TOKEN"}}}},
                   {"E2E_METRICS_TOKEN=" + token});
    EXPECT_EQ(http_get(s->port(), "/health").status, 200);
    expect_error_body(http_get(s->port(), "/metrics"), 401, 4010);
    expect_error_body(http_get(s->port(), "/metrics", {{"Authorization", "Bearer wrong-token-0123456789"}}),
                      401, 4010);
    auto m = http_get(s->port(), "/metrics", {{"Authorization", "Bearer " + token}});
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("certctrl_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 1"),
              std::string::npos)
        << m.body;
    EXPECT_NE(m.body.find("certctrl_http_request_duration_seconds_bucket{route=\"/health\""),
              std::string::npos);
    EXPECT_NE(m.body.find("certctrl_http_open_connections "), std::string::npos);
    EXPECT_NE(m.body.find("certctrl_db_pool_in_use "), std::string::npos);
    EXPECT_NE(m.body.find("certctrl_db_pool_waiting "), std::string::npos);
    EXPECT_EQ(s->log().find(token), std::string::npos) << "the token leaked into the log";
}

TEST_F(Server, MetricsAreNotServedWithoutListenerOrToken) {
    auto s = start();
    expect_error_body(http_get(s->port(), "/metrics"), 404, 4001);
}

TEST_F(Server, MetricsOnTheirOwnListener) {
    auto mport = free_port();
    auto s = start(json::object{{"metrics", {{"listen_address", "127.0.0.1"}, {"port", mport}}}});
    expect_error_body(http_get(s->port(), "/metrics"), 404, 4001);
    auto m = http_get(mport, "/metrics");
    EXPECT_EQ(m.status, 200);
    EXPECT_EQ(m.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
}

TEST_F(Server, ReadyIs503WhileMigrationsArePending) {
    auto s = start(json::object{{"database", {{"migrate_on_start", false}}}});
    auto r = http_get(s->port(), "/ready");
    expect_error_body(r, 503, 5003);
    EXPECT_EQ(r.json().at("error").at("params").at("schema_version").as_int64(), 0);
    EXPECT_EQ(http_get(s->port(), "/health").status, 200);
}

TEST_F(Server, SigtermFinishesTheRequestInFlightAndExitsZero) {
    auto s = start();
    http_client busy(s->port());
    http_client idle(s->port());
    EXPECT_EQ(idle.get("/health").status, 200);
    // A request whose body is still arriving when SIGTERM comes.
    busy.send_raw(
        "POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
        "10\r\n\r\n01234");
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ::kill(s->pid(), SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_TRUE(idle.closed_by_peer(std::chrono::seconds(2)));     // idle keep-alive closed at once
    EXPECT_THROW(http_client refused(s->port()), std::exception);  // no longer accepting
    busy.send_raw("56789");
    auto r = busy.read_response();
    EXPECT_EQ(r.status, 405);  // answered, not dropped
    EXPECT_EQ(r.header("connection"), "close");
    auto const t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(s->stop(0, std::chrono::seconds(10)), 0) << s->log();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST_F(Server, SigintAlsoExitsZero) {
    auto s = start();
    EXPECT_EQ(http_get(s->port(), "/health").status, 200);
    EXPECT_EQ(s->stop(SIGINT, std::chrono::seconds(10)), 0) << s->log();
}

TEST_F(Server, RefusesToStartOnASchemaNewerThanItKnows) {
    { auto s = start(); }  // migrates
    schema_->exec("INSERT INTO schema_migrations (version, file_name, sha256) VALUES (999, 'V999__x.sql', '" +
                  std::string(64, '0') + "')");
    try {
        auto s = start();
        FAIL() << "server started on a newer schema";
    } catch (std::runtime_error const& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("exited with 3"), std::string::npos) << msg;
        EXPECT_NE(msg.find("newer"), std::string::npos) << msg;
    }
}

// Old and new binaries side by side during an upgrade; this binary plays the old one. A newer migration
// marked as keeping older binaries working leaves it ready, and another instance of it starts on that schema;
// a newer one without the mark takes it out of the proxy (503 / 5003) and keeps it from starting (exit 3).
TEST_F(Server, ANewerSchemaThatKeepsOlderBinariesWorkingIsServedSideBySide) {
    auto s = start();  // migrates
    // Each migration is recorded with its mark (V017 has it; V001 is an old one without).
    EXPECT_EQ(schema_->query_int("SELECT breaks_older FROM schema_migrations WHERE version = 17"), 0);
    EXPECT_EQ(schema_->query_int("SELECT breaks_older FROM schema_migrations WHERE version = 1"), 1);
    std::string const zeros(64, '0');
    schema_->exec(
        "INSERT INTO schema_migrations (version, file_name, sha256, breaks_older) VALUES (998, "
        "'V998__added_table.sql', '" +
        zeros + "', 0)");
    auto ready = http_get(s->port(), "/ready");
    EXPECT_EQ(ready.status, 200) << ready.body;
    EXPECT_EQ(ready.json().at("data").at("schema_version").as_int64(), 998);
    auto beside = start();  // migrate_on_start finds nothing to apply and serves
    EXPECT_EQ(http_get(beside->port(), "/ready").status, 200);
    EXPECT_NE(beside->log().find("keep older binaries working"), std::string::npos) << beside->log();

    schema_->exec(
        "INSERT INTO schema_migrations (version, file_name, sha256) VALUES (999, 'V999__dropped.sql', '" +
        zeros + "')");
    for (auto const* inst : {s.get(), beside.get()}) {
        auto out = http_get(inst->port(), "/ready");
        EXPECT_EQ(out.status, 503) << out.body;
        EXPECT_EQ(out.json().at("error").at("code").as_int64(), 5003) << out.body;
    }
    try {
        auto late = start();
        FAIL() << "started on a schema a newer migration broke for it";
    } catch (std::runtime_error const& e) {
        EXPECT_NE(std::string(e.what()).find("exited with 3"), std::string::npos) << e.what();
    }
}

TEST_F(Server, MigrateCommandAppliesAndIsIdempotent) {
    temp_dir dir;
    auto cfg_path = dir.path() / "c.json";
    std::ofstream(cfg_path) << json::serialize(make_config(schema_->db()));
    std::vector<std::string> env{"CERTCTRL_TEST_SERVER_DB_PASSWORD=" + schema_->db().password};
    auto first = run_server_command({"migrate", "--config", cfg_path.string()}, env);
    EXPECT_EQ(first.exit_code, 0) << first.output;
    EXPECT_NE(first.output.find("applied V001__init.sql"), std::string::npos) << first.output;
    auto second = run_server_command({"migrate", "--config", cfg_path.string()}, env);
    EXPECT_EQ(second.exit_code, 0) << second.output;
    EXPECT_EQ(second.output.find("applied V001"), std::string::npos) << second.output;
    EXPECT_EQ(first.output.find(schema_->db().password), std::string::npos);
}

TEST(ServerCli, HelpVersionAndBadArguments) {
    auto help = run_server_command({"--help"});
    EXPECT_EQ(help.exit_code, 0);
    EXPECT_NE(help.output.find("Usage: certctrl-server"), std::string::npos);
    auto version = run_server_command({"--version"});
    EXPECT_EQ(version.exit_code, 0);
    EXPECT_NE(version.output.find("certctrl-server "), std::string::npos);
    // The commit being built, not the one the build was configured at.
    auto const commit = source_commit();
    ASSERT_EQ(commit.size(), 12u) << "git rev-parse failed";
    EXPECT_NE(version.output.find("(" + commit + ")"), std::string::npos) << version.output;
    EXPECT_EQ(run_server_command({"--bogus"}).exit_code, 2);
    EXPECT_EQ(run_server_command({"serve"}).exit_code, 2);  // no --config
}

TEST(ServerCli, InvalidConfigExitsTwoNamingTheKey) {
    temp_dir dir;
    auto p = dir.path() / "bad.json";
    std::ofstream(p) << R"({"server": {"port": 8080, "listen_adress": "0.0.0.0"}})";
    auto r = run_server_command({"serve", "--config", p.string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("server.listen_adress"), std::string::npos) << r.output;
    std::ofstream(p) << R"({"database": {"pool_size": 0}})";
    r = run_server_command({"serve", "--config", p.string()});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.output.find("database.pool_size"), std::string::npos) << r.output;
}

TEST(ServerCli, UnreachableDatabaseAtStartExitsOne) {
    config::database_config db;
    db.port = free_port();
    db.name = "nothing";
    db.user = "nobody";
    temp_dir dir;
    auto p = dir.path() / "c.json";
    std::ofstream(p) << json::serialize(make_config(db));
    auto r = run_server_command({"serve", "--config", p.string()});
    EXPECT_EQ(r.exit_code, 1) << r.output;
}

}  // namespace
}  // namespace certctrl::test
