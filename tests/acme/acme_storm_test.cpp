// A renewal storm against the real pebble behind a CA that enforces a request rate (a proxy in front of
// pebble answering rateLimited above its limit, as a public CA would): with issuance.ca_limits set under that
// rate, every renewal succeeds without a single rateLimited answer, no more orders than allowed run at once,
// and another user's on-demand issuance is served during the storm instead of after it.
#include "acme_fixture.hpp"
#include "ca_proxy.hpp"

namespace certctrl::test {
namespace {

namespace json = boost::json;
namespace bh = boost::beast::http;
using clock_type = std::chrono::steady_clock;

class AcmeStorm : public acme_fixture {};

TEST_F(AcmeStorm, RenewalsKeepToTheCasLimitsAndOnDemandIssuanceIsServedDuringTheStorm) {
    std::string const origin = pebble_.directory_url.substr(0, pebble_.directory_url.find("/dir"));
    ca_proxy ca(dir_.path() / "proxy-root.pem", origin, pebble_.ca_file, 10);
    std::string const directory = ca.url("/dir");
    unsigned const max_orders = 6;
    auto cfg = config_overrides(64);
    auto& issuance = cfg["issuance"].as_object();
    issuance["acme_ca_file"] = trust_with(dir_.path() / "proxy-root.pem");
    issuance["renewal_check_seconds"] = 1;
    issuance["max_concurrent_per_user"] = 0;
    issuance["lease_seconds"] = 30;
    issuance["ca_limits"] = json::array{json::object{
        {"directory_url", directory}, {"requests_per_second", 8}, {"max_orders_in_flight", max_orders}}};
    start_with_metrics(cfg);

    auto account_of = [&](std::string const& key) { return std::to_string(acme_account(key, directory)); };
    std::vector<std::string> const scopes{"acme_accounts:*[read,write]", "certificates:*[read,write,issue]"};
    auto const storm_user = add_user("storm@example.com");
    auto storm_key = key_for("storm@example.com", scopes);
    auto const storm_account = account_of(storm_key);
    int const storm = 24;
    for (int i = 0; i < storm; ++i) {
        auto r = call("POST", "/apiv1/me/certificates", storm_key,
                      R"({"domain_name":")" + fresh_domain() + R"(","acct_id":)" + storm_account + "}");
        ASSERT_EQ(r.status, 200) << r.body;
    }
    add_user("ondemand@example.com");
    auto other_key = key_for("ondemand@example.com", scopes);
    auto other =
        call("POST", "/apiv1/me/certificates", other_key,
             R"({"domain_name":")" + fresh_domain() + R"(","acct_id":)" + account_of(other_key) + "}");
    ASSERT_EQ(other.status, 200) << other.body;
    auto const other_cert = std::to_string(id_of(other));

    // Every certificate of the storm user falls due at once (as after a mass import or a CA incident).
    schema_->exec(
        "UPDATE certificates SET auto_renew = 1, cert_pem = 'imported', not_before = UNIX_TIMESTAMP() - "
        "86400, not_after = UNIX_TIMESTAMP() + 3600, renew_after = 1 WHERE user_id = " +
        std::to_string(storm_user));
    std::string const storm_rows =
        "SELECT COUNT(*) FROM issue_history WHERE user_id = " + std::to_string(storm_user);
    std::string const running = "SELECT COUNT(*) FROM issue_history WHERE status = 'PROCESSING'";
    long long most_running = 0;
    auto const until = clock_type::now() + std::chrono::seconds(60);
    while (schema_->query_int(storm_rows) < storm && clock_type::now() < until) {
        most_running = std::max(most_running, schema_->query_int(running));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(schema_->query_int(storm_rows), storm) << "the scheduler queued every due renewal";

    // The other user's order, made while the storm is on.
    auto issued = call("POST", "/apiv1/me/certificates/" + other_cert + "/issues", other_key, "{}");
    ASSERT_EQ(issued.status, 200) << issued.body;
    auto const other_row = issued.json().at("data").at("issue_history_id").as_int64();
    std::string const other_done =
        "SELECT COUNT(*) FROM issue_history WHERE status = 'SUCCESS' AND id = " + std::to_string(other_row);
    std::string const storm_open = storm_rows + " AND status IN ('PENDING', 'PROCESSING')";
    long long storm_open_when_other_done = -1;
    while (clock_type::now() < until + std::chrono::seconds(60)) {
        most_running = std::max(most_running, schema_->query_int(running));
        if (storm_open_when_other_done < 0 && schema_->query_int(other_done) == 1) {
            storm_open_when_other_done = schema_->query_int(storm_open);
        }
        if (storm_open_when_other_done >= 0 && schema_->query_int(storm_open) == 0) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_EQ(schema_->query_int(storm_rows + " AND status = 'SUCCESS'"), storm)
        << "every renewal succeeded; the others: "
        << schema_->query_int(storm_rows + " AND status <> 'SUCCESS'");
    EXPECT_EQ(ca.refused(), 0) << "the CA never had to answer rateLimited";
    EXPECT_GT(ca.forwarded(), storm * 6) << "each order made its requests through the limited CA";
    EXPECT_LE(most_running, max_orders) << "no more orders than max_orders_in_flight ran at once";
    EXPECT_GT(most_running, 1) << "orders ran side by side";
    // What the instance says of it.
    std::string const ca_label = "{ca=\"" + directory + "\"}";
    EXPECT_GE(metric("certctrl_acme_requests_total" + ca_label), ca.forwarded());
    EXPECT_EQ(metric("certctrl_acme_rate_limited_total" + ca_label), 0);
    EXPECT_EQ(metric("certctrl_issuance_runs_total{result=\"success\"}"), storm + 1);
    EXPECT_EQ(metric("certctrl_issuance_in_flight"), 0);
    EXPECT_GE(storm_open_when_other_done, storm / 4)
        << "the on-demand issuance was served while most of the storm still waited";
}

}  // namespace
}  // namespace certctrl::test
