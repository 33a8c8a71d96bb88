// End to end: MariaDB is stopped and started again under a running server. Requests fail cleanly
// (503, code 5001) during the outage and succeed afterwards, without restarting the server.
#include "http_client.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

namespace certctrl::test {
namespace {

TEST(MariadbRestart, ServerRecoversWithoutRestart) {
    CERTCTRL_REQUIRE_DB();
    ASSERT_TRUE(private_mariadb::available()) << "CERTCTRL_TEST_MARIADB_TEMPLATE not set";
    private_mariadb db;
    db.create_schema("restart_test");
    auto cfg = db.db("restart_test");
    server_process s(make_config(cfg), cfg.password);
    int const pid = s.pid();

    auto ready = [&] { return http_get(s.port(), "/ready"); };
    ASSERT_EQ(ready().status, 200);

    int ok_before = 0;
    for (int i = 0; i < 20; ++i) {
        ok_before += ready().status == 200 ? 1 : 0;
    }
    EXPECT_EQ(ok_before, 20);

    db.stop();
    int outage_errors = 0;
    for (int i = 0; i < 20; ++i) {
        auto r = ready();
        if (r.status == 503) {
            auto v = r.json();
            EXPECT_EQ(v.at("error").at("code").as_int64(), 5001) << r.body;
            ++outage_errors;
        } else {
            ADD_FAILURE() << "during the outage got " << r.status << " " << r.body;
        }
        EXPECT_EQ(http_get(s.port(), "/health").status, 200);  // the process itself is fine
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(outage_errors, 20);
    // The failure is logged under the request's id, with the database's own message as detail.
    auto traced = http_get(s.port(), "/ready", {{"X-Request-Id", "outage-probe-1"}});
    EXPECT_EQ(traced.status, 503);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto log = s.log();
    EXPECT_NE(log.find("rid=outage-probe-1 GET /ready failed: code=5001"), std::string::npos) << log;
    EXPECT_NE(log.find("rid=outage-probe-1 access api 127.0.0.1 GET /ready route=/ready status=503"),
              std::string::npos);

    db.start();
    // Back within a few attempts (the pool fails fast for 500 ms after a failed connect).
    bool recovered = false;
    for (int i = 0; i < 100 && !recovered; ++i) {
        recovered = ready().status == 200;
        if (!recovered)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(recovered) << s.log();
    int ok_after = 0;
    for (int i = 0; i < 20; ++i) {
        ok_after += ready().status == 200 ? 1 : 0;
    }
    EXPECT_EQ(ok_after, 20);
    EXPECT_TRUE(s.alive());
    EXPECT_EQ(s.pid(), pid);
    EXPECT_EQ(s.stop(SIGTERM), 0);
}

// The whole database down under load for CERTCTRL_OUTAGE_SECONDS (5 in test.sh; docs/benchmarks.md has
// CERTCTRL_OUTAGE_SECONDS=30 ./scripts/test.sh -R UnderLoadAnOutage): every request fails fast with 503 /
// 5001 and /ready says so, the process stays up, and requests succeed again within 2 s of the database's
// return.
TEST(MariadbRestart, UnderLoadAnOutageFailsFastAndServiceResumesWithinTwoSeconds) {
    CERTCTRL_REQUIRE_DB();
    ASSERT_TRUE(private_mariadb::available()) << "CERTCTRL_TEST_MARIADB_TEMPLATE not set";
    private_mariadb db;
    db.create_schema("outage_test");
    auto const dbc = db.db("outage_test");
    auto const cfg = make_config(dbc, {{"rate_limits", {{"api_per_minute", 0}, {"auth_per_minute", 1000}}}});
    temp_dir dir;
    std::ofstream(dir.path() / "c.json") << boost::json::serialize(cfg);
    server_process s(cfg, dbc.password);
    std::vector<std::string> const env{"CERTCTRL_TEST_SERVER_DB_PASSWORD=" + dbc.password};
    auto added = run_server_command({"user", "add", "--config", (dir.path() / "c.json").string(), "--email",
                                     "load@example.com", "--password-stdin"},
                                    env, std::chrono::seconds(30), "correct-horse-battery\n");
    ASSERT_EQ(added.exit_code, 0) << added.output;
    auto made = run_server_command({"apikey", "add", "--config", (dir.path() / "c.json").string(), "--email",
                                    "load@example.com", "--name", "load", "--scope", "certificates:*[read]"},
                                   env);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    std::string const key = made.output.substr(0, made.output.find('\n'));

    struct sample {
        std::chrono::steady_clock::time_point at;  // when the answer came
        double ms = 0;
        int status = 0;
        std::int64_t code = 0;
    };
    std::mutex mu;
    std::vector<sample> samples;
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
        clients.emplace_back([&] {
            while (!stop) {
                auto const t0 = std::chrono::steady_clock::now();
                sample x;
                try {
                    auto r = http_get(s.port(), "/apiv1/me/certificates?limit=5",
                                      {{"Authorization", "Bearer " + key}});
                    x.status = r.status;
                    if (r.status != 200) {
                        auto v = r.json();
                        x.code = v.is_object() && v.as_object().contains("error")
                                     ? v.at("error").at("code").as_int64()
                                     : 0;
                    }
                } catch (std::exception const&) {
                    x.status = -1;  // no answer at all
                }
                x.at = std::chrono::steady_clock::now();
                x.ms = std::chrono::duration<double, std::milli>(x.at - t0).count();
                std::lock_guard lock(mu);
                samples.push_back(x);
            }
        });
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
    char const* configured = std::getenv("CERTCTRL_OUTAGE_SECONDS");
    int const outage_s = configured ? std::max(1, std::atoi(configured)) : 5;
    auto const down = std::chrono::steady_clock::now();
    db.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto const settled = std::chrono::steady_clock::now();  // requests in flight at the stop have ended
    auto ready_during = http_get(s.port(), "/ready");
    std::this_thread::sleep_for(std::chrono::seconds(outage_s) - std::chrono::milliseconds(500));
    db.start();
    auto const back = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(3));
    stop = true;
    for (auto& c : clients) {
        c.join();
    }

    EXPECT_EQ(ready_during.status, 503) << ready_during.body;
    int before = 0;
    int during = 0;
    int during_ok_shape = 0;
    std::vector<double> during_ms;
    std::optional<std::chrono::steady_clock::time_point> first_ok_after;
    int after_failures = 0;
    for (auto const& x : samples) {
        if (x.at < down) {
            before += x.status == 200;
        } else if (x.at >= settled && x.at < back) {
            ++during;
            during_ok_shape += x.status == 503 && x.code == 5001;
            during_ms.push_back(x.ms);
        } else if (x.at >= back) {
            if (x.status == 200 && !first_ok_after) {
                first_ok_after = x.at;
            } else if (first_ok_after && x.status != 200) {
                ++after_failures;
            }
        }
    }
    ASSERT_GT(before, 0);
    ASSERT_GT(during, 0);
    EXPECT_EQ(during_ok_shape, during) << "every request during the outage is 503 / 5001";
    std::sort(during_ms.begin(), during_ms.end());
    double const p99 = during_ms[during_ms.size() * 99 / 100];
    EXPECT_LT(p99, 500.0) << "failing fast, not waiting on the database";
    ASSERT_TRUE(first_ok_after) << "never served again";
    auto const resumed_ms = std::chrono::duration<double, std::milli>(*first_ok_after - back).count();
    EXPECT_LT(resumed_ms, 2000.0);
    EXPECT_EQ(after_failures, 0) << "once back, every request succeeds";
    EXPECT_TRUE(s.alive());
    std::cout << "outage of " << outage_s << " s under 4 clients: " << before << " ok before, " << during
              << " answered 503/5001 during (p99 " << p99 << " ms), served again " << resumed_ms
              << " ms after the database returned" << std::endl;
}

}  // namespace
}  // namespace certctrl::test
