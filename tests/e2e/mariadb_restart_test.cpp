// End to end: MariaDB is stopped and started again under a running server. Requests fail cleanly
// (503, code 5001) during the outage and succeed afterwards, without restarting the server.
#include "http_client.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <gtest/gtest.h>

#include <thread>

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

}  // namespace
}  // namespace certctrl::test
