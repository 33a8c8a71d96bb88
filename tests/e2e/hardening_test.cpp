// End to end: the small hardening items of the security review (issue 12, Low): logout checks Origin, Origins
// are compared normalised, security headers, a budget for routes without credentials, a per-address
// connection cap, Cloudflare zone ids validated.
#include "api_fixture.hpp"

namespace certctrl::test {
namespace {

namespace json = boost::json;

using Hardening = api_fixture;

TEST_F(Hardening, LogoutFromAnotherSiteDoesNotEndTheSession) {
    start();
    add_user("lo@example.com");
    auto session = login("lo@example.com");
    auto foreign = session;
    foreign["Origin"] = "https://evil.example";
    auto refused = call("POST", "/auth/logout", foreign, "{}");
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_EQ(call("GET", "/apiv1/me/apikeys", session).status, 200) << "the session lives on";
    // Our own origin, spelled in capitals: the same origin.
    auto own = session;
    own["Origin"] = "HTTP://127.0.0.1:8080";
    EXPECT_EQ(call("POST", "/auth/logout", own, "{}").status, 200);
    EXPECT_EQ(call("GET", "/apiv1/me/apikeys", session).status, 401);
}

TEST_F(Hardening, EveryAnswerSaysNosniffAndHttpsPublicUrlsSendHsts) {
    start(json::object{{"server", {{"public_url", "https://certs.example"}}},
                       {"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}}});
    add_user("hd@example.com");
    auto r = call("GET", "/auth/status", headers{});
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
    EXPECT_NE(r.header("strict-transport-security").find("max-age="), std::string::npos);
    auto missing = call("GET", "/apiv1/nothing-here", headers{});
    EXPECT_EQ(missing.header("x-content-type-options"), "nosniff");
    // The default port is the same origin: a cookie write from https://certs.example:443 is ours.
    http_client c(server_->port());
    auto li =
        c.request("POST", "/auth/general", R"({"email":"hd@example.com","password":"correct-horse-battery"})",
                  {{"Content-Type", "application/json"}});
    ASSERT_EQ(li.status, 200) << li.body;
    std::string const sc = li.header("set-cookie");
    std::string const cookie = sc.substr(0, sc.find(';'));
    auto key = call(
        "POST", "/apiv1/me/apikeys", headers{{"Cookie", cookie}, {"Origin", "https://CERTS.example:443"}},
        R"({"name":"k","expires_in_seconds":600,"permissions":[{"obtype":"audit","obid":"*","actions":["read"]}]})");
    EXPECT_EQ(key.status / 100, 2) << key.body;
    auto cross = call(
        "POST", "/apiv1/me/apikeys", headers{{"Cookie", cookie}, {"Origin", "https://certs.example:8443"}},
        R"({"name":"k","expires_in_seconds":600,"permissions":[{"obtype":"audit","obid":"*","actions":["read"]}]})");
    EXPECT_EQ(cross.status, 403) << cross.body;
}

TEST_F(Hardening, RoutesWithoutCredentialsHaveAPerAddressBudget) {
    start(json::object{
        {"rate_limits",
         {{"auth_per_minute", 1000}, {"api_per_minute", 100000}, {"unauthenticated_per_minute", 5}}}});
    int first_429 = 0;
    for (int i = 1; i <= 11 && first_429 == 0; ++i) {
        auto r = call("GET", "/auth/status", headers{});
        if (r.status == 429) {
            first_429 = i;
            EXPECT_EQ(r.json().at("error").at("params").at("limit").as_string(), "anonymous");
        }
    }
    EXPECT_GE(first_429, 6);
    EXPECT_NE(first_429, 0) << "/auth/status was never limited";
}

TEST_F(Hardening, OneAddressHoldsAtMostItsShareOfConnections) {
    start(json::object{{"server", {{"max_connections_per_ip", 3}}}});
    std::vector<std::unique_ptr<http_client>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<http_client>(server_->port()));
        EXPECT_EQ(held.back()->request("GET", "/health", "", {}).status, 200);  // kept alive
    }
    http_client extra(server_->port());
    auto r = extra.request("GET", "/health", "", {});
    EXPECT_EQ(r.status, 503) << r.body;
    held.pop_back();  // one closes: a place is free again
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    http_client again(server_->port());
    EXPECT_EQ(again.request("GET", "/health", "", {}).status, 200);
}

TEST_F(Hardening, CloudflareZoneIdsMustBeZoneIds) {
    start();
    add_user("cf@example.com");
    auto key = key_for("cf@example.com", {"dns_providers:*[read,write]"});
    auto bad = call(
        "POST", "/apiv1/me/dns-providers", key,
        R"({"name":"cf","kind":"cloudflare","api_token":"cf-token-0123456789abcdef","zone_id":"../../accounts"})");
    EXPECT_EQ(bad.status, 400) << bad.body;
    EXPECT_EQ(bad.json().at("error").at("params").at("field").as_string(), "zone_id");
}

// Without valid credentials the server reads at most server.unauthenticated_body_limit_bytes of a body; a key
// that authenticates gets the full server.body_limit_bytes.
TEST_F(Hardening, NoLargeBodyIsReadBeforeAuthentication) {
    start(json::object{{"server", {{"unauthenticated_body_limit_bytes", 65536}}}});
    add_user("big@example.com");
    auto key = key_for("big@example.com", {"dns_providers:*[read,write]"});
    std::string const big = R"({"name":")" + std::string(200 * 1024, 'x') + R"(","kind":"manual"})";
    auto anonymous = call("POST", "/auth/general", headers{}, big);
    EXPECT_EQ(anonymous.status, 413) << anonymous.body.substr(0, 200);
    EXPECT_EQ(code_of(anonymous), 4013);
    auto fake = call("POST", "/apiv1/me/dns-providers",
                     bearer("ak_" + std::string(32, '0') + "." + std::string(36, 'x')), big);
    EXPECT_EQ(fake.status, 413) << "an invalid key buys no larger body";
    auto real = call("POST", "/apiv1/me/dns-providers", key, big);
    EXPECT_NE(real.status, 413) << real.body.substr(0, 200);
    EXPECT_EQ(real.status, 400) << "read in full, then refused for its too long name";
    // Small bodies without credentials work as before.
    EXPECT_EQ(
        call("POST", "/auth/general", headers{}, R"({"email":"big@example.com","password":"nope-nope"})")
            .status,
        401);
}

}  // namespace
}  // namespace certctrl::test
