// ACME Renewal Information followed over time (RFC 9773), against pebble behind a stand-in directory that
// adds renewalInfo (Debian's pebble has none): the renewal time lands in the CA's window, the CA's
// Retry-After sets when it is asked again, a window that stays put leaves the time alone, and a window the CA
// moves into the past renews the certificate at once.
#include "acme_fixture.hpp"
#include "https_stub.hpp"

#include "certctrl/core/ids.hpp"

#include <atomic>
#include <mutex>

namespace certctrl::test {
namespace {

namespace json = boost::json;
namespace bh = boost::beast::http;

class AriSchedule : public acme_fixture {};

TEST_F(AriSchedule, TheSchedulerFollowsTheCasWindowAndItsRetryAfter) {
    net::outbound_options o;
    o.ca_file = pebble_.ca_file;
    auto pebble_dir = run_awaitable(net::fetch({"GET", pebble_.directory_url, {}, ""}, o));
    ASSERT_TRUE(pebble_dir) << pebble_dir.error().what;
    std::int64_t const now = unix_now();
    std::mutex mu;
    std::pair<std::int64_t, std::int64_t> window{now + 10 * 86400, now + 11 * 86400};
    std::string moved_for;  // the certificate id whose window the CA moves (after `move` is set)
    bool move = false;
    std::vector<std::string> asked;
    std::string directory_body;
    https_stub ca(dir_.path() / "ari-root.pem", [&](https_stub::request const& req) {
        std::string const target(req.target());
        https_stub::response r{bh::status::ok, 11};
        r.set("Content-Type", "application/json");
        std::lock_guard lock(mu);
        if (target == "/directory") {
            r.body() = directory_body;
        } else if (target.rfind("/renewalInfo/", 0) == 0) {
            std::string const id = target.substr(13);
            asked.push_back(id);
            auto w = window;
            if (move && id == moved_for) {
                w = {now - 7200, now - 3600};  // the CA wants this one replaced now
            }
            r.set("Retry-After", "2");
            r.body() = R"({"suggestedWindow":{"start":")" + rfc3339_utc(w.first) + R"(","end":")" +
                       rfc3339_utc(w.second) + R"("}})";
        } else {
            r.result(bh::status::not_found);
        }
        return r;
    });
    {
        auto d = json::parse(pebble_dir->body).as_object();
        d["renewalInfo"] = ca.url("/renewalInfo");
        std::lock_guard lock(mu);
        directory_body = json::serialize(d);
    }
    auto cfg = config_overrides();
    auto& issuance = cfg["issuance"].as_object();
    issuance["acme_ca_file"] = trust_with(dir_.path() / "ari-root.pem");
    issuance["renewal_check_seconds"] = 1;
    issuance["ari_min_recheck_seconds"] = 1;
    start(cfg);
    add_user("ari@example.com");
    auto key =
        key_for("ari@example.com", {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]"});
    auto const issued = request_issues(key, acme_account(key, ca.url("/directory")), 1);
    ASSERT_EQ(issued.size(), 1u);
    auto const cert = issued[0].first;
    auto row = wait_terminal(key, cert, issued[0].second);
    ASSERT_EQ(row.at("status").as_string(), "SUCCESS") << json::serialize(row);

    // The renewal time lies in the window, and the CA is asked again as its Retry-After (2 s) says.
    std::string const renew_after = "SELECT renew_after FROM certificates WHERE id = " + cert;
    auto const first_pick = schema_->query_int(renew_after);
    EXPECT_GE(first_pick, window.first);
    EXPECT_LE(first_pick, window.second);
    EXPECT_GT(schema_->query_int("SELECT ari_next_check FROM certificates WHERE id = " + cert), 0);
    EXPECT_LE(
        schema_->query_int("SELECT ari_next_check - UNIX_TIMESTAMP() FROM certificates WHERE id = " + cert),
        2)
        << "the next look follows Retry-After, not the 6 h default";
    auto asked_count = [&] {
        std::lock_guard lock(mu);
        return asked.size();
    };
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (asked_count() < 3 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_GE(asked_count(), 3u) << "asked after the issuance and again as the CA said";
    EXPECT_EQ(schema_->query_int(renew_after), first_pick) << "a window that stays put leaves the time alone";

    // The CA moves this certificate's window into the past: it is renewed at once.
    {
        std::lock_guard lock(mu);
        moved_for = asked.front();
        move = true;
    }
    std::string const renewed =
        "SELECT COUNT(*) FROM issue_history WHERE kind = 'renew' AND status = 'SUCCESS' AND cert_id = " +
        cert;
    auto const renew_until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (schema_->query_int(renewed) == 0 && std::chrono::steady_clock::now() < renew_until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_EQ(schema_->query_int(renewed), 1) << "renewed once the CA moved the window";
    // The new certificate has an id of its own, whose window is the unmoved one.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + cert), 2)
        << "no renewal loop: the new certificate's window lies ahead";
    auto const new_pick = schema_->query_int(renew_after);
    EXPECT_GE(new_pick, window.first);
    EXPECT_LE(new_pick, window.second);
}

}  // namespace
}  // namespace certctrl::test
