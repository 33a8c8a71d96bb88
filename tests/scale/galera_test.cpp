// One certctrl-server on a 3-node MariaDB Galera cluster (scripts/lib/services.sh galera_start), listing
// every node in database.hosts. The node it uses is killed with SIGKILL under a load of issuances: it moves
// to another node, no acknowledged issuance is lost, and the killed node rejoins with the same data.
#include "galera_cluster.hpp"
#include "http_client.hpp"
#include "process.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;

class Galera : public ::testing::Test {
  protected:
    void SetUp() override {
        CERTCTRL_REQUIRE_DB();  // scripts/test.sh: MariaDB and its tools are installed
        if (auto const need = galera_cluster::missing(); !need.empty()) {
            if (in_ci()) {
                FAIL() << need << " is missing: scripts/test.sh installs galera-4, mariadb-backup and socat";
            }
            GTEST_SKIP() << need << " is missing; run through scripts/test.sh";
        }
        cluster_ = std::make_unique<galera_cluster>(dir_.path() / "galera", 3);
        ports_ = cluster_->ports();
        ASSERT_EQ(sql(1, "CREATE DATABASE certctrl; CREATE USER 'certctrl'@'127.0.0.1' IDENTIFIED BY '" +
                             password_ + "'; GRANT ALL ON certctrl.* TO 'certctrl'@'127.0.0.1';"),
                  "");
    }
    void TearDown() override {
        if (HasFailure() && server_) {
            std::string const log = server_->log();
            std::cerr << "---- server log (last 6000 bytes) ----\n"
                      << (log.size() > 6000 ? log.substr(log.size() - 6000) : log) << "\n";
        }
        server_.reset();
        cluster_.reset();
    }

    // SQL as root on node `n` (1-based); its output.
    std::string sql(int n, std::string const& statement) { return cluster_->sql(n, statement); }

    temp_dir dir_;
    std::unique_ptr<galera_cluster> cluster_;
    std::vector<std::uint16_t> ports_;
    std::string const password_ = "galera-test-pw-1";
    std::unique_ptr<server_process> server_;
};

TEST_F(Galera, TheServerMovesToAnotherNodeWhenItsNodeIsKilledAndLosesNoAcknowledgedIssuance) {
    config::database_config db;
    db.host = "127.0.0.1";
    db.port = ports_[0];
    db.user = "certctrl";
    db.name = "certctrl";
    json::array hosts;
    for (auto p : ports_) {
        hosts.emplace_back("127.0.0.1:" + std::to_string(p));
    }
    // Writes wait while Galera evicts a dead node (about 6 s): a read timeout above that.
    auto cfg =
        make_config(db, {{"database", {{"hosts", hosts}, {"read_timeout_s", 20}, {"write_timeout_s", 20}}},
                         {"rate_limits",
                          {{"api_per_minute", 0},
                           {"auth_per_minute", 1000},
                           {"issuance_per_hour", 0},
                           {"self_ca_issuance_per_hour", 0}}}});
    std::ofstream(dir_.path() / "c.json") << json::serialize(cfg);
    server_ = std::make_unique<server_process>(cfg, password_);  // migrates the cluster's schema
    // Galera replicates rows by primary key: every table has one.
    EXPECT_EQ(sql(2,
                  "SELECT COUNT(*) FROM information_schema.tables t WHERE t.table_schema = 'certctrl' AND "
                  "t.table_type = 'BASE TABLE' AND NOT EXISTS (SELECT 1 FROM "
                  "information_schema.table_constraints c WHERE c.table_schema = t.table_schema AND "
                  "c.table_name = t.table_name AND c.constraint_type = 'PRIMARY KEY')"),
              "0\n");
    std::vector<std::string> const env{"CERTCTRL_TEST_SERVER_DB_PASSWORD=" + password_};
    auto added = run_server_command({"user", "add", "--config", (dir_.path() / "c.json").string(), "--email",
                                     "g@example.com", "--password-stdin"},
                                    env, std::chrono::seconds(30), "correct-horse-battery\n");
    ASSERT_EQ(added.exit_code, 0) << added.output;
    auto made =
        run_server_command({"apikey", "add", "--config", (dir_.path() / "c.json").string(), "--email",
                            "g@example.com", "--name", "g", "--scope", "certificates:*[read,write,issue]",
                            "--scope", "cas:*[read,write]", "--scope", "acme_accounts:*[read,write]"},
                           env);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    std::string const key = made.output.substr(0, made.output.find('\n'));
    std::map<std::string, std::string> const auth{{"Authorization", "Bearer " + key},
                                                  {"Content-Type", "application/json"}};
    auto post = [&](std::string const& path, std::string const& body) {
        http_client c(server_->port());
        return c.request("POST", path, body, auth);
    };
    auto ca = post("/apiv1/me/cas", R"({"common_name":"Galera root","valid_days":365})");
    ASSERT_EQ(ca.status, 200) << ca.body;
    auto acct =
        post("/apiv1/me/acme-accounts", R"({"name":"self","provider":"SELF_CA","ca_id":)" +
                                            std::to_string(ca.json().at("data").at("id").as_int64()) + "}");
    ASSERT_EQ(acct.status, 200) << acct.body;
    std::vector<std::string> certs;
    for (int i = 0; i < 8; ++i) {
        auto c = post("/apiv1/me/certificates",
                      R"({"domain_name":"n)" + std::to_string(i) + R"(.galera.test","acct_id":)" +
                          std::to_string(acct.json().at("data").at("id").as_int64()) + "}");
        ASSERT_EQ(c.status, 200) << c.body;
        certs.push_back(std::to_string(c.json().at("data").at("id").as_int64()));
    }

    // Load: issuances (writes) from two clients; each acknowledged SUCCESS is counted.
    std::atomic<bool> stop{false};
    std::atomic<int> acknowledged{0};
    std::mutex mu;
    std::vector<std::pair<std::chrono::steady_clock::time_point, int>> outcomes;
    auto client = [&](int from) {
        for (int i = from; !stop; i += 2) {
            int status = -1;
            try {
                auto r = post(
                    "/apiv1/me/certificates/" + certs[static_cast<std::size_t>(i) % certs.size()] + "/issues",
                    "{}");
                status = r.status;
                if (r.status == 200 && r.json().at("data").at("status") == "SUCCESS") {
                    ++acknowledged;
                }
            } catch (std::exception const&) {
            }
            std::lock_guard lock(mu);
            outcomes.emplace_back(std::chrono::steady_clock::now(), status);
        }
    };
    std::thread a(client, 0);
    std::thread b(client, 1);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    auto const killed = std::chrono::steady_clock::now();
    ASSERT_TRUE(cluster_->stop_node(1, "KILL"));
    std::this_thread::sleep_for(std::chrono::seconds(14));
    stop = true;
    a.join();
    b.join();

    int before = 0;
    int failed_at_kill = 0;
    int after_ok = 0;
    int after_failed = 0;
    for (auto const& [at, status] : outcomes) {
        if (at < killed) {
            before += status == 200;
        } else if (at < killed + std::chrono::seconds(10)) {
            // Galera holds writes until it evicts the dead node (about 6 s); they are counted here.
            failed_at_kill += status != 200;
        } else {
            (status == 200 ? after_ok : after_failed) += 1;
        }
    }
    EXPECT_GT(before, 0);
    EXPECT_GT(after_ok, 0) << "served from another node";
    EXPECT_EQ(after_failed, 0) << "once moved, every issuance succeeds";
    EXPECT_NE(server_->log().find("database: now using 127.0.0.1:"), std::string::npos);

    // The killed node rejoins (IST) and holds the same rows; every acknowledged issuance is there.
    ASSERT_TRUE(cluster_->start_node(1)) << cluster_->log();
    std::string const count = "SELECT COUNT(*) FROM certctrl.issue_history WHERE status = 'SUCCESS'";
    auto const on2 = sql(2, count);
    EXPECT_EQ(sql(1, count), on2);
    EXPECT_EQ(sql(3, count), on2);
    EXPECT_GE(std::stoi(on2), acknowledged.load());
    std::cout << before << " issuances before the kill, " << failed_at_kill << " failed within 10 s of it, "
              << after_ok << " after it (0 failed), " << acknowledged.load() << " acknowledged, "
              << std::stoi(on2) << " SUCCESS rows on each of the 3 nodes" << std::endl;
}

}  // namespace
}  // namespace certctrl::test
