// CA failover (issue 14): a certificate names further ACME accounts; an order its CA rate-limits (longer than
// the server waits) or refuses goes to the next account, against the real pebble, and the history row says
// so.
#include "acme_fixture.hpp"
#include "https_stub.hpp"

#include <atomic>

namespace certctrl::test {
namespace {

namespace json = boost::json;
namespace bh = boost::beast::http;

class CaFailover : public acme_fixture {
  protected:
    void start_trusting(std::filesystem::path const& stub_root, json::object const& issuance = {}) {
        auto cfg = config_overrides();
        cfg["issuance"].as_object()["acme_ca_file"] = trust_with(stub_root);
        for (auto const& kv : issuance) {
            cfg["issuance"].as_object()[kv.key()] = kv.value();
        }
        start_with_metrics(cfg);
        add_user("fo@example.com");
        key_ = key_for("fo@example.com", {"acme_accounts:*[read,write,issue]",
                                          "certificates:*[read,write,issue]", "cas:*[read,write]"});
    }
    std::string account(std::string const& directory) {
        return std::to_string(acme_account(key_, directory));
    }
    std::string key_;
};

// A CA that answers everything with rateLimited and an hour's Retry-After (a CA incident, an exhausted
// limit): the order moves on to pebble at once instead of failing or waiting an hour.
TEST_F(CaFailover, ARateLimitingCaHandsTheOrderToTheNextAccount) {
    std::atomic<int> seen{0};
    https_stub limited(dir_.path() / "stub-root.pem", [&](https_stub::request const&) {
        seen.fetch_add(1);
        https_stub::response r{bh::status::too_many_requests, 11};
        r.set("Retry-After", "3600");
        r.set("Content-Type", "application/problem+json");
        r.body() = R"({"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders"})";
        return r;
    });
    start_trusting(dir_.path() / "stub-root.pem");
    auto const first = account(limited.url("/directory"));
    auto const second = account(pebble_.directory_url);
    auto created = call("POST", "/apiv1/me/certificates", key_,
                        R"({"domain_name":")" + fresh_domain() + R"(","acct_id":)" + first +
                            R"(,"fallback_acct_ids":[)" + second + "]}");
    ASSERT_EQ(created.status, 200) << created.body;
    auto const doc = created.json();
    EXPECT_EQ(doc.at("data").at("fallback_acct_ids").as_array().size(), 1u);
    auto const cert = std::to_string(id_of(created));
    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key_, "{}");
    ASSERT_EQ(issued.status, 200) << issued.body;
    auto row = wait_terminal(key_, cert, issued.json().at("data").at("issue_history_id").as_int64());
    ASSERT_FALSE(row.empty());
    EXPECT_EQ(row.at("status").as_string(), "SUCCESS") << json::serialize(row);
    EXPECT_EQ(std::to_string(row.at("acct_id").as_int64()), second)
        << "the row names the account that issued";
    std::string const message(row.at("error_message").as_string());
    EXPECT_NE(message.find("Issued through ACME account " + second), std::string::npos) << message;
    EXPECT_NE(message.find(limited.url("/directory")), std::string::npos) << message;
    EXPECT_NE(message.find("rateLimited"), std::string::npos) << message;
    EXPECT_GT(seen.load(), 0) << "the first CA was asked";
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates WHERE id = " + cert +
                                 " AND cert_pem LIKE '-----BEGIN CERTIFICATE-----%'"),
              1)
        << "pebble's certificate is stored";
}

// Without a fallback, a CA that fails transiently keeps the row queued for a later attempt: the history row
// says when (retry_at) and why, and the metrics count the row waiting.
TEST_F(CaFailover, AnAttemptThatFailedTransientlySaysWhenItRunsAgain) {
    https_stub broken(dir_.path() / "stub-root.pem", [](https_stub::request const&) {
        https_stub::response r{bh::status::internal_server_error, 11};
        r.set("Content-Type", "application/problem+json");
        r.body() = R"({"type":"urn:ietf:params:acme:error:serverInternal","detail":"down"})";
        return r;
    });
    start_trusting(dir_.path() / "stub-root.pem", json::object{{"retry_base_seconds", 600}});
    auto const issued = request_issues(key_, std::stoll(account(broken.url("/directory"))), 1);
    ASSERT_EQ(issued.size(), 1u);
    auto const& [cert, hid] = issued[0];
    json::object row;
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
        auto const list = call("GET", "/apiv1/me/certificates/" + cert + "/issues", key_).json();
        row = list.at("data").at(0).as_object();
        if (!row.at("retry_at").is_null()) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_FALSE(row.at("retry_at").is_null()) << json::serialize(row);
    EXPECT_EQ(row.at("id").as_int64(), hid);
    EXPECT_EQ(row.at("status").as_string(), "PENDING");
    auto const now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    EXPECT_GT(row.at("retry_at").as_int64(), now + 200)
        << "the backoff from retry_base_seconds 600, jittered";
    EXPECT_NE(std::string(row.at("error_message").as_string()).find("Attempt 1 failed, retrying in"),
              std::string::npos)
        << row.at("error_message");
    // The queue as the metrics show it (read every 5 s).
    auto const metrics_until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (metric("certctrl_issuance_queue{state=\"waiting_retry\"}") < 1 &&
           std::chrono::steady_clock::now() < metrics_until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_EQ(metric("certctrl_issuance_queue{state=\"waiting_retry\"}"), 1);
    EXPECT_EQ(metric("certctrl_issuance_next_retry_timestamp_seconds"), row.at("retry_at").as_int64());
    EXPECT_EQ(metric("certctrl_issuance_runs_total{result=\"retry\"}"), 1);
}

// The list is validated (ACME accounts of the user, no repeats, not the certificate's own account, at most 4;
// SELF_CA certificates take none), shown on the record and changed by PATCH.
TEST_F(CaFailover, TheListIsValidatedAndPatchable) {
    https_stub unused(dir_.path() / "stub-root.pem", [](https_stub::request const&) {
        return https_stub::response{bh::status::not_found, 11};
    });
    start_trusting(dir_.path() / "stub-root.pem");
    auto const a = account(pebble_.directory_url);
    auto const b = account(unused.url("/directory"));
    auto ca = call("POST", "/apiv1/me/cas", key_, R"({"common_name":"Own root","valid_days":30})");
    ASSERT_EQ(ca.status, 200) << ca.body;
    auto self = call("POST", "/apiv1/me/acme-accounts", key_,
                     R"({"name":"self","provider":"SELF_CA","ca_id":)" + std::to_string(id_of(ca)) + "}");
    ASSERT_EQ(self.status, 200) << self.body;
    auto const self_id = std::to_string(id_of(self));
    auto create = [&](std::string const& acct, std::string const& list) {
        return call("POST", "/apiv1/me/certificates", key_,
                    R"({"domain_name":")" + fresh_domain() + R"(","acct_id":)" + acct +
                        R"(,"fallback_acct_ids":)" + list + "}");
    };
    EXPECT_EQ(create(a, "[" + self_id + "]").status, 400) << "a private CA is no fallback";
    EXPECT_EQ(create(self_id, "[" + a + "]").status, 400) << "SELF_CA certificates fail over nowhere";
    EXPECT_EQ(create(a, "[999999]").status, 404);
    EXPECT_EQ(create(a, "[" + b + "," + b + "]").status, 400);
    EXPECT_EQ(create(a, "[" + a + "]").status, 400);
    EXPECT_EQ(create(a, "[1,2,3,4,5]").status, 400);
    EXPECT_EQ(create(a, R"("1")").status, 400);
    auto made = create(a, "[]");
    ASSERT_EQ(made.status, 200) << made.body;
    auto const cert = std::to_string(id_of(made));
    auto patched =
        call("PATCH", "/apiv1/me/certificates/" + cert, key_, R"({"fallback_acct_ids":[)" + b + "]}");
    ASSERT_EQ(patched.status, 200) << patched.body;
    auto const doc = patched.json();
    EXPECT_EQ(std::to_string(doc.at("data").at("fallback_acct_ids").at(0).as_int64()), b);
    auto const got = call("GET", "/apiv1/me/certificates/" + cert, key_).json();
    EXPECT_EQ(got.at("data").at("fallback_acct_ids").as_array().size(), 1u);
}

}  // namespace
}  // namespace certctrl::test
