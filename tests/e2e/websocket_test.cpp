// End to end: the agent's default update channel, the WebSocket of agent contract 6.3, played with a client
// written from the contract against the real binary and MariaDB: hello, hello_ack with a resume token,
// replay, live signals, ack, ping/pong, a reconnect to a second instance that neither loses nor repeats a
// signal, the aliases, and every way the server ends a socket (revocation, token expiry, a newer socket).
#include "api_fixture.hpp"
#include "ws_client.hpp"

#include "certctrl/core/hex.hpp"

#include <sodium.h>

#include <chrono>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;

struct device {
    std::int64_t id = 0;
    std::string access;
    std::string refresh;
};

class WebSocket : public api_fixture {
  protected:
    void start_ws(json::object devices = {}) {
        devices["updates_kept_per_device"] = devices.contains("updates_kept_per_device")
                                                 ? devices["updates_kept_per_device"]
                                                 : json::value(1000);
        start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
                           {"devices", devices}});
        uid_ = add_user("ws@example.com");
        key_ = key_for("ws@example.com",
                       {"ForDeviceAuthenticate:*[authenticate]", "devices:*[read,write,exec]"});
    }

    // An agent registered with the provisioning key (agent contract 2.3 step 5).
    device register_agent(std::string const& public_id) {
        EXPECT_GE(sodium_init(), 0);
        std::string pk(crypto_box_PUBLICKEYBYTES, '\0');
        std::string sk(crypto_box_SECRETKEYBYTES, '\0');
        crypto_box_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                           reinterpret_cast<unsigned char*>(sk.data()));
        json::object body{{"device_public_id", public_id},
                          {"platform", "linux"},
                          {"model", "x86_64"},
                          {"app_version", "1.2.3"},
                          {"name", "web"},
                          {"ip", "unknown"},
                          {"user_agent", "cert-ctrl/1.2.3"},
                          {"dev_pk", base64_encode(pk)}};
        auto r = call("POST", "/apiv1/me/devices", key_, json::serialize(body));
        EXPECT_EQ(r.status, 201) << r.body;
        device d;
        auto const doc = r.json();
        d.id = doc.at("data").at("device").at("id").as_int64();
        d.access = std::string(doc.at("data").at("session").at("access_token").as_string());
        d.refresh = std::string(doc.at("data").at("session").at("refresh_token").as_string());
        return d;
    }

    // One signal (install.updated) on the device's feed.
    void change(device const& d, int n) {
        auto r = call("PUT", "/apiv1/me/devices/" + std::to_string(d.id) + "/install-config", key_,
                      R"({"installs":[{"id":"x","type":"exec","cmd":"echo )" + std::to_string(n) + R"("}]})");
        ASSERT_EQ(r.status, 200) << r.body;
    }

    // Connects and checks lifecycle.hello: its connection id.
    std::string open(ws_client& c, device const& d, std::uint16_t port = 0, std::string path = "") {
        if (path.empty()) {
            path = "/api/websocket/" + std::to_string(d.id);
        }
        EXPECT_TRUE(c.connect(port == 0 ? server_->port() : port, path, d.access))
            << c.http_status << " " << c.handshake_body;
        auto hello = c.next();
        EXPECT_TRUE(hello) << "lifecycle.hello";
        if (!hello) {
            return "";
        }
        EXPECT_EQ((*hello)["type"], "event");
        EXPECT_EQ((*hello)["name"], "lifecycle.hello");
        std::string cid(hello->at("payload").at("connection_id").as_string());
        EXPECT_FALSE(cid.empty());
        return cid;
    }

    static void ack_hello(ws_client& c, std::string const& cid, std::string const& resume) {
        c.send(json::object{{"type", "event"},
                            {"name", "lifecycle.hello_ack"},
                            {"payload", {{"connection_id", cid}, {"resume_token", resume}}}});
    }

    // The updates.signal messages that arrive within `wait` (acking each, as the agent does).
    static std::vector<json::object> signals(ws_client& c, std::chrono::milliseconds wait,
                                             std::size_t want = 0) {
        std::vector<json::object> out;
        auto const until = std::chrono::steady_clock::now() + wait;
        while (std::chrono::steady_clock::now() < until && (want == 0 || out.size() < want)) {
            auto m = c.next(std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now()));
            if (!m) {
                break;
            }
            if ((*m)["name"] != "updates.signal") {
                continue;
            }
            EXPECT_EQ((*m)["type"], "event");
            EXPECT_FALSE(m->at("id").as_string().empty()) << "the agent acks only a non-empty id";
            EXPECT_EQ((*m)["id"], (*m)["resume_token"]);
            EXPECT_TRUE(m->at("payload").at("ts_ms").is_int64());
            c.send(json::object{{"type", "event"},
                                {"name", "updates.ack"},
                                {"id", m->at("id")},
                                {"resume_token", m->at("id")},
                                {"payload", json::object{}}});
            out.push_back(std::move(*m));
        }
        return out;
    }

    static std::int64_t id_num(json::object const& m) {
        return std::stoll(std::string(m.at("id").as_string()));
    }

    std::int64_t uid_ = 0;
    std::string key_;
};

TEST_F(WebSocket, HelloAckReplaysThenStreamsLiveAndResumesOnAnotherInstanceWithoutLossOrRepeat) {
    start_ws();
    device d = register_agent("0b5f1c2e-6a7d-4e8f-9a0b-1c2d3e4f5a6b");
    change(d, 1);
    change(d, 2);

    ws_client c;
    std::string const cid = open(c, d);
    // Nothing is streamed before the hello_ack.
    EXPECT_FALSE(c.next(std::chrono::milliseconds(500))) << "a signal before lifecycle.hello_ack";
    ack_hello(c, cid, "");
    auto replay = signals(c, std::chrono::seconds(5), 2);
    ASSERT_EQ(replay.size(), 2u);
    EXPECT_EQ(replay[0].at("payload").at("type"), "install.updated");
    EXPECT_EQ(replay[0].at("payload").at("ref").at("version").as_int64(), 1);
    EXPECT_EQ(replay[1].at("payload").at("ref").at("version").as_int64(), 2);
    EXPECT_LT(id_num(replay[0]), id_num(replay[1]));

    // ping/pong keeps the agent's keepalive happy.
    c.send(json::object{{"type", "ping"}});
    auto pong = c.next();
    ASSERT_TRUE(pong);
    EXPECT_EQ((*pong)["type"], "pong");

    // A change reaches the open socket; the time it takes is printed (docs/benchmarks.md).
    auto const changed_at = std::chrono::steady_clock::now();
    change(d, 3);
    auto live = signals(c, std::chrono::seconds(5), 1);
    auto const ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - changed_at)
            .count();
    ASSERT_EQ(live.size(), 1u);
    EXPECT_EQ(live[0].at("payload").at("ref").at("version").as_int64(), 3);
    std::cout << "signal on the socket " << ms << " ms after the change" << std::endl;
    std::string const resume(live[0].at("id").as_string());
    c.close();

    // Two changes while the agent is away; it comes back to another instance with its resume token.
    change(d, 4);
    change(d, 5);
    auto other = another_instance();
    ws_client c2;
    std::string const cid2 = open(c2, d, other->port());
    EXPECT_NE(cid2, cid);
    ack_hello(c2, cid2, resume);
    auto resumed = signals(c2, std::chrono::seconds(5), 2);
    ASSERT_EQ(resumed.size(), 2u);
    EXPECT_EQ(resumed[0].at("payload").at("ref").at("version").as_int64(), 4);
    EXPECT_EQ(resumed[1].at("payload").at("ref").at("version").as_int64(), 5);
    EXPECT_GT(id_num(resumed[0]), std::stoll(resume));
    // And nothing repeats after them; a change made through the first instance arrives on the second.
    EXPECT_TRUE(signals(c2, std::chrono::milliseconds(700)).empty()) << "a repeated signal";
    change(d, 6);
    auto after = signals(c2, std::chrono::seconds(5), 1);
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].at("payload").at("ref").at("version").as_int64(), 6);

    // The HTTP poll and the socket read the same feed: the same ids.
    auto polled = call("GET", "/apiv1/devices/self/updates?cursor=" + resume, d.access);
    ASSERT_EQ(polled.status, 200) << polled.body;
    auto const pd = polled.json();
    EXPECT_EQ(pd.at("data").at("cursor").as_string(), after[0].at("id").as_string());
    c2.close();
}

TEST_F(WebSocket, AliasesTokensAndTheDeviceInThePathAreChecked) {
    start_ws();
    device d = register_agent("1c6a2d3f-7b8e-4f90-8a1b-2c3d4e5f6a7b");
    device other = register_agent("2d7b3e4a-8c9f-4a01-9b2c-3d4e5f6a7b8c");
    std::string const id = std::to_string(d.id);

    ws_client none;
    EXPECT_FALSE(none.connect(server_->port(), "/api/websocket/" + id, ""));
    EXPECT_EQ(none.http_status, 401) << none.handshake_body;
    ws_client bad;
    EXPECT_FALSE(bad.connect(server_->port(), "/api/websocket/" + id, d.access + "x"));
    EXPECT_EQ(bad.http_status, 401);
    ws_client foreign;
    EXPECT_FALSE(foreign.connect(server_->port(), "/api/websocket/" + std::to_string(other.id), d.access));
    EXPECT_EQ(foreign.http_status, 403) << "another device's socket";
    // A plain GET (no upgrade) is told what the route speaks.
    auto plain = call("GET", "/api/websocket/" + id, d.access);
    EXPECT_EQ(plain.status, 400) << plain.body;

    // ?device_id=, /api/tunnel and ?token= reach the same feed.
    change(d, 1);
    for (std::string const& path :
         std::vector<std::string>{"/api/websocket?device_id=" + id, "/api/tunnel/" + id, "/api/tunnel"}) {
        ws_client c;
        std::string const cid = open(c, d, 0, path);
        ack_hello(c, cid, "");
        EXPECT_EQ(signals(c, std::chrono::seconds(5), 1).size(), 1u) << path;
        c.close();
    }
    ws_client q;
    ASSERT_TRUE(q.connect(server_->port(), "/api/websocket/" + id + "?token=" + d.access, ""))
        << q.http_status << " " << q.handshake_body;
    auto hello = q.next();
    ASSERT_TRUE(hello);
    EXPECT_EQ((*hello)["name"], "lifecycle.hello");
    q.close();
}

TEST_F(WebSocket, RevocationClosesTheSocketWithinASecondAndANewerSocketReplacesTheOlder) {
    start_ws();
    device d = register_agent("3e8c4f5b-9d0a-4b12-8c3d-4e5f6a7b8c9d");
    ws_client first;
    std::string const cid = open(first, d);
    ack_hello(first, cid, "");
    ws_client second;
    std::string const cid2 = open(second, d);
    ack_hello(second, cid2, "");
    ASSERT_TRUE(first.wait_closed(std::chrono::seconds(3)));
    EXPECT_EQ(first.close_code, 4409) << first.close_reason;

    auto const revoked_at = std::chrono::steady_clock::now();
    auto r = call("PUT", "/apiv1/me/devices/" + std::to_string(d.id), key_, R"({"status":"REVOKED"})");
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(second.wait_closed(std::chrono::seconds(5))) << "a revoked device's socket stays open";
    auto const ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - revoked_at)
            .count();
    EXPECT_EQ(second.close_code, 4403) << second.close_reason;
    std::cout << "revoked socket closed " << ms << " ms after the revocation" << std::endl;
    ws_client again;
    EXPECT_FALSE(again.connect(server_->port(), "/api/websocket/" + std::to_string(d.id), d.access));
    EXPECT_EQ(again.http_status, 403);
}

TEST_F(WebSocket, AnExpiredTokenClosesWith4401AndAStaleResumeTokenResyncs) {
    start_ws(json::object{{"access_token_ttl_seconds", 5}, {"updates_kept_per_device", 2}});
    device d = register_agent("4f9d5a6c-0e1b-4c23-9d4e-5f6a7b8c9d0e");
    change(d, 1);
    auto first = call("GET", "/apiv1/devices/self/updates", d.access);
    ASSERT_EQ(first.status, 200) << first.body;
    auto const fd = first.json();
    std::string const old_cursor(fd.at("data").at("cursor").as_string());
    for (int i = 2; i <= 4; ++i) {
        change(d, i);
    }
    ws_client c;
    std::string const cid = open(c, d);
    ack_hello(c, cid, old_cursor);
    auto got = signals(c, std::chrono::seconds(5), 3);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].at("payload").at("type"), "state.resync_required");
    EXPECT_EQ(got[0].at("payload").at("ref").at("action"), "full_resync");
    EXPECT_EQ(got[1].at("payload").at("ref").at("version").as_int64(), 3) << "then what the feed keeps";
    EXPECT_EQ(got[2].at("payload").at("ref").at("version").as_int64(), 4);

    // The 5 s token ends the socket with the documented code; the agent refreshes and comes back.
    ASSERT_TRUE(c.wait_closed(std::chrono::seconds(10)));
    EXPECT_EQ(c.close_code, 4401) << c.close_reason;
    auto refreshed = call("POST", "/auth/refresh", headers{}, R"({"refresh_token":")" + d.refresh + R"("})");
    ASSERT_EQ(refreshed.status, 200) << refreshed.body;
    device fresh = d;
    auto const rd = refreshed.json();
    fresh.access = std::string(rd.at("data").at("access_token").as_string());
    ws_client back;
    std::string const cid2 = open(back, fresh);
    ack_hello(back, cid2, std::string(got[2].at("id").as_string()));
    EXPECT_TRUE(signals(back, std::chrono::milliseconds(700)).empty());
    back.close();
}

// The very first signal a fresh server's feed ever holds reaches an open socket (the notifier's starting
// point must not swallow it).
TEST_F(WebSocket, TheFirstSignalOfAFreshFeedArrivesLive) {
    start_ws();
    device d = register_agent("5a0e6b7d-1f2c-4d34-8e5f-6a7b8c9d0e1f");
    ws_client c;
    std::string const cid = open(c, d);
    ack_hello(c, cid, "");
    EXPECT_TRUE(signals(c, std::chrono::milliseconds(500)).empty());
    change(d, 1);
    auto first = signals(c, std::chrono::seconds(5), 1);
    ASSERT_EQ(first.size(), 1u) << "the feed's first signal";
    change(d, 2);
    EXPECT_EQ(signals(c, std::chrono::seconds(5), 1).size(), 1u);
    c.close();
}

// Agent settings edited through the API reach the agent as config.updated (agent contract 6.2); changing
// them is as powerful as a command on the agent, so it needs [exec] and devices.allow_commands.
TEST_F(WebSocket, AgentSettingsEditedThroughTheApiArriveAsConfigUpdated) {
    start_ws();
    device d = register_agent("6b1f7c8e-2a3d-4e45-9f6a-7b8c9d0e1f2a");
    auto writer = key_for("ws@example.com", {"devices:*[read,write]"});
    ws_client c;
    std::string const cid = open(c, d);
    ack_hello(c, cid, "");
    std::string const path = "/apiv1/me/devices/" + std::to_string(d.id) + "/agent-config";
    std::string const body =
        R"({"reason":"poll less","replace":[{"file":"websocket","content":{"enabled":true,"ping_interval_seconds":30}}]})";
    EXPECT_EQ(call("PUT", path, writer, body).status, 403) << "[write] is not enough";
    auto ok = call("PUT", path, key_, body);
    ASSERT_EQ(ok.status, 200) << ok.body;
    auto got = signals(c, std::chrono::seconds(5), 1);
    ASSERT_EQ(got.size(), 1u);
    auto const& p = got[0].at("payload");
    EXPECT_EQ(p.at("type"), "config.updated");
    EXPECT_EQ(p.at("ref").at("reason"), "poll less");
    EXPECT_EQ(p.at("ref").at("replace").at(0).at("file"), "websocket");
    EXPECT_EQ(p.at("ref").at("replace").at(0).at("content").at("ping_interval_seconds").as_int64(), 30);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'device.agent_config'"), 1);
    for (std::string bad :
         {R"({"replace":[]})", R"({"replace":[{"file":"passwd","content":{}}]})",
          R"({"replace":[{"file":"application","content":"x"}]})",
          R"({"replace":[{"file":"websocket","content":{}},{"file":"websocket","content":{}}]})"}) {
        EXPECT_EQ(call("PUT", path, key_, bad).status, 400) << bad;
    }
    EXPECT_EQ(call("PUT", "/apiv1/me/devices/999999/agent-config", key_, body).status, 404);
    c.close();
}

// A client that floods messages (each may cost a pong or a database write) is cut off with 1008, and the
// device's next socket works.
TEST_F(WebSocket, AMessageFloodClosesTheSocketWith1008) {
    start_ws();
    device d = register_agent("7c2a8d9f-3b4e-4f56-8a7b-9c0d1e2f3a4b");
    ws_client flood;
    std::string const cid = open(flood, d);
    ack_hello(flood, cid, "");
    for (int i = 0; i < 400 && !flood.closed; ++i) {
        flood.send(json::object{{"type", "ping"}});
    }
    ASSERT_TRUE(flood.wait_closed(std::chrono::seconds(5)));
    EXPECT_EQ(flood.close_code, 1008) << flood.close_reason;
    EXPECT_EQ(flood.close_reason, "too many messages");

    ws_client ok;
    std::string const cid2 = open(ok, d);
    ack_hello(ok, cid2, "");
    change(d, 1);
    EXPECT_EQ(signals(ok, std::chrono::seconds(5), 1).size(), 1u) << "a new socket of the device still works";
    ok.close();
}

}  // namespace
}  // namespace certctrl::test
