// DNS-01 through the webhook and Cloudflare provider kinds, end to end against pebble and knot: the other
// side is a local HTTPS service that publishes the records it is asked for into knot with RFC 2136 (for
// Cloudflare it speaks the documented v4 API shapes; the real service cannot run here).
#include "acme_fixture.hpp"
#include "https_stub.hpp"
#include "openssl_cli.hpp"
#include "run_awaitable.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/dns/rfc2136.hpp"
#include "certctrl/net/outbound.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <csignal>
#include <iostream>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;
namespace bh = boost::beast::http;

// Independent of the server's code: hex(HMAC-SHA256(secret, timestamp "." body)).
std::string hmac_hex(std::string const& secret, std::string const& msg) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<unsigned char const*>(msg.data()), msg.size(), mac, &len);
    return hex_encode(std::string_view(reinterpret_cast<char const*>(mac), len));
}

class Dns01Providers : public acme_fixture {
  protected:
    void SetUp() override {
        acme_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        CERTCTRL_REQUIRE_KNOT();
        knot_ = *knot();
    }

    void start_trusting(std::filesystem::path const& stub_root, std::string const& cloudflare_api = "",
                        json::object const& extra = {}) {
        json::object issuance{{"workers", 2},
                              {"http01_port", pebble_.http01_port},
                              {"acme_ca_file", trust_with(stub_root)},
                              {"poll_interval_ms", 200},
                              {"dns_propagation_seconds", 0}};
        if (!cloudflare_api.empty()) {
            issuance["cloudflare_api_url"] = cloudflare_api;
        }
        for (auto const& kv : extra) {
            issuance[kv.key()] = kv.value();
        }
        start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
                           {"issuance", issuance}});
    }

    std::string issue_wildcard(std::string const& key, std::int64_t provider) {
        auto acct = call(
            "POST", "/apiv1/me/acme-accounts", key,
            R"({"name":"pebble","provider":"custom","directory_url":")" + pebble_.directory_url + R"("})");
        EXPECT_EQ(acct.status, 200) << acct.body;
        base_ = "w" + hex_encode(crypto::random_bytes(5)) + ".certctrl.test";
        auto created =
            call("POST", "/apiv1/me/certificates", key,
                 R"({"domain_name":")" + base_ + R"(","sans":["*.)" + base_ + R"("],"acct_id":)" +
                     std::to_string(id_of(acct)) + R"(,"dns_provider_id":)" + std::to_string(provider) + "}");
        EXPECT_EQ(created.status, 200) << created.body;
        auto const cert = std::to_string(id_of(created));
        auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
        auto const hid = issued.json().at("data").at("issue_history_id").as_int64();
        auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
        while (std::chrono::steady_clock::now() < until) {
            auto rows = call("GET", "/apiv1/me/certificates/" + cert + "/issues", key).json();
            for (auto const& row : rows.at("data").as_array()) {
                std::string const s(row.at("status").as_string());
                if (row.at("id").as_int64() == hid && (s == "SUCCESS" || s == "FAILED")) {
                    EXPECT_EQ(s, "SUCCESS") << json::serialize(row) << "\n" << server_->log();
                    return cert;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
        ADD_FAILURE() << "issuance did not finish";
        return cert;
    }

    dns::update_target knot_;
    std::string base_;
};

TEST_F(Dns01Providers, WebhookGetsSignedPresentAndCleanupCalls) {
    std::string const secret = "hook-secret-0123456789abcdef";
    std::mutex mu;
    std::vector<std::string> actions;
    int bad_signatures = 0;
    https_stub hook(dir_.path() / "stub-root.pem", [&](https_stub::request const& req) {
        https_stub::response res{bh::status::ok, 11};
        std::string const ts(req["X-Certctrl-Timestamp"]);
        std::string const sig(req["X-Certctrl-Signature"]);
        if (sig != "sha256=" + hmac_hex(secret, ts + "." + req.body())) {
            std::lock_guard lock(mu);
            ++bad_signatures;
            res.result(bh::status::unauthorized);
            return res;
        }
        auto body = json::parse(req.body()).as_object();
        std::string const action(body.at("action").as_string());
        auto r = dns::update_txt(knot_, std::string(body.at("fqdn").as_string()),
                                 std::string(body.at("value").as_string()), action == "present");
        std::lock_guard lock(mu);
        actions.push_back(action + " " + std::string(body.at("fqdn").as_string()));
        if (!r) {
            res.result(bh::status::internal_server_error);
        }
        res.body() = R"({"ok":true})";
        return res;
    });
    start_trusting(dir_.path() / "stub-root.pem");
    add_user("hook@example.com");
    auto key = key_for("hook@example.com", {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]",
                                            "dns_providers:*[read,write]"});
    auto provider = call("POST", "/apiv1/me/dns-providers", key,
                         R"({"name":"hook","kind":"webhook","url":")" + hook.url("/hook") +
                             R"(","hmac_secret":")" + secret + R"("})");
    ASSERT_EQ(provider.status, 201) << provider.body;
    auto const cert = issue_wildcard(key, id_of(provider));
    EXPECT_EQ(bad_signatures, 0);
    std::lock_guard lock(mu);
    // apex and wildcard share the name _acme-challenge.<base>: two presents, two cleanups.
    EXPECT_EQ(std::count(actions.begin(), actions.end(), "present _acme-challenge." + base_), 2);
    EXPECT_EQ(std::count(actions.begin(), actions.end(), "cleanup _acme-challenge." + base_), 2);
    auto result = call("GET", "/apiv1/me/certificates/" + cert + "/issue-result", key);
    auto const verified =
        openssl_verify(std::string(result.json().at("data").at("cert").as_string()), pebble_root());
    EXPECT_NE(verified.find("leaf.pem: OK"), std::string::npos) << verified;
    EXPECT_EQ(server_->log().find(secret), std::string::npos);
}

// A provider that publishes a moment after it answers (as DNS APIs do): the worker asks the zone's
// authoritative name servers (found through the resolver, here knot itself) until they serve the record, so
// the CA looks neither before the record exists nor after a fixed 30 s.
TEST_F(Dns01Providers, RecordsAreCheckedAtTheZonesNameServersInsteadOfAFixedWait) {
    std::string const secret = "hook-secret-0123456789abcdef";
    std::mutex mu;
    std::vector<std::thread> later;
    https_stub hook(dir_.path() / "stub-root.pem", [&](https_stub::request const& req) {
        auto body = json::parse(req.body()).as_object();
        std::string const fqdn(body.at("fqdn").as_string());
        std::string const value(body.at("value").as_string());
        bool const add = body.at("action") == "present";
        std::lock_guard lock(mu);
        later.emplace_back([this, fqdn, value, add] {
            std::this_thread::sleep_for(std::chrono::milliseconds(add ? 1500 : 0));
            (void)dns::update_txt(knot_, fqdn, value, add);
        });
        https_stub::response res{bh::status::ok, 11};
        res.body() = R"({"ok":true})";
        return res;
    });
    start_trusting(
        dir_.path() / "stub-root.pem", "",
        json::object{{"dns_propagation_seconds", 30},
                     {"domain_verification_resolver", knot_.server + ":" + std::to_string(knot_.port)},
                     {"dns_authoritative_port", knot_.port}});
    add_user("ns@example.com");
    auto key = key_for("ns@example.com", {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]",
                                          "dns_providers:*[read,write]"});
    auto provider = call("POST", "/apiv1/me/dns-providers", key,
                         R"({"name":"hook","kind":"webhook","url":")" + hook.url("/hook") +
                             R"(","hmac_secret":")" + secret + R"("})");
    ASSERT_EQ(provider.status, 201) << provider.body;
    auto const started = std::chrono::steady_clock::now();
    issue_wildcard(key, id_of(provider));  // expects SUCCESS: the CA found the records
    auto const took = std::chrono::steady_clock::now() - started;
    EXPECT_LT(took, std::chrono::seconds(20)) << "served records end the wait, not the 30 s limit";
    std::lock_guard lock(mu);
    for (auto& t : later) {
        t.join();
    }
}

TEST_F(Dns01Providers, CloudflareApiCallsCreateAndDeleteTheRecords) {
    std::string const token = "cf-token-0123456789abcdef";
    std::mutex mu;
    std::map<std::string, std::pair<std::string, std::string>> records;  // id -> name, content
    std::vector<std::string> calls;
    int next = 0;
    https_stub api(dir_.path() / "stub-root.pem", [&](https_stub::request const& req) {
        https_stub::response res{bh::status::ok, 11};
        res.set(bh::field::content_type, "application/json");
        std::lock_guard lock(mu);
        std::string const target(req.target());
        calls.push_back(std::string(req.method_string()) + " " + target);
        if (req[bh::field::authorization] != "Bearer " + token) {
            res.result(bh::status::forbidden);
            res.body() =
                R"({"success":false,"errors":[{"code":9109,"message":"Invalid access token"}],"result":null})";
            return res;
        }
        if (req.method() == bh::verb::get && target.rfind("/client/v4/zones?name=", 0) == 0) {
            bool const ours = target.substr(22) == "certctrl.test";
            res.body() = std::string(R"({"success":true,"errors":[],"result":[)") +
                         (ours ? R"({"id":"zone-1","name":"certctrl.test"})" : "") + "]}";
            return res;
        }
        if (req.method() == bh::verb::post && target == "/client/v4/zones/zone-1/dns_records") {
            auto body = json::parse(req.body()).as_object();
            std::string const name(body.at("name").as_string());
            std::string const content(body.at("content").as_string());
            auto r = dns::update_txt(knot_, name, content, true);
            std::string const id = "rec-" + std::to_string(++next);
            records[id] = {name, content};
            res.body() = R"({"success":true,"errors":[],"result":{"id":")" + id + R"("}})";
            if (!r)
                res.result(bh::status::internal_server_error);
            return res;
        }
        std::string const prefix = "/client/v4/zones/zone-1/dns_records/";
        if (req.method() == bh::verb::delete_ && target.rfind(prefix, 0) == 0) {
            auto it = records.find(target.substr(prefix.size()));
            if (it == records.end()) {
                res.result(bh::status::not_found);
                res.body() =
                    R"({"success":false,"errors":[{"code":81044,"message":"Record does not exist."}]})";
                return res;
            }
            (void)dns::update_txt(knot_, it->second.first, it->second.second, false);
            res.body() = R"({"success":true,"errors":[],"result":{"id":")" + it->first + R"("}})";
            records.erase(it);
            return res;
        }
        res.result(bh::status::not_found);
        res.body() = R"({"success":false,"errors":[{"code":7003,"message":"No route"}]})";
        return res;
    });
    start_trusting(dir_.path() / "stub-root.pem", api.url("/client/v4"));
    add_user("cf@example.com");
    auto key = key_for("cf@example.com", {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]",
                                          "dns_providers:*[read,write]"});
    auto provider = call("POST", "/apiv1/me/dns-providers", key,
                         R"({"name":"cf","kind":"cloudflare","api_token":")" + token + R"("})");
    ASSERT_EQ(provider.status, 201) << provider.body;
    issue_wildcard(key, id_of(provider));
    std::lock_guard lock(mu);
    EXPECT_TRUE(records.empty()) << records.size() << " record(s) were not deleted";
    EXPECT_EQ(
        std::count_if(calls.begin(), calls.end(), [](auto const& c) { return c.rfind("POST ", 0) == 0; }), 2);
    EXPECT_EQ(
        std::count_if(calls.begin(), calls.end(), [](auto const& c) { return c.rfind("DELETE ", 0) == 0; }),
        2);
    auto txt = dns::query_txt("127.0.0.1", knot_.port, "_acme-challenge." + base_);
    ASSERT_TRUE(txt);
    EXPECT_TRUE(txt->empty());
}

// A DNS provider that takes longer than the lease to answer: the worker's keeper renews the lease while the
// step waits, so the row stays with it; when that instance is then SIGKILLed mid-step, another instance
// resumes the order within one lease (10 s here), not after the step's timeout, and it ends with one SUCCESS.
TEST_F(Dns01Providers, ALongDnsStepKeepsItsLeaseAndAKilledWorkersOrderResumesWithinOneLease) {
    using clock = std::chrono::steady_clock;
    std::string const secret = "hook-secret-0123456789abcdef";
    std::mutex mu;
    std::vector<clock::time_point> presents;  // when each present call arrived
    https_stub hook(dir_.path() / "stub-root.pem", [&](https_stub::request const& req) {
        https_stub::response res{bh::status::ok, 11};
        auto body = json::parse(req.body()).as_object();
        std::string const action(body.at("action").as_string());
        bool first = false;
        if (action == "present") {
            std::lock_guard lock(mu);
            first = presents.empty();
            presents.push_back(clock::now());
        }
        if (first) {
            std::this_thread::sleep_for(
                std::chrono::seconds(14));  // past the lease; the caller dies meanwhile
        }
        auto r = dns::update_txt(knot_, std::string(body.at("fqdn").as_string()),
                                 std::string(body.at("value").as_string()), action == "present");
        if (!r) {
            res.result(bh::status::internal_server_error);
        }
        res.body() = R"({"ok":true})";
        return res;
    });
    start_trusting(dir_.path() / "stub-root.pem", "",
                   json::object{{"lease_seconds", 10}, {"dns_step_timeout_seconds", 60}});
    add_user("lease@example.com");
    auto key = key_for(
        "lease@example.com",
        {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]", "dns_providers:*[read,write]"});
    auto provider = call("POST", "/apiv1/me/dns-providers", key,
                         R"({"name":"hook","kind":"webhook","url":")" + hook.url("/hook") +
                             R"(","hmac_secret":")" + secret + R"("})");
    ASSERT_EQ(provider.status, 201) << provider.body;
    auto acct =
        call("POST", "/apiv1/me/acme-accounts", key,
             R"({"name":"pebble","provider":"custom","directory_url":")" + pebble_.directory_url + R"("})");
    ASSERT_EQ(acct.status, 200) << acct.body;
    base_ = "l" + hex_encode(crypto::random_bytes(5)) + ".certctrl.test";
    auto created = call("POST", "/apiv1/me/certificates", key,
                        R"({"domain_name":")" + base_ + R"(","acct_id":)" + std::to_string(id_of(acct)) +
                            R"(,"dns_provider_id":)" + std::to_string(id_of(provider)) + "}");
    ASSERT_EQ(created.status, 200) << created.body;
    auto const cert = std::to_string(id_of(created));
    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    ASSERT_EQ(issued.status, 200) << issued.body;
    auto const hid = std::to_string(issued.json().at("data").at("issue_history_id").as_int64());

    auto const limit = clock::now() + std::chrono::seconds(60);
    auto present_count = [&] {
        std::lock_guard lock(mu);
        return presents.size();
    };
    while (present_count() == 0 && clock::now() < limit) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(present_count(), 1u) << server_->log();
    clock::time_point entered;
    {
        std::lock_guard lock(mu);
        entered = presents.front();
    }
    auto const owner = schema_->query_text("SELECT lease_owner FROM issue_history WHERE id = " + hid);
    ASSERT_FALSE(owner.empty());
    // 12 s into the step, more than a lease after the claim: the same worker still holds the row (renewed
    // meanwhile); without the renewal the lease runs out and a new run of the row starts beside the old one.
    std::this_thread::sleep_for(std::chrono::seconds(12) - (clock::now() - entered));
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE id = " + hid +
                                 " AND status = 'PROCESSING' AND lease_until > UNIX_TIMESTAMP() AND "
                                 "lease_owner = '" +
                                 owner + "'"),
              1)
        << schema_->query_text(
               "SELECT CONCAT_WS(' ', status, lease_owner, lease_until - UNIX_TIMESTAMP()) "
               "FROM issue_history WHERE id = " +
               hid)
        << server_->log();
    auto const log_a = server_->log();
    EXPECT_EQ(log_a.find("lease lost"), std::string::npos) << log_a;
    EXPECT_EQ(log_a.find("ACME run by"), log_a.rfind("ACME run by")) << log_a;

    // Killed mid-step; another instance resumes the order once the lease has run out.
    server_->stop(SIGKILL);
    auto const killed = clock::now();
    server_ = another_instance();
    auto const row = wait_terminal(key, cert, std::stoll(hid));
    ASSERT_FALSE(row.empty()) << server_->log();
    EXPECT_EQ(row.at("status").as_string(), "SUCCESS") << json::serialize(row) << "\n" << server_->log();
    {
        std::lock_guard lock(mu);
        ASSERT_GE(presents.size(), 2u);
        auto const resumed = std::chrono::duration_cast<std::chrono::milliseconds>(presents[1] - killed);
        // One lease (10 s) and the poll; a lease for the whole step would have been 90 s (60 + 30). The bound
        // leaves room for a slow machine and still tells the two apart.
        EXPECT_LT(resumed.count(), 40000) << "resumed after " << resumed.count() << " ms";
        std::cout << "[ resumed ] " << resumed.count() << " ms after the kill\n";
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + cert +
                                 " AND status = 'SUCCESS'"),
              1);
}

}  // namespace
}  // namespace certctrl::test
