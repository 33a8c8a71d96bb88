// End to end: webhook subscriptions against the real binary and MariaDB, delivering to a real local HTTPS
// receiver: each event once per subscription with a valid Standard Webhooks signature, retries with backoff,
// giving up and redelivering, a kill -9 in the middle of a delivery, expiry warnings at the thresholds, and
// subscriptions that are disabled, deleted or another user's.
#include "api_fixture.hpp"
#include "process.hpp"
#include "webhook_sink.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"

#include <condition_variable>
#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;
namespace http = boost::beast::http;

// The receiver: answers by path, records what came. `fail(path, n)` answers 500 to the next n requests of a
// path; `hold()` keeps the next request waiting until release().
class receiver {
  public:
    explicit receiver(std::filesystem::path const& root)
        : stub_(root, [this](https_stub::request const& req) { return answer(req); }) {}

    std::string url(std::string const& path) const { return stub_.url(path); }
    void fail(std::string const& path, int n, unsigned status = 500) {
        std::lock_guard lock(mu_);
        failures_[path] = {n, status};
    }
    /// Every request to `path` gets `res`.
    void answer_with(std::string const& path, https_stub::response res) {
        std::lock_guard lock(mu_);
        canned_[path] = std::move(res);
    }
    void hold() {
        std::lock_guard lock(mu_);
        hold_next_ = true;
    }
    bool holding() const {
        std::lock_guard lock(mu_);
        return held_;
    }
    void release() {
        std::lock_guard lock(mu_);
        hold_next_ = false;
        held_ = false;
        cv_.notify_all();
    }
    /// Requests to `path` so far (target without query).
    std::vector<https_stub::request> to(std::string const& path) const {
        std::vector<https_stub::request> out;
        for (auto const& r : stub_.requests()) {
            if (std::string(r.target()) == path) {
                out.push_back(r);
            }
        }
        return out;
    }

  private:
    https_stub::response answer(https_stub::request const& req) {
        std::unique_lock lock(mu_);
        https_stub::response res;
        if (hold_next_) {
            hold_next_ = false;
            held_ = true;
            cv_.wait_for(lock, std::chrono::seconds(30), [this] { return !held_; });
        }
        if (auto it = canned_.find(std::string(req.target())); it != canned_.end()) {
            return it->second;
        }
        auto& f = failures_[std::string(req.target())];
        if (f.first > 0) {
            --f.first;
            res.result(f.second);
            res.body() = "not now";
            return res;
        }
        res.result(http::status::no_content);
        return res;
    }

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::map<std::string, std::pair<int, unsigned>> failures_;
    std::map<std::string, https_stub::response> canned_;
    bool hold_next_ = false;
    bool held_ = false;
    https_stub stub_;  // last: its thread stops before the members it calls into go
};

std::vector<std::string> const scopes = {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                         "certificates:*[read,write,issue]", "webhooks:*[read,write]"};

class Webhooks : public api_fixture {
  protected:
    void SetUp() override {
        api_fixture::SetUp();
        rx_ = std::make_unique<receiver>(dir_.path() / "receiver-root.pem");
    }

    void start_hooks(json::object webhooks = {}) {
        json::object w{{"ca_file", (dir_.path() / "receiver-root.pem").string()},
                       {"timeout_ms", 2000},
                       {"poll_interval_ms", 50},
                       {"retry_initial_ms", 200},
                       {"retry_max_ms", 1000},
                       {"expiry_check_seconds", 1}};
        for (auto const& kv : webhooks) {
            w[kv.key()] = kv.value();
        }
        start_with_metrics(json::object{{"rate_limits",
                                         {{"auth_per_minute", 1000},
                                          {"api_per_minute", 100000},
                                          {"issuance_per_hour", 1000},
                                          {"self_ca_issuance_per_hour", 1000}}},
                                        {"egress", {{"allow", json::array{"127.0.0.1/32"}}}},
                                        {"webhooks", w}});
    }

    // A SELF_CA account of the key's user whose certificates live `valid_seconds`.
    std::int64_t self_ca(std::string const& key, std::int64_t valid_seconds = 86400 * 90) {
        auto ca = call("POST", "/apiv1/me/cas", key, R"({"common_name":"Hooks root","valid_days":365})");
        EXPECT_EQ(ca.status, 200) << ca.body;
        auto acct = call("POST", "/apiv1/me/acme-accounts", key,
                         R"({"name":"self","provider":"SELF_CA","ca_id":)" + std::to_string(id_of(ca)) +
                             R"(,"cert_valid_seconds":)" + std::to_string(valid_seconds) + "}");
        EXPECT_EQ(acct.status, 200) << acct.body;
        return id_of(acct);
    }
    std::int64_t cert(std::string const& key, std::int64_t acct, std::string const& name) {
        auto r = call("POST", "/apiv1/me/certificates", key,
                      R"({"domain_name":")" + name + R"(","acct_id":)" + std::to_string(acct) + "}");
        EXPECT_EQ(r.status, 200) << r.body;
        return id_of(r);
    }
    void issue(std::string const& key, std::int64_t cert_id) {
        auto r = call("POST", "/apiv1/me/certificates/" + std::to_string(cert_id) + "/issues", key, "{}");
        ASSERT_EQ(r.status, 200) << r.body;
        ASSERT_EQ(r.json().at("data").at("status").as_string(), "SUCCESS") << r.body;
    }
    // Creates a subscription; returns {id, secret}.
    std::pair<std::int64_t, std::string> subscribe(std::string const& key, std::string const& body) {
        auto r = call("POST", "/apiv1/me/webhooks", key, body);
        EXPECT_EQ(r.status, 201) << r.body;
        if (r.status != 201) {
            return {0, ""};
        }
        return {id_of(r), std::string(r.json().at("data").at("secret").as_string())};
    }
    // Waits until `path` received at least `n` requests (or `limit` passed); returns them.
    std::vector<https_stub::request> wait_for(std::string const& path, std::size_t n,
                                              std::chrono::seconds limit = std::chrono::seconds(20)) {
        auto const until = std::chrono::steady_clock::now() + limit;
        while (rx_->to(path).size() < n && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return rx_->to(path);
    }
    json::object delivery(std::string const& key, std::int64_t hook, std::int64_t id) {
        auto r = call(
            "GET", "/apiv1/me/webhooks/" + std::to_string(hook) + "/deliveries/" + std::to_string(id), key);
        EXPECT_EQ(r.status, 200) << r.body;
        return r.status == 200 ? r.json().at("data").as_object() : json::object{};
    }
    // Waits until the delivery is no longer PENDING; returns it.
    json::object finished(std::string const& key, std::int64_t hook, std::int64_t id,
                          std::chrono::seconds limit = std::chrono::seconds(20)) {
        auto const until = std::chrono::steady_clock::now() + limit;
        json::object d = delivery(key, hook, id);
        while (d.contains("status") && d.at("status").as_string() == "PENDING" &&
               std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            d = delivery(key, hook, id);
        }
        return d;
    }
    // A ping of `hook`, followed until its delivery is no longer PENDING; the delivery.
    json::object pinged(std::string const& key, std::int64_t hook) {
        auto ping = call("POST", "/apiv1/me/webhooks/" + std::to_string(hook) + "/ping", key);
        EXPECT_EQ(ping.status, 202) << ping.body;
        return ping.status == 202 ? finished(key, hook, id_of(ping)) : json::object{};
    }
    static json::object body_of(https_stub::request const& r) { return json::parse(r.body()).as_object(); }
    static std::string type_of(https_stub::request const& r) {
        return std::string(body_of(r).at("type").as_string());
    }

    std::unique_ptr<receiver> rx_;
};

TEST_F(Webhooks, EachEventArrivesOncePerSubscriptionSignedAndDisabledOrDeletedOnesGetNothing) {
    start_hooks();
    add_user("hooks@example.com");
    auto key = key_for("hooks@example.com", scopes);
    auto acct = self_ca(key);
    auto c1 = cert(key, acct, "one.example.com");
    auto c2 = cert(key, acct, "two.example.com");

    auto [all, all_secret] = subscribe(key, R"({"url":")" + rx_->url("/all") + R"(","events":["*"]})");
    auto [only, only_secret] = subscribe(key, R"({"url":")" + rx_->url("/only") +
                                                  R"(","events":["certificate.issued"],"certificate_ids":[)" +
                                                  std::to_string(c2) + "]}");
    auto [off, off_secret] =
        subscribe(key, R"({"url":")" + rx_->url("/off") + R"(","events":["*"],"enabled":false})");
    auto [gone, gone_secret] = subscribe(key, R"({"url":")" + rx_->url("/gone") + R"(","events":["*"]})");
    ASSERT_EQ(call("DELETE", "/apiv1/me/webhooks/" + std::to_string(gone), key).status, 204);
    // The secret is shown once: never on a read.
    auto shown = call("GET", "/apiv1/me/webhooks/" + std::to_string(all), key);
    ASSERT_EQ(shown.status, 200);
    EXPECT_FALSE(shown.json().at("data").as_object().contains("secret")) << shown.body;
    EXPECT_EQ(shown.body.find(all_secret.substr(6)), std::string::npos);

    issue(key, c1);  // issued
    issue(key, c1);  // renewed
    issue(key, c2);  // issued
    ASSERT_EQ(call("DELETE", "/apiv1/me/certificates/" + std::to_string(c1), key).status, 204);

    auto got = wait_for("/all", 4);
    ASSERT_EQ(got.size(), 4u);
    std::multiset<std::string> types;
    std::set<std::string> ids;
    for (auto const& r : got) {
        EXPECT_TRUE(signature_valid(all_secret, r)) << r["webhook-signature"];
        EXPECT_FALSE(signature_valid(only_secret, r));
        auto const b = body_of(r);
        EXPECT_EQ(b.at("id").as_string(), std::string(r["webhook-id"]));
        EXPECT_NEAR(static_cast<double>(std::stoll(std::string(r["webhook-timestamp"]))),
                    static_cast<double>(std::time(nullptr)), 60);
        ids.insert(std::string(r["webhook-id"]));
        types.insert(std::string(b.at("type").as_string()));
        auto const& record = b.at("data").at("certificate").as_object();
        EXPECT_TRUE(record.contains("serial_number"));
        EXPECT_EQ(r.body().find("PRIVATE KEY"), std::string::npos);
        EXPECT_EQ(r.body().find("enc_"), std::string::npos);
    }
    EXPECT_EQ(ids.size(), 4u) << "one event id per event";
    EXPECT_EQ(types, (std::multiset<std::string>{"certificate.deleted", "certificate.issued",
                                                 "certificate.issued", "certificate.renewed"}));
    for (auto const& r : got) {
        auto const b = body_of(r);
        auto const type = std::string(b.at("type").as_string());
        auto const cid = b.at("data").at("certificate").at("id").as_int64();
        if (type == "certificate.renewed" || type == "certificate.deleted") {
            EXPECT_EQ(cid, c1);
        }
        if (type != "certificate.deleted") {
            EXPECT_GT(b.at("data").at("history_id").as_int64(), 0);
            EXPECT_EQ(b.at("data").at("certificate").at("status").as_string(), "active");
        }
    }

    auto only_got = wait_for("/only", 1);
    ASSERT_EQ(only_got.size(), 1u);
    EXPECT_EQ(type_of(only_got[0]), "certificate.issued");
    EXPECT_EQ(body_of(only_got[0]).at("data").at("certificate").at("id").as_int64(), c2);
    EXPECT_TRUE(signature_valid(only_secret, only_got[0]));

    // The log: each delivery SUCCESS after one attempt with the receiver's status.
    std::this_thread::sleep_for(
        std::chrono::milliseconds(300));  // the last outcome is recorded after the answer
    auto log = call("GET", "/apiv1/me/webhooks/" + std::to_string(all) + "/deliveries?total=true", key);
    ASSERT_EQ(log.status, 200) << log.body;
    EXPECT_EQ(log.json().at("meta").at("total").as_int64(), 4);
    log = call("GET", "/apiv1/me/webhooks/" + std::to_string(all) + "/deliveries?status=success", key);
    auto const items = log.json().at("data").as_array();
    EXPECT_EQ(items.size(), 4u) << log.body;
    for (auto const& d : items) {
        EXPECT_EQ(d.at("attempts").as_int64(), 1);
        EXPECT_EQ(d.at("last_status_code").as_int64(), 204);
    }

    // Nothing more arrives anywhere: no duplicate, nothing for the disabled or deleted subscriptions.
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    EXPECT_EQ(rx_->to("/all").size(), 4u);
    EXPECT_EQ(rx_->to("/only").size(), 1u);
    EXPECT_TRUE(rx_->to("/off").empty());
    EXPECT_TRUE(rx_->to("/gone").empty());
    auto off_log = call("GET", "/apiv1/me/webhooks/" + std::to_string(off) + "/deliveries", key);
    EXPECT_TRUE(off_log.json().at("data").as_array().empty()) << off_log.body;
}

TEST_F(Webhooks, AReceiverFailingThreeTimesGetsTheEventOnTheFourthAttempt) {
    start_hooks();
    add_user("retry@example.com");
    auto key = key_for("retry@example.com", scopes);
    auto [hook, secret] = subscribe(key, R"({"url":")" + rx_->url("/flaky") + R"(","events":["*"]})");
    rx_->fail("/flaky", 3);
    auto ping = call("POST", "/apiv1/me/webhooks/" + std::to_string(hook) + "/ping", key);
    ASSERT_EQ(ping.status, 202) << ping.body;
    auto const did = id_of(ping);

    auto got = wait_for("/flaky", 4);
    ASSERT_EQ(got.size(), 4u);
    for (auto const& r : got) {
        EXPECT_EQ(std::string(r["webhook-id"]), std::string(got[0]["webhook-id"]))
            << "the same message each time";
        EXPECT_EQ(r.body(), got[0].body());
        EXPECT_TRUE(signature_valid(secret, r));
        EXPECT_EQ(type_of(r), "ping");
    }
    auto d = finished(key, hook, did);
    EXPECT_EQ(d.at("status").as_string(), "SUCCESS");
    EXPECT_EQ(d.at("attempts").as_int64(), 4);
    EXPECT_EQ(d.at("last_status_code").as_int64(), 204);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(rx_->to("/flaky").size(), 4u);
    EXPECT_EQ(metric("certctrl_webhook_deliveries_total{result=\"delivered\"}"), 1);
    EXPECT_EQ(metric("certctrl_webhook_deliveries_total{result=\"failed_attempt\"}"), 3);
    EXPECT_EQ(metric("certctrl_webhook_deliveries_total{result=\"gave_up\"}"), 0);
    EXPECT_EQ(metric("certctrl_webhook_events_total"), 1);
    EXPECT_EQ(metric("certctrl_webhook_in_flight"), 0);
}

TEST_F(Webhooks, ADeliveryGivesUpAfterItsWindowAndRedeliverSendsItAgain) {
    // No pause of the failing receiver here (AFailingReceiverIsPaused... tests that): every retry is tried.
    start_hooks(json::object{{"give_up_after_seconds", 2}, {"breaker_failures", 1000}});
    add_user("giveup@example.com");
    auto key = key_for("giveup@example.com", scopes);
    auto [hook, secret] = subscribe(key, R"({"url":")" + rx_->url("/down") + R"(","events":["*"]})");
    rx_->fail("/down", 1000, 503);
    auto ping = call("POST", "/apiv1/me/webhooks/" + std::to_string(hook) + "/ping", key);
    ASSERT_EQ(ping.status, 202);
    auto d = finished(key, hook, id_of(ping));
    EXPECT_EQ(d.at("status").as_string(), "FAILED") << json::serialize(d);
    EXPECT_GE(d.at("attempts").as_int64(), 2);
    EXPECT_EQ(d.at("last_status_code").as_int64(), 503);
    EXPECT_NE(std::string(d.at("last_error").as_string()).find("Gave up"), std::string::npos);
    std::size_t const tried = rx_->to("/down").size();
    EXPECT_EQ(static_cast<std::int64_t>(tried), d.at("attempts").as_int64());

    rx_->fail("/down", 0);
    auto again = call("POST",
                      "/apiv1/me/webhooks/" + std::to_string(hook) + "/deliveries/" +
                          std::to_string(id_of(ping)) + "/redeliver",
                      key);
    ASSERT_EQ(again.status, 202) << again.body;
    d = finished(key, hook, id_of(ping));
    EXPECT_EQ(d.at("status").as_string(), "SUCCESS");
    EXPECT_EQ(rx_->to("/down").size(), tried + 1);
}

// Deliveries that are retrying when their webhook is disabled end FAILED ("The webhook was disabled") and are
// not sent again; when it is deleted they go with it. The receiver recovers meanwhile: anything sent would
// arrive.
TEST_F(Webhooks, ADisabledOrDeletedWebhookStopsItsRetryingDeliveries) {
    start_hooks(json::object{{"breaker_failures", 1000}});
    add_user("stops@example.com");
    auto key = key_for("stops@example.com", scopes);
    auto [paused, s1] = subscribe(key, R"({"url":")" + rx_->url("/paused") + R"(","events":["*"]})");
    auto [gone, s2] = subscribe(key, R"({"url":")" + rx_->url("/gone") + R"(","events":["*"]})");
    rx_->fail("/paused", 1000, 503);
    rx_->fail("/gone", 1000, 503);
    auto const p1 = call("POST", "/apiv1/me/webhooks/" + std::to_string(paused) + "/ping", key);
    auto const p2 = call("POST", "/apiv1/me/webhooks/" + std::to_string(gone) + "/ping", key);
    ASSERT_EQ(p1.status, 202);
    ASSERT_EQ(p2.status, 202);
    wait_for("/paused", 2);
    wait_for("/gone", 2);
    ASSERT_GE(rx_->to("/paused").size(), 2u);
    ASSERT_GE(rx_->to("/gone").size(), 2u);

    auto const path = "/apiv1/me/webhooks/" + std::to_string(paused);
    ASSERT_EQ(call("PATCH", path, key, R"({"enabled":false})").status, 200);
    ASSERT_EQ(call("DELETE", "/apiv1/me/webhooks/" + std::to_string(gone), key).status, 204);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // an attempt already on the wire ends
    auto const sent_paused = rx_->to("/paused").size();
    auto const sent_gone = rx_->to("/gone").size();
    rx_->fail("/paused", 0);
    rx_->fail("/gone", 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(3000));  // several retry periods (at most 1 s)
    EXPECT_EQ(rx_->to("/paused").size(), sent_paused);
    EXPECT_EQ(rx_->to("/gone").size(), sent_gone);

    auto d = delivery(key, paused, id_of(p1));
    EXPECT_EQ(d.at("status").as_string(), "FAILED") << json::serialize(d);
    EXPECT_EQ(d.at("last_error").as_string(), "The webhook was disabled") << json::serialize(d);
    EXPECT_EQ(call("GET", "/apiv1/me/webhooks/" + std::to_string(gone) + "/deliveries", key).status, 404);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = " +
                                 std::to_string(gone)),
              0);
    // Enabled again: a new ping is delivered; the failed one stays failed until redelivered.
    ASSERT_EQ(call("PATCH", path, key, R"({"enabled":true})").status, 200);
    auto const p3 = call("POST", path + "/ping", key);
    ASSERT_EQ(p3.status, 202);
    EXPECT_EQ(finished(key, paused, id_of(p3)).at("status").as_string(), "SUCCESS");
    EXPECT_EQ(delivery(key, paused, id_of(p1)).at("status").as_string(), "FAILED");
    EXPECT_EQ(rx_->to("/paused").size(), sent_paused + 1);
}

TEST_F(Webhooks, AServerKilledMidDeliveryDeliversAfterRestart) {
    start_hooks();
    add_user("kill@example.com");
    auto key = key_for("kill@example.com", scopes);
    auto acct = self_ca(key);
    auto c = cert(key, acct, "kill.example.com");
    auto [hook, secret] =
        subscribe(key, R"({"url":")" + rx_->url("/slow") + R"(","events":["certificate.issued"]})");
    rx_->hold();
    issue(key, c);
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!rx_->holding() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(rx_->holding()) << "the delivery never started";
    EXPECT_EQ(server_->stop(SIGKILL), -SIGKILL);
    rx_->release();  // the killed server's request gets its answer into a closed socket

    server_ = another_instance();
    auto got = wait_for("/slow", 2, std::chrono::seconds(30));
    ASSERT_EQ(got.size(), 2u) << "the restarted server delivers the event the killed one was sending";
    EXPECT_EQ(std::string(got[1]["webhook-id"]), std::string(got[0]["webhook-id"]));
    EXPECT_TRUE(signature_valid(secret, got[1]));
    EXPECT_EQ(type_of(got[1]), "certificate.issued");
    auto log = call("GET", "/apiv1/me/webhooks/" + std::to_string(hook) + "/deliveries", key);
    ASSERT_EQ(log.json().at("data").as_array().size(), 1u);
    auto d = finished(key, hook, log.json().at("data").as_array()[0].at("id").as_int64());
    EXPECT_EQ(d.at("status").as_string(), "SUCCESS");
    EXPECT_EQ(d.at("attempts").as_int64(), 2);
}

TEST_F(Webhooks, ExpiryWarningsFireOnceAtEachThreshold) {
    start_hooks();
    add_user("expiry@example.com");
    auto key = key_for("expiry@example.com", scopes);
    auto [hook, secret] =
        subscribe(key, R"({"url":")" + rx_->url("/expiring") + R"(","events":["certificate.expiring"]})");
    // 20 days: below the 30-day threshold at once. 40 days: no warning yet.
    auto soon = self_ca(key, 20 * 86400);
    auto later = self_ca(key, 40 * 86400);
    auto c = cert(key, soon, "soon.example.com");
    auto quiet = cert(key, later, "later.example.com");
    issue(key, c);
    issue(key, quiet);

    auto expect_threshold = [&](std::size_t n, std::int64_t days) {
        auto got = wait_for("/expiring", n);
        ASSERT_EQ(got.size(), n);
        auto const b = body_of(got.back());
        EXPECT_EQ(b.at("type").as_string(), "certificate.expiring");
        EXPECT_EQ(b.at("data").at("threshold_days").as_int64(), days);
        EXPECT_EQ(b.at("data").at("certificate").at("id").as_int64(), c);
        EXPECT_LE(b.at("data").at("days_left").as_int64(), days);
        EXPECT_TRUE(signature_valid(secret, got.back()));
    };
    expect_threshold(1, 30);
    // The clock moves: the stored certificate now expires sooner (as it would days later).
    auto const cid = std::to_string(c);
    schema_->exec("UPDATE certificates SET not_after = UNIX_TIMESTAMP() + 10 * 86400 WHERE id = " + cid);
    expect_threshold(2, 14);
    schema_->exec("UPDATE certificates SET not_after = UNIX_TIMESTAMP() + 5 * 86400 WHERE id = " + cid);
    expect_threshold(3, 7);
    schema_->exec("UPDATE certificates SET not_after = UNIX_TIMESTAMP() + 43200 WHERE id = " + cid);
    expect_threshold(4, 1);
    // Several checks later: nothing repeated, nothing for the 40-day certificate.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    EXPECT_EQ(rx_->to("/expiring").size(), 4u);
    // A renewal is a new certificate: its thresholds count again.
    issue(key, c);
    expect_threshold(5, 30);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(rx_->to("/expiring").size(), 5u);
}

// A certificate first seen below several thresholds (a 5-day SELF_CA certificate: below 30, 14 and 7) is
// warned once, at the lowest of them, with the default thresholds.
TEST_F(Webhooks, ACertificateBelowSeveralThresholdsAtOnceIsWarnedOnceAtTheLowest) {
    start_hooks();
    add_user("lowest@example.com");
    auto key = key_for("lowest@example.com", scopes);
    auto [hook, secret] =
        subscribe(key, R"({"url":")" + rx_->url("/expiring") + R"(","events":["certificate.expiring"]})");
    auto c = cert(key, self_ca(key, 5 * 86400), "five.example.com");
    issue(key, c);
    auto got = wait_for("/expiring", 1);
    ASSERT_EQ(got.size(), 1u);
    auto const b = body_of(got.front());
    EXPECT_EQ(b.at("data").at("threshold_days").as_int64(), 7);
    EXPECT_EQ(b.at("data").at("days_left").as_int64(), 5);
    EXPECT_TRUE(signature_valid(secret, got.front()));
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // two more checks
    EXPECT_EQ(rx_->to("/expiring").size(), 1u);
}

TEST_F(Webhooks, SubscriptionsAreValidatedScopedAndTheirOwnersAlone) {
    start_hooks();
    add_user("owner@example.com");
    add_user("other@example.com");
    auto key = key_for("owner@example.com", scopes);
    auto other = key_for("other@example.com", scopes);
    auto acct = self_ca(other);
    auto theirs = cert(other, acct, "theirs.example.com");

    auto bad = [&](std::string const& body, std::string const& field) {
        auto r = call("POST", "/apiv1/me/webhooks", key, body);
        EXPECT_EQ(r.status, 400) << body << " " << r.body;
        EXPECT_EQ(code_of(r), 4000);
        EXPECT_EQ(r.json().at("error").at("params").at("field").as_string(), field) << r.body;
    };
    bad(R"({"url":"http://127.0.0.1:1/x","events":["*"]})", "url");
    bad(R"({"url":"https://user:pw@127.0.0.1/x","events":["*"]})", "url");
    bad(R"({"url":")" + rx_->url("/v") + R"(","events":["certificate.exploded"]})", "events");
    bad(R"({"url":")" + rx_->url("/v") + R"(","events":[]})", "events");
    bad(R"({"events":["*"]})", "url");
    bad(R"({"url":")" + rx_->url("/v") + R"(","events":["*"],"certificate_ids":[)" + std::to_string(theirs) +
            "]}",
        "certificate_ids");
    bad(R"({"url":")" + rx_->url("/v") + R"(","events":["*"],"secret":"mine"})", "secret");

    auto [hook, secret] = subscribe(key, R"({"url":")" + rx_->url("/mine") + R"(","events":["*"]})");
    auto const path = "/apiv1/me/webhooks/" + std::to_string(hook);
    // Another user sees nothing of it.
    EXPECT_EQ(call("GET", path, other).status, 404);
    EXPECT_EQ(call("POST", path + "/ping", other).status, 404);
    EXPECT_EQ(call("PATCH", path, other, R"({"url":")" + rx_->url("/stolen") + R"("})").status, 404);
    EXPECT_EQ(call("GET", path + "/deliveries", other).status, 404);
    EXPECT_EQ(call("DELETE", path, other).status, 404);
    // A key scoped to this webhook's reads cannot write it, nor see another.
    auto reader = key_for("owner@example.com", {"webhooks:" + std::to_string(hook) + "[read]"});
    EXPECT_EQ(call("GET", path, reader).status, 200);
    EXPECT_EQ(call("POST", path + "/ping", reader).status, 403);
    EXPECT_EQ(call("PATCH", path, reader, R"({"enabled":false})").status, 403);
    EXPECT_EQ(call("GET", "/apiv1/me/webhooks/" + std::to_string(hook + 1), reader).status, 403);
    // A key that may write this webhook writes it, and no other of the same user.
    auto [second, second_secret] =
        subscribe(key, R"({"url":")" + rx_->url("/second") + R"(","events":["certificate.issued"]})");
    auto writer = key_for("owner@example.com", {"webhooks:" + std::to_string(hook) + "[read,write]"});
    auto const second_path = "/apiv1/me/webhooks/" + std::to_string(second);
    EXPECT_EQ(call("PATCH", path, writer, R"({"description":"by its writer"})").status, 200);
    EXPECT_EQ(call("POST", path + "/ping", writer).status, 202);
    EXPECT_EQ(call("PATCH", second_path, writer, R"({"description":"not yours"})").status, 403);
    EXPECT_EQ(call("POST", second_path + "/ping", writer).status, 403);
    EXPECT_EQ(call("POST", second_path + "/rotate-secret", writer, "{}").status, 403);
    EXPECT_EQ(call("DELETE", second_path, writer).status, 403);
    EXPECT_EQ(call("GET", second_path, key).body.find("not yours"), std::string::npos);
    ASSERT_EQ(call("DELETE", second_path, key).status, 204);
    // The session twin.
    auto uid = schema_->query_int("SELECT id FROM users WHERE email = 'owner@example.com'");
    auto session = login("owner@example.com");
    auto listed = call("GET", "/apiv1/users/" + std::to_string(uid) + "/webhooks", session);
    ASSERT_EQ(listed.status, 200) << listed.body;
    EXPECT_EQ(listed.json().at("data").as_array().size(), 1u);

    // PATCH: a change of events and filter; null clears the filter.
    auto patched = call("PATCH", path, key, R"({"events":["certificate.renewed"],"description":"ops"})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_EQ(patched.json().at("data").at("events").as_array().size(), 1u);
    EXPECT_EQ(patched.json().at("data").at("description").as_string(), "ops");
    // A disabled subscription takes no ping.
    ASSERT_EQ(call("PATCH", path, key, R"({"enabled":false})").status, 200);
    auto refused = call("POST", path + "/ping", key);
    EXPECT_EQ(refused.status, 409) << refused.body;
    EXPECT_EQ(code_of(refused), 4009);
    // Changes of subscriptions are audited for their owner; a refused one is not.
    ASSERT_EQ(call("DELETE", path, key).status, 204);
    EXPECT_EQ(call("DELETE", path, key).status, 404);
    for (auto const& [action, times] : std::vector<std::pair<std::string, int>>{
             {"webhook.create", 2}, {"webhook.update", 3}, {"webhook.delete", 2}}) {
        EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = '" + action +
                                     "' AND user_id = " + std::to_string(uid)),
                  times)
            << action;
    }

    // An address the egress policy refuses fails at once, without retries.
    auto [internal, internal_secret] =
        subscribe(key, R"({"url":"https://169.254.169.254/latest","events":["*"]})");
    auto d = pinged(key, internal);
    ASSERT_TRUE(d.contains("status"));
    EXPECT_EQ(d.at("status").as_string(), "FAILED") << json::serialize(d);
    EXPECT_EQ(d.at("attempts").as_int64(), 1);
}

TEST_F(Webhooks, ARotatedSecretSignsBesideTheOldOneDuringTheOverlap) {
    start_hooks();
    add_user("rotate@example.com");
    auto key = key_for("rotate@example.com", scopes);
    auto [hook, old_secret] = subscribe(key, R"({"url":")" + rx_->url("/rot") + R"(","events":["*"]})");
    auto const path = "/apiv1/me/webhooks/" + std::to_string(hook);
    auto rotated = call("POST", path + "/rotate-secret", key, R"({"overlap_seconds":3600})");
    ASSERT_EQ(rotated.status, 200) << rotated.body;
    std::string const new_secret(rotated.json().at("data").at("secret").as_string());
    EXPECT_NE(new_secret, old_secret);
    EXPECT_GT(rotated.json().at("data").at("previous_secret_expires_at").as_int64(), std::time(nullptr));
    ASSERT_EQ(call("POST", path + "/ping", key).status, 202);
    auto got = wait_for("/rot", 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_TRUE(signature_valid(new_secret, got[0]));
    EXPECT_TRUE(signature_valid(old_secret, got[0]));

    // A short overlap ends: afterwards only the newest secret signs.
    auto brief = call("POST", path + "/rotate-secret", key, R"({"overlap_seconds":1})");
    ASSERT_EQ(brief.status, 200) << brief.body;
    std::string const brief_secret(brief.json().at("data").at("secret").as_string());
    std::this_thread::sleep_for(std::chrono::milliseconds(2100));
    ASSERT_EQ(call("POST", path + "/ping", key).status, 202);
    got = wait_for("/rot", 2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(signature_valid(brief_secret, got[1]));
    EXPECT_FALSE(signature_valid(new_secret, got[1])) << "the overlap ended";
    std::string const after_brief = brief_secret;

    // Without an overlap the old secret stops at once.
    auto cut = call("POST", path + "/rotate-secret", key, R"({"overlap_seconds":0})");
    ASSERT_EQ(cut.status, 200);
    std::string const newest(cut.json().at("data").at("secret").as_string());
    EXPECT_TRUE(cut.json().at("data").at("previous_secret_expires_at").is_null());
    ASSERT_EQ(call("POST", path + "/ping", key).status, 202);
    got = wait_for("/rot", 3);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_TRUE(signature_valid(newest, got[2]));
    EXPECT_FALSE(signature_valid(after_brief, got[2]));
    EXPECT_EQ(call("POST", path + "/rotate-secret", key, R"({"overlap_seconds":99999999})").status, 400);
}

// docs/operator-guide.md's receiver example, run as written (on a free port instead of 8443, plain http
// through webhooks.allow_http): it accepts the server's signatures and refuses another secret's.
TEST_F(Webhooks, TheOperatorGuidesReceiverExampleAcceptsOurSignatures) {
    start_hooks(json::object{{"allow_http", true}});
    add_user("guide@example.com");
    auto key = key_for("guide@example.com", scopes);
    std::ifstream in(CERTCTRL_SOURCE_DIR "/docs/operator-guide.md");
    std::stringstream doc;
    doc << in.rdbuf();
    std::string const text = doc.str();
    auto const intro = text.find("A receiver that checks the signature");
    ASSERT_NE(intro, std::string::npos);
    auto const begin = text.find("```python\n", intro);
    auto const end = text.find("```\n", begin + 10);
    ASSERT_NE(begin, std::string::npos);
    ASSERT_NE(end, std::string::npos);
    std::string code = text.substr(begin + 10, end - begin - 10);
    auto const port = free_port();
    auto const listen = code.find("(\"0.0.0.0\", 8443)");
    ASSERT_NE(listen, std::string::npos);
    code.replace(listen, 17, "(\"127.0.0.1\", " + std::to_string(port) + ")");
    std::ofstream(dir_.path() / "receiver.py") << code;

    auto const url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
    auto [hook, secret] = subscribe(key, R"({"url":")" + url + R"(","events":["*"]})");
    auto [stranger, stranger_secret] = subscribe(key, R"({"url":")" + url + R"(","events":["*"]})");
    int const pid = spawn_process({"/usr/bin/python3", "-u", (dir_.path() / "receiver.py").string()},
                                  {"WEBHOOK_SECRET=" + secret}, dir_.path() / "receiver.log");
    struct stop_receiver {
        int pid;
        ~stop_receiver() {
            ::kill(pid, SIGKILL);
            wait_process(pid, std::chrono::seconds(5));
        }
    } stop{pid};
    for (int i = 0; i < 100; ++i) {  // until it listens
        boost::asio::io_context ioc;
        boost::asio::ip::tcp::socket probe(ioc);
        boost::system::error_code ec;
        probe.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
        if (!ec) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }

    auto ping = call("POST", "/apiv1/me/webhooks/" + std::to_string(hook) + "/ping", key);
    ASSERT_EQ(ping.status, 202);
    auto d = finished(key, hook, id_of(ping));
    EXPECT_EQ(d.at("status").as_string(), "SUCCESS") << json::serialize(d);
    EXPECT_EQ(d.at("last_status_code").as_int64(), 204);

    // Signed with another subscription's secret: the example answers 401 and the delivery is retried.
    auto other = call("POST", "/apiv1/me/webhooks/" + std::to_string(stranger) + "/ping", key);
    ASSERT_EQ(other.status, 202);
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    json::object o = delivery(key, stranger, id_of(other));
    while (o.at("last_status_code").is_null() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        o = delivery(key, stranger, id_of(other));
    }
    EXPECT_EQ(o.at("status").as_string(), "PENDING") << json::serialize(o);
    EXPECT_EQ(o.at("last_status_code"), 401) << json::serialize(o);
    std::ifstream log(dir_.path() / "receiver.log");
    std::stringstream printed;
    printed << log.rdbuf();
    EXPECT_NE(printed.str().find("ping None"), std::string::npos) << printed.str();
}

// A receiver that redirects (here to the cloud metadata address) is not followed, and one that answers more
// than webhooks.response_limit_bytes fails the attempt: both are retried, neither is SUCCESS.
TEST_F(Webhooks, RedirectsAreNotFollowedAndOversizedAnswersFail) {
    start_hooks(json::object{{"response_limit_bytes", 4096}});
    add_user("odd@example.com");
    auto key = key_for("odd@example.com", scopes);
    https_stub::response moved;
    moved.result(http::status::found);
    moved.set(http::field::location, "https://169.254.169.254/latest/meta-data/");
    rx_->answer_with("/moved", moved);
    https_stub::response big;  // over the configured 4096 bytes, under the default 64 KiB
    big.result(http::status::ok);
    big.body() = std::string(8192, 'x');
    rx_->answer_with("/big", big);
    https_stub::response fits;
    fits.result(http::status::ok);
    fits.body() = std::string(2048, 'x');
    rx_->answer_with("/fits", fits);
    auto [to_moved, s1] = subscribe(key, R"({"url":")" + rx_->url("/moved") + R"(","events":["*"]})");
    auto [to_big, s2] = subscribe(key, R"({"url":")" + rx_->url("/big") + R"(","events":["*"]})");
    auto p1 = call("POST", "/apiv1/me/webhooks/" + std::to_string(to_moved) + "/ping", key);
    auto p2 = call("POST", "/apiv1/me/webhooks/" + std::to_string(to_big) + "/ping", key);
    ASSERT_EQ(p1.status, 202);
    ASSERT_EQ(p2.status, 202);
    wait_for("/moved", 2);
    wait_for("/big", 2);
    auto m = delivery(key, to_moved, id_of(p1));
    EXPECT_EQ(m.at("status").as_string(), "PENDING") << json::serialize(m);
    EXPECT_EQ(m.at("last_status_code").as_int64(), 302);
    EXPECT_NE(std::string(m.at("last_error").as_string()).find("redirects are not followed"),
              std::string::npos);
    EXPECT_GE(m.at("attempts").as_int64(), 2);
    auto b = delivery(key, to_big, id_of(p2));
    EXPECT_EQ(b.at("status").as_string(), "PENDING") << json::serialize(b);
    EXPECT_GE(b.at("attempts").as_int64(), 2);
    EXPECT_FALSE(b.at("last_error").is_null());
    EXPECT_EQ(server_->log().find("169.254.169.254"), std::string::npos)
        << "nothing went to the redirect target";
    // An answer within the limit is read and the delivery succeeds.
    auto [to_fits, s3] = subscribe(key, R"({"url":")" + rx_->url("/fits") + R"(","events":["*"]})");
    auto f = pinged(key, to_fits);
    ASSERT_TRUE(f.contains("status"));
    EXPECT_EQ(f.at("status").as_string(), "SUCCESS") << json::serialize(f);
    EXPECT_EQ(f.at("attempts").as_int64(), 1);
}

// A receiver that answers later than webhooks.timeout_ms: the attempt counts as failed (the delivery stays
// PENDING with the reason) and the next attempt, answered in time, succeeds.
TEST_F(Webhooks, AReceiverSlowerThanTheTimeoutIsTriedAgain) {
    // The second attempt comes 1.5 to 3 s after the first ends (retry_initial_ms with jitter), so the test
    // sees the state between the two however slowly it polls.
    start_hooks(json::object{{"timeout_ms", 500}, {"retry_initial_ms", 3000}, {"retry_max_ms", 3000}});
    add_user("slow@example.com");
    auto key = key_for("slow@example.com", scopes);
    auto [hook, secret] = subscribe(key, R"({"url":")" + rx_->url("/slow") + R"(","events":["*"]})");
    rx_->hold();
    auto ping = call("POST", "/apiv1/me/webhooks/" + std::to_string(hook) + "/ping", key);
    ASSERT_EQ(ping.status, 202);
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!rx_->holding() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(rx_->holding());
    json::object d;
    while (std::chrono::steady_clock::now() < until) {
        d = delivery(key, hook, id_of(ping));
        if (!d.at("last_error").is_null()) {  // the attempt ended (attempts counts it from its claim)
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(d.at("status").as_string(), "PENDING") << json::serialize(d);
    EXPECT_EQ(d.at("attempts").as_int64(), 1) << json::serialize(d);
    EXPECT_TRUE(d.at("last_status_code").is_null()) << json::serialize(d);
    ASSERT_TRUE(d.at("last_error").is_string()) << json::serialize(d);
    EXPECT_NE(std::string(d.at("last_error").as_string()).find("timeout"), std::string::npos)
        << json::serialize(d);
    rx_->release();
    d = finished(key, hook, id_of(ping));
    EXPECT_EQ(d.at("status").as_string(), "SUCCESS") << json::serialize(d);
    EXPECT_EQ(d.at("attempts").as_int64(), 2);
}

// Two instances on one database, both sending: every event is delivered once, whichever instance stored it.
TEST_F(Webhooks, TwoSendingInstancesDeliverEachEventOnce) {
    start_hooks();
    add_user("pair@example.com");
    auto key = key_for("pair@example.com", scopes);
    auto [hook, secret] = subscribe(key, R"({"url":")" + rx_->url("/pair") + R"(","events":["*"]})");
    auto second = another_instance();
    constexpr int n = 60;
    for (int i = 0; i < n; ++i) {
        // Alternately through each instance: each wakes its own sender, and both poll.
        http_client c(i % 2 == 0 ? server_->port() : second->port());
        auto r = c.request("POST", "/apiv1/me/webhooks/" + std::to_string(hook) + "/ping", "", bearer(key));
        ASSERT_EQ(r.status, 202) << r.body;
    }
    auto got = wait_for("/pair", n);
    std::this_thread::sleep_for(std::chrono::milliseconds(800));  // any duplicate would arrive by now
    got = rx_->to("/pair");
    std::set<std::string> ids;
    for (auto const& r : got) {
        ids.insert(std::string(r["webhook-id"]));
        EXPECT_TRUE(signature_valid(secret, r));
    }
    EXPECT_EQ(got.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(ids.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(schema_->query_int(
                  "SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'SUCCESS' AND attempts = 1"),
              n);  // Who sent what: the two instances' counters add up to the events (the split is up to
                   // their claims).
    auto delivered_by = [&](std::uint16_t port) {
        http_client c(port);
        auto m = c.get("/metrics", {{"Authorization", "Bearer " + metrics_token}});
        std::string const series = "certctrl_webhook_deliveries_total{result=\"delivered\"} ";
        auto const at = m.body.find(series);
        return at == std::string::npos ? -1 : std::stoi(m.body.substr(at + series.size()));
    };
    auto const a = delivered_by(server_->port());
    auto const b = delivered_by(second->port());
    EXPECT_EQ(a + b, n);
    std::cout << "delivered by the first instance " << a << ", by the second " << b << std::endl;
}

// A receiver that keeps failing pauses its webhook's deliveries (webhooks.breaker_failures in a row), so a
// dead endpoint is not hammered once per pending event; when the pause ends and the receiver answers, all
// arrive.
TEST_F(Webhooks, AFailingReceiverIsPausedAndItsBacklogDeliveredWhenItRecovers) {
    start_hooks(json::object{{"breaker_failures", 3}, {"breaker_open_seconds", 2}});
    add_user("breaker@example.com");
    auto key = key_for("breaker@example.com", scopes);
    auto [hook, secret] = subscribe(key, R"({"url":")" + rx_->url("/dead") + R"(","events":["*"]})");
    rx_->fail("/dead", 100000, 503);
    constexpr int n = 8;
    for (int i = 0; i < n; ++i) {
        ASSERT_EQ(call("POST", "/apiv1/me/webhooks/" + std::to_string(hook) + "/ping", key).status, 202);
    }
    // The pause starts after breaker_failures failed attempts in a row...
    auto const trip_until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (metric("certctrl_webhook_breaker_trips_total") < 1 &&
           std::chrono::steady_clock::now() < trip_until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_EQ(metric("certctrl_webhook_breaker_trips_total"), 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // attempts already under way land
    auto const tried = rx_->to("/dead").size();
    EXPECT_GE(tried, 3u);
    // ... and while it lasts nothing is sent, though 8 deliveries are due (without it: one every 200-800 ms
    // each).
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    EXPECT_EQ(rx_->to("/dead").size(), tried) << "the dead receiver was tried during the pause";
    EXPECT_EQ(metric("certctrl_webhook_breakers_open"), 1);
    EXPECT_EQ(metric("certctrl_webhook_pending"), n) << "read from the database every second here";
    rx_->fail("/dead", 0);
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (schema_->query_int("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'SUCCESS'") < n &&
           std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'SUCCESS'"), n);
    std::this_thread::sleep_for(
        std::chrono::milliseconds(600));  // the metrics' gauge is read at the next claim
    EXPECT_EQ(metric("certctrl_webhook_breakers_open"), 0);
}

}  // namespace
}  // namespace certctrl::test
