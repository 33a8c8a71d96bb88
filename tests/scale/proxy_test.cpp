// Three certctrl-server instances on one database behind a real HAProxy (round robin, active health checks on
// /ready, X-Forwarded-For set by the proxy): sessions and rate limits hold across instances, the client's
// address reaches the logs, a long-poll and a WebSocket held by one instance wake on a change made through
// another, and an instance killed with SIGKILL costs no failed request.
#include "api_fixture.hpp"
#include "process.hpp"
#include "ws_client.hpp"

#include "certctrl/core/hex.hpp"

#include <boost/asio.hpp>

#include <atomic>
#include <csignal>
#include <ctime>
#include <fstream>
#include <future>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;

// One plain HTTP/1.1 request from `source` (another loopback address, so the proxy sees another client).
std::string request_from(std::string const& source, std::uint16_t port, std::string const& head) {
    asio::io_context ioc;
    asio::ip::tcp::socket s(ioc);
    s.open(asio::ip::tcp::v4());
    s.bind({asio::ip::make_address(source), 0});
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    asio::write(s, asio::buffer(head));
    std::string out;
    boost::system::error_code ec;
    std::array<char, 4096> buf{};
    for (;;) {
        auto n = s.read_some(asio::buffer(buf), ec);
        out.append(buf.data(), n);
        if (ec) {
            break;
        }
    }
    return out;
}

class Proxy : public api_fixture {
  protected:
    void SetUp() override {
        api_fixture::SetUp();
        if (!std::filesystem::exists("/usr/sbin/haproxy")) {
            if (in_ci()) {
                FAIL() << "/usr/sbin/haproxy is missing: scripts/test.sh installs haproxy";
            }
            GTEST_SKIP() << "haproxy is missing; run through scripts/test.sh";
        }
    }
    void TearDown() override {
        if (haproxy_pid_ > 0) {
            ::kill(haproxy_pid_, SIGTERM);
            wait_process(haproxy_pid_, std::chrono::seconds(5));
        }
        instances_.clear();
        api_fixture::TearDown();
    }

    // Three instances on fixed ports (so one can be restarted where the proxy expects it), then HAProxy.
    void start_cluster(unsigned api_per_minute) {
        start(json::object{{"server", {{"trusted_proxies", json::array{"127.0.0.1"}}}},
                           {"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", api_per_minute}}}});
        for (int i = 0; i < 3; ++i) {
            auto cfg = server_config_;
            cfg["server"].as_object()["port"] = free_port();
            configs_.push_back(cfg);
            instances_.push_back(std::make_unique<server_process>(cfg, schema_->db().password));
        }
        proxy_port_ = free_port();
        std::ostringstream conf;
        conf << "global\n  maxconn 2048\n"
             << "defaults\n  mode http\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n"
             << "  timeout tunnel 1h\n  retries 2\n  option redispatch\n  retry-on conn-failure "
                "empty-response\n"
             << "  default-server inter 300ms fall 2 rise 2\n"
             << "frontend api\n  bind 127.0.0.1:" << proxy_port_ << "\n"
             << "  http-request set-header X-Forwarded-For %[src]\n  default_backend certctrl\n"
             << "backend certctrl\n  balance roundrobin\n  option httpchk GET /ready\n"
             << "  http-check expect status 200\n";
        for (std::size_t i = 0; i < configs_.size(); ++i) {
            conf << "  server i" << i
                 << " 127.0.0.1:" << configs_[i].at("server").at("port").to_number<std::int64_t>()
                 << " check\n";
        }
        std::ofstream(dir_.path() / "haproxy.cfg") << conf.str();
        haproxy_pid_ =
            spawn_process({"/usr/sbin/haproxy", "-db", "-f", (dir_.path() / "haproxy.cfg").string()}, {},
                          dir_.path() / "haproxy.log");
        // Up when each instance has answered a request through it.
        auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
        while (std::chrono::steady_clock::now() < until) {
            try {
                http_client c(proxy_port_);
                if (c.get("/health").status == 200 && served_all("GET /health")) {
                    return;
                }
            } catch (std::exception const&) {
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        FAIL() << "HAProxy did not come up";
    }

    bool served_all(std::string const& what) const {
        for (auto const& s : instances_) {
            if (s->log().find(what) == std::string::npos) {
                return false;
            }
        }
        return true;
    }

    http_response via(std::string const& method, std::string const& target, headers h = {},
                      std::string const& body = "") {
        http_client c(proxy_port_);
        if (!body.empty() && !h.contains("Content-Type")) {
            h["Content-Type"] = "application/json";
        }
        return c.request(method, target, body, h);
    }

    std::vector<json::object> configs_;
    std::vector<std::unique_ptr<server_process>> instances_;
    std::uint16_t proxy_port_ = 0;
    int haproxy_pid_ = -1;
};

TEST_F(Proxy, SessionsLimitsAndClientAddressesHoldAcrossThreeInstances) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(30));
    auto uid = add_user("proxied@example.com");
    // A session made through one instance works on every one.
    auto login =
        via("POST", "/auth/general", {},
            R"({"action":"login","email":"proxied@example.com","password":"correct-horse-battery"})");
    ASSERT_EQ(login.status, 200) << login.body;
    std::smatch m;
    std::string const set_cookie = login.header("set-cookie");
    ASSERT_TRUE(std::regex_search(set_cookie, m, std::regex("cjj365=([0-9a-f]{64})")));
    std::string const list = "/apiv1/users/" + std::to_string(uid) + "/apikeys";
    for (int i = 0; i < 6; ++i) {
        EXPECT_EQ(via("GET", list, {{"Cookie", "cjj365=" + m[1].str()}}).status, 200);
    }
    EXPECT_TRUE(served_all("GET " + list)) << "round robin reached every instance with the session";

    // The user's budget is one budget, whichever instance counts it: 45 requests against 30 a minute, paced
    // over about 3 s. Instances share their counts every 250 ms, so each may admit what came to it since its
    // last sync (docs/operator-guide.md): a few over, never three budgets. The windows are fixed minutes, so
    // the loop runs inside one (a loop across a boundary may admit 30 in each).
    add_user("limited@example.com");
    auto key = key_for("limited@example.com", {"certificates:*[read]"});
    auto const window = wait_for_room_in_window(20);
    int ok = 0;
    int limited = 0;
    for (int i = 0; i < 45; ++i) {
        auto r = via("GET", "/apiv1/me/certificates", bearer(key));
        ok += r.status == 200;
        limited += r.status == 429;
        std::this_thread::sleep_for(std::chrono::milliseconds(70));
    }
    EXPECT_GE(ok, 30);
    EXPECT_LE(ok, 36) << "instances admitting on their own would let all 45 through";
    EXPECT_EQ(ok + limited, 45);
    ASSERT_EQ(std::time(nullptr) / 60 * 60, window)
        << "the loop outran its 20 s and crossed into another minute";
    std::cout << ok << " of 45 admitted against a budget of 30 shared by three instances" << std::endl;

    // The client's address, as the proxy saw it, is what the instances log; a forged header is replaced.
    std::string const head =
        "GET /health HTTP/1.1\r\nHost: certctrl\r\nX-Forwarded-For: 203.0.113.9\r\n"
        "Connection: close\r\n\r\n";
    for (int i = 0; i < 3; ++i) {
        EXPECT_NE(request_from("127.0.0.2", proxy_port_, head).find("200 OK"), std::string::npos);
    }
    std::string logs;
    for (auto const& s : instances_) {
        logs += s->log();
    }
    EXPECT_NE(logs.find("access api 127.0.0.2 GET /health"), std::string::npos);
    EXPECT_EQ(logs.find("203.0.113.9"), std::string::npos);
}

TEST_F(Proxy, ALongPollAndAWebSocketWakeOnAChangeMadeThroughAnotherInstance) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(100000));
    add_user("fleet@example.com");
    auto reg = key_for("fleet@example.com", {"ForDeviceAuthenticate:*[authenticate]"});
    auto key = key_for("fleet@example.com", {"devices:*[read,write,exec]"});
    std::string pk(32, '\0');
    for (std::size_t i = 0; i < pk.size(); ++i) {
        pk[i] = static_cast<char>(i * 7 + 1);
    }
    json::object body{{"device_public_id", "5b0c7a1e-3d2f-4c8b-9a6e-1f2d3c4b5a69"},
                      {"platform", "linux"},
                      {"model", "x86_64"},
                      {"app_version", "1.0"},
                      {"name", "behind-proxy"},
                      {"ip", "unknown"},
                      {"user_agent", "test"},
                      {"dev_pk", base64_encode(pk)}};
    auto r = via("POST", "/apiv1/me/devices", bearer(reg), json::serialize(body));
    ASSERT_EQ(r.status, 201) << r.body;
    auto const data = r.json().at("data");
    std::string const token(data.at("session").at("access_token").as_string());
    auto const device_id = std::to_string(data.at("device").at("id").as_int64());
    // The feed's current end, then a long-poll from there.
    auto first = via("GET", "/apiv1/devices/self/updates", bearer(token));
    std::string cursor =
        first.status == 200 ? std::string(first.json().at("data").at("cursor").as_string()) : "";
    auto waiting = std::async(std::launch::async, [&] {
        return via("GET", "/apiv1/devices/self/updates?wait=20" + (cursor.empty() ? "" : "&cursor=" + cursor),
                   bearer(token));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    auto const changed = std::chrono::steady_clock::now();
    // Three writes, so at least one is served by an instance other than the one holding the poll.
    for (int i = 0; i < 3; ++i) {
        auto put = via("PUT", "/apiv1/me/devices/" + device_id + "/install-config", bearer(key),
                       R"({"installs":[{"id":"r","type":"exec","cmd":"true"}],"change_note":"n)" +
                           std::to_string(i) + R"("})");
        ASSERT_EQ(put.status, 200) << put.body;
    }
    auto woke = waiting.get();
    auto const ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - changed)
            .count();
    ASSERT_EQ(woke.status, 200) << woke.body;
    EXPECT_NE(woke.body.find("install.updated"), std::string::npos) << woke.body;
    EXPECT_LT(ms, 5000) << "woke " << ms << " ms after the change";
    std::cout << "long-poll through HAProxy woke " << ms << " ms after the change" << std::endl;

    // The agent's default mode, a WebSocket, through the proxy too: hello, then a signal for a change made
    // through whichever instance the next requests reach.
    ws_client ws;
    ASSERT_TRUE(ws.connect(proxy_port_, "/api/websocket/" + device_id, token))
        << ws.http_status << " " << ws.handshake_body;
    auto hello = ws.next();
    ASSERT_TRUE(hello);
    EXPECT_EQ((*hello)["name"], "lifecycle.hello");
    ws.send(json::object{{"type", "event"},
                         {"name", "lifecycle.hello_ack"},
                         {"payload", {{"connection_id", hello->at("payload").at("connection_id")}}}});
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(via("PUT", "/apiv1/me/devices/" + device_id + "/install-config", bearer(key),
                      R"({"installs":[{"id":"w","type":"exec","cmd":"true"}],"change_note":"ws)" +
                          std::to_string(i) + R"("})")
                      .status,
                  200);
    }
    bool signalled = false;
    for (auto m = ws.next(std::chrono::seconds(5)); m && !signalled; m = ws.next(std::chrono::seconds(5))) {
        signalled = (*m)["name"] == "updates.signal";
    }
    EXPECT_TRUE(signalled) << "an updates.signal through the proxy's WebSocket tunnel";
}

TEST_F(Proxy, AnInstanceKilledMidLoadCostsNoFailedRequestAndComesBack) {
    ASSERT_NO_FATAL_FAILURE(start_cluster(100000));
    add_user("steady@example.com");
    auto key = key_for("steady@example.com", {"certificates:*[read]"});
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0};
    std::atomic<int> failed{0};
    std::string last_failure;
    std::mutex mu;
    auto load = std::async(std::launch::async, [&] {
        while (!stop) {
            try {
                auto r = via("GET", "/apiv1/me/certificates", bearer(key));
                if (r.status == 200) {
                    ++ok;
                    continue;
                }
                std::lock_guard lock(mu);
                last_failure = std::to_string(r.status) + " " + r.body;
            } catch (std::exception const& e) {
                std::lock_guard lock(mu);
                last_failure = e.what();
            }
            ++failed;
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    instances_[1]->stop(SIGKILL);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    // Back on its port: the health check puts it into rotation again.
    instances_[1] = std::make_unique<server_process>(configs_[1], schema_->db().password);
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until &&
           instances_[1]->log().find("GET /apiv1/me/certificates") == std::string::npos) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop = true;
    load.get();
    EXPECT_EQ(failed.load(), 0) << last_failure;
    EXPECT_GT(ok.load(), 50);
    EXPECT_NE(instances_[1]->log().find("GET /apiv1/me/certificates"), std::string::npos)
        << "the restarted instance serves again";
    std::cout << ok.load() << " requests through the proxy while an instance was killed and restarted, "
              << failed.load() << " failed" << std::endl;
}

}  // namespace
}  // namespace certctrl::test
