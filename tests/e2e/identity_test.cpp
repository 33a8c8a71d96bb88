// End to end: identity and access against the real binary and MariaDB.
#include "certctrl/core/hex.hpp"
#include "certctrl/handlers/access.hpp"
#include "http_client.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <gtest/gtest.h>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;
using headers = std::map<std::string, std::string>;

constexpr char const* own_origin = "http://127.0.0.1:8080";  // the default server.public_url
constexpr char const* password = "correct-horse-battery";

class Identity : public ::testing::Test {
  protected:
    void SetUp() override {
        CERTCTRL_REQUIRE_DB();
        schema_ = std::make_unique<test_schema>();
    }

    // Generous limits unless a test asks otherwise, so the matrix is not rate limited.
    json::object config(json::object const& overrides = {}) {
        json::object base{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}}};
        for (auto const& kv : overrides)
            base[kv.key()] = kv.value();
        return make_config(schema_->db(), base);
    }

    void start(json::object const& overrides = {}, std::vector<std::string> env = {}) {
        cfg_ = config(overrides);
        cfg_path_ = dir_.path() / "c.json";
        std::ofstream(cfg_path_) << json::serialize(cfg_);
        env_ = env;
        server_ = std::make_unique<server_process>(cfg_, schema_->db().password, env);
    }

    std::vector<std::string> cli_env() const {
        auto e = env_;
        e.push_back("CERTCTRL_TEST_SERVER_DB_PASSWORD=" + schema_->db().password);
        return e;
    }

    std::int64_t add_user(std::string const& email, bool admin = false) {
        std::vector<std::string> args{"user",    "add", "--config",        cfg_path_.string(),
                                      "--email", email, "--password-stdin"};
        if (admin)
            args.push_back("--admin");
        auto r = run_server_command(args, cli_env(), std::chrono::seconds(30), std::string(password) + "\n");
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_EQ(r.output.find(password), std::string::npos);
        return schema_->query_int("SELECT id FROM users WHERE email = '" + email + "'");
    }

    http_response post_json(std::string const& target, std::string const& body, headers h = {}) {
        http_client c(server_->port());
        h.emplace("Content-Type", "application/json");
        return c.request("POST", target, body, h);
    }

    // Logs in and returns the session cookie value.
    std::string login(std::string const& email, std::string const& pw = password) {
        auto r = post_json("/auth/general", R"({"email":")" + email + R"(","password":")" + pw + R"("})");
        EXPECT_EQ(r.status, 200) << r.body;
        std::smatch m;
        std::string const sc = r.header("set-cookie");
        EXPECT_TRUE(std::regex_search(sc, m, std::regex("cjj365=([0-9a-f]{64})"))) << sc;
        return m.size() > 1 ? m[1].str() : std::string();
    }

    static headers session(std::string const& cookie) {
        return {{"Cookie", "cjj365=" + cookie}, {"Origin", own_origin}};
    }
    static headers bearer(std::string const& token) { return {{"Authorization", "Bearer " + token}}; }

    // Creates a key through the session API and returns {id, token}.
    std::pair<std::int64_t, std::string> make_key(std::string const& cookie, std::int64_t user_id,
                                                  std::string const& permissions,
                                                  std::int64_t expires = 3600) {
        auto r = post_json("/apiv1/users/" + std::to_string(user_id) + "/apikeys",
                           R"({"name":"k","expires_in_seconds":)" + std::to_string(expires) +
                               R"(,"permissions":)" + permissions + "}",
                           session(cookie));
        EXPECT_EQ(r.status, 201) << r.body;
        auto d = r.json().at("data");
        return {d.at("id").as_int64(), std::string(d.at("token").as_string())};
    }

    http_response call(std::string const& method, std::string const& target, headers h,
                       std::string const& body = "{}") {
        http_client c(server_->port());
        if (method == "POST" || method == "PUT") {
            h.emplace("Content-Type", "application/json");
            return c.request(method, target, body, h);
        }
        return c.request(method, target, "", h);
    }

    static int code_of(http_response const& r) {
        try {
            return static_cast<int>(r.json().at("error").at("code").as_int64());
        } catch (...) {
            return 0;
        }
    }

    temp_dir dir_;
    std::unique_ptr<test_schema> schema_;
    std::unique_ptr<server_process> server_;
    json::object cfg_;
    std::filesystem::path cfg_path_;
    std::vector<std::string> env_;
};

std::string expand(std::string pattern, std::int64_t user_id, std::int64_t key_id, std::int64_t account_id) {
    pattern = std::regex_replace(pattern, std::regex(":user_id"), std::to_string(user_id));
    pattern =
        std::regex_replace(pattern,
                           std::regex(":acct_id|:acme_account_id|:dns_provider_id|:ca_id|:cert_id|:"
                                      "certificate_id|:device_id|:issue_history_id|:webhook_id|:delivery_id"),
                           std::to_string(account_id));
    pattern = std::regex_replace(pattern, std::regex("\\{device_public_id\\}"),
                                 "0d6f4a52-3c1e-4b7a-9f0e-2a4b6c8d0e1f");
    pattern = std::regex_replace(pattern, std::regex("\\{name\\}"), "www.example.com");
    return std::regex_replace(pattern, std::regex(":apikey_id"), std::to_string(key_id));
}

TEST_F(Identity, AccessMatrixOverEveryGuardedRoute) {
    start();
    auto alice = add_user("alice@example.com");
    auto bob = add_user("bob@example.com");
    auto alice_cookie = login("alice@example.com");
    auto bob_cookie = login("bob@example.com");
    auto all =
        R"([{"obtype":"apikeys","obid":"*","actions":["read","write"]},{"obtype":"audit","obid":"*","actions":["read"]},)"
        R"({"obtype":"acme_accounts","obid":"*","actions":["read","write"]},)"
        R"({"obtype":"dns_providers","obid":"*","actions":["read","write"]},)"
        R"({"obtype":"cas","obid":"*","actions":["read","write"]},)"
        R"({"obtype":"certificates","obid":"*","actions":["read","write","issue"]},)"
        R"({"obtype":"devices","obid":"*","actions":["read","write","exec"]},)"
        R"({"obtype":"domains","obid":"*","actions":["read","write"]},)"
        R"({"obtype":"webhooks","obid":"*","actions":["read","write"]}])";
    // The weak key holds only a scope no guarded route asks for.
    auto [weak_id, weak] = make_key(
        alice_cookie, alice, R"([{"obtype":"ForDeviceAuthenticate","obid":"*","actions":["validate"]}])");
    auto [full_id, full] = make_key(alice_cookie, alice, all);
    auto [expired_id, expired] = make_key(alice_cookie, alice, all);
    auto [deleted_id, deleted] = make_key(alice_cookie, alice, all);
    auto [bob_key_id, bob_key] = make_key(bob_cookie, bob, all);
    (void)bob_key_id;
    schema_->exec("UPDATE api_keys SET expires_at = 1 WHERE id = " + std::to_string(expired_id));
    ASSERT_EQ(call("DELETE", "/apiv1/me/apikeys/" + std::to_string(deleted_id), bearer(full)).status, 204);
    (void)full_id;
    auto account =
        post_json("/apiv1/me/acme-accounts", R"({"name":"le","provider":"letsencrypt"})", bearer(full));
    ASSERT_EQ(account.status, 200) << account.body;
    auto const account_id = account.json().at("data").at("id").as_int64();
    // A device of alice's, registered by the agent path: its access token is the credential of the device
    // routes.
    auto device = post_json("/apiv1/me/devices",
                            R"({"device_public_id":"5e0f4a52-3c1e-4b7a-9f0e-2a4b6c8d0e1f","dev_pk":")" +
                                base64_encode(std::string(32, 'k')) + R"("})",
                            bearer(full));
    ASSERT_EQ(device.status, 201) << device.body;
    std::string const device_token(device.json().at("data").at("session").at("access_token").as_string());

    auto rows = handlers::access_table();
    std::stable_sort(rows.begin(), rows.end(), [](auto const& a, auto const& b) {
        return a.method != boost::beast::http::verb::delete_ && b.method == boost::beast::http::verb::delete_;
    });
    int guarded = 0;
    for (auto const& row : rows) {
        if (row.rule.kind == handlers::access::who::anyone)
            continue;
        ++guarded;
        std::string const method(boost::beast::http::to_string(row.method));
        std::string const path = expand(row.pattern, alice, weak_id, account_id);
        SCOPED_TRACE(method + " " + path);
        auto none = call(method, path, {});
        EXPECT_EQ(none.status, 401) << none.body;
        EXPECT_EQ(code_of(none), 4010);
        EXPECT_EQ(call(method, path, bearer(expired)).status, 401);
        EXPECT_EQ(call(method, path, bearer(deleted)).status, 401);
        EXPECT_EQ(
            call(method, path, bearer("ak_" + std::string(32, '0') + "." + std::string(36, 'x'))).status,
            401);
        if (row.rule.kind == handlers::access::who::user_path) {
            auto other = call(method, path, session(bob_cookie));
            EXPECT_EQ(other.status, 403) << other.body;
            EXPECT_EQ(code_of(other), 4003);
            // A key on a users/ path: only its own user's, with its /me twin's scope (the weak key holds
            // none of them).
            EXPECT_EQ(call(method, path, bearer(bob_key)).status, 403) << "another user's key";
            EXPECT_EQ(call(method, path, bearer(weak)).status, 403) << "a key without the scope";
        } else if (row.rule.kind == handlers::access::who::admin) {
            auto user = call(method, path, session(alice_cookie));
            EXPECT_EQ(user.status, 403) << user.body;
            EXPECT_EQ(code_of(user), 4003);
            EXPECT_EQ(call(method, path, bearer(full)).status, 403) << "admin routes take no API key";
        } else if (row.rule.kind == handlers::access::who::device) {
            EXPECT_EQ(call(method, path, bearer(full)).status, 401) << "an API key is not a device token";
            EXPECT_EQ(call(method, path, session(alice_cookie)).status, 401);
        } else {
            auto lacking = call(method, path, bearer(weak));
            EXPECT_EQ(lacking.status, 403) << lacking.body;
            EXPECT_EQ(code_of(lacking), 4003);
            EXPECT_EQ(call(method, path, bearer(device_token)).status, 401)
                << "a device token is not a user's";
        }
    }
    EXPECT_GE(guarded, 10);
    add_user("root@example.com", true);
    auto admin_cookie = login("root@example.com");
    // The rightful callers get through (DELETE rows come last, they remove the weak key).
    for (auto const& row : rows) {
        if (row.rule.kind == handlers::access::who::anyone)
            continue;
        std::string const method(boost::beast::http::to_string(row.method));
        std::string const path = expand(row.pattern, alice, weak_id, account_id);
        SCOPED_TRACE(method + " " + path);
        std::string const body =
            R"({"name":"n","expires_in_seconds":600,"permissions":[{"obtype":"audit","obid":"*","actions":["read"]}]})";
        auto r =
            row.rule.kind == handlers::access::who::user_path
                ? call(method, path, session(alice_cookie), body)
            : row.rule.kind == handlers::access::who::device ? call(method, path, bearer(device_token), body)
            : row.rule.kind == handlers::access::who::admin  ? call(method, path, session(admin_cookie), body)
                                                             : call(method, path, bearer(full), body);
        if (method == "POST" && row.pattern.ends_with("/issues/history")) {
            // The workers' internal callback refuses every user, rightful or not.
            EXPECT_EQ(r.status, 403);
            EXPECT_NE(r.body.find("internal callback"), std::string::npos) << r.body;
            continue;
        }
        // Access is granted: whatever the body's fate (400 for a body meant for another route), never
        // 401/403.
        EXPECT_TRUE(r.status != 401 && r.status != 403 && r.status < 500) << r.status << r.body;
    }
    // An admin's session may act for another user.
    EXPECT_EQ(call("GET", "/apiv1/users/" + std::to_string(bob) + "/apikeys", session(admin_cookie)).status,
              200);
    // Denials are audited for the denied user.
    EXPECT_GE(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'permission.denied'"), 5);
}

TEST_F(Identity, LoginSetsAHardenedCookieAndRotatesTheSession) {
    start();
    auto uid = add_user("carol@example.com");
    auto r =
        post_json("/auth/general", R"({"email":"Carol@Example.com","password":"correct-horse-battery"})");
    ASSERT_EQ(r.status, 200) << r.body;
    auto d = r.json().at("data");
    EXPECT_EQ(d.at("user").at("id").as_int64(), uid);
    EXPECT_EQ(d.at("user").at("email").as_string(), "carol@example.com");
    EXPECT_TRUE(d.at("user").at("roles").is_array());
    EXPECT_EQ(d.at("to").as_string(), "/");
    auto const sc = r.header("set-cookie");
    for (auto const* flag : {"HttpOnly", "SameSite=Lax", "Path=/"}) {
        EXPECT_NE(sc.find(flag), std::string::npos) << sc;
    }
    EXPECT_EQ(sc.find("Secure"), std::string::npos) << "public_url is http";
    EXPECT_EQ(r.body.find(sc.substr(7, 64)), std::string::npos) << "session id must not be in the body";

    auto first = login("carol@example.com");
    // Logging in again with the old cookie rotates: a new id, and the old one stops working.
    auto again = post_json("/auth", R"({"email":"carol@example.com","password":"correct-horse-battery"})",
                           {{"Cookie", "cjj365=" + first}});
    ASSERT_EQ(again.status, 200);
    std::smatch m;
    std::string const sc2 = again.header("set-cookie");
    ASSERT_TRUE(std::regex_search(sc2, m, std::regex("cjj365=([0-9a-f]{64})")));
    std::string const second = m[1].str();
    EXPECT_NE(second, first);
    EXPECT_EQ(code_of(call("GET", "/auth/status", {{"Cookie", "cjj365=" + first}})), 999999);
    auto status = call("GET", "/auth/status", {{"Cookie", "cjj365=" + second}});
    EXPECT_EQ(status.status, 200);
    EXPECT_EQ(status.json().at("data").at("user").at("email").as_string(), "carol@example.com");

    auto out = call("POST", "/auth/logout", session(second));
    EXPECT_EQ(out.status, 200);
    EXPECT_NE(out.header("set-cookie").find("Max-Age=0"), std::string::npos);
    auto after = call("GET", "/auth/status", {{"Cookie", "cjj365=" + second}});
    EXPECT_EQ(after.status, 200);
    EXPECT_EQ(code_of(after), 999999);  // logged out: 200 with NOT_AN_ERROR, as the agent expects
    EXPECT_EQ(call("GET", "/apiv1/users/" + std::to_string(uid) + "/apikeys", session(second)).status, 401);
}

TEST_F(Identity, SecureCookieWhenThePublicUrlIsHttps) {
    start(json::object{{"server", {{"public_url", "https://certs.example.com"}, {"port", 0}}}});
    add_user("dan@example.com");
    auto r = post_json("/auth/general", R"({"email":"dan@example.com","password":"correct-horse-battery"})");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.header("set-cookie").find("; Secure"), std::string::npos);
}

TEST_F(Identity, WrongPasswordAndUnknownUserAre401AndAudited) {
    start();
    auto uid = add_user("erin@example.com");
    auto bad = post_json("/auth/general", R"({"email":"erin@example.com","password":"wrong-password"})");
    EXPECT_EQ(bad.status, 401);
    EXPECT_EQ(code_of(bad), 4010);
    auto unknown =
        post_json("/auth/general", R"({"email":"nobody@example.com","password":"wrong-password"})");
    EXPECT_EQ(unknown.status, 401);
    EXPECT_EQ(unknown.json().at("error").at("what"), bad.json().at("error").at("what"));  // no enumeration
    EXPECT_EQ(
        schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'login.failure' AND user_id = " +
                           std::to_string(uid)),
        1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM sessions"), 0);
    auto cookie = login("erin@example.com");
    auto audit = call("GET", "/apiv1/users/" + std::to_string(uid) + "/audit?limit=10", session(cookie));
    ASSERT_EQ(audit.status, 200) << audit.body;
    auto items = audit.json().at("data").as_array();
    ASSERT_GE(items.size(), 2u);
    EXPECT_EQ(items[0].at("action").as_string(), "login.success");  // newest first
    EXPECT_EQ(items[1].at("action").as_string(), "login.failure");
    EXPECT_EQ(items[0].at("ip").as_string(), "127.0.0.1");
    EXPECT_EQ(items[0].at("request_id").as_string().size(), 32u);
    EXPECT_EQ(audit.json().at("meta").at("limit").as_int64(), 10);
}

TEST_F(Identity, AuthenticationIsRateLimitedPerClientIp) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 10}, {"api_per_minute", 100000}}}});
    add_user("frank@example.com");
    // The fixed one-minute window may roll over once during the loop, so the 429 comes at the 11th
    // request, or at the latest at the 21st. The requests after the loop count on the same window: the loop
    // starts with room left in the minute.
    wait_for_room_in_window(15);
    int ok = 0;
    http_response limited;
    for (int i = 0; i < 21; ++i) {
        auto r = post_json("/auth/general", R"({"email":"frank@example.com","password":"nope-nope"})");
        if (r.status == 429) {
            limited = r;
            break;
        }
        EXPECT_EQ(r.status, 401);
        ++ok;
    }
    ASSERT_EQ(limited.status, 429) << "no 429 after 21 logins";
    EXPECT_GE(ok, 10);
    EXPECT_EQ(code_of(limited), 4029);
    int const retry = std::stoi(limited.header("retry-after"));
    EXPECT_GE(retry, 1);
    EXPECT_LE(retry, 60);
    auto const body = limited.json();
    auto const& params = body.at("error").at("params");
    EXPECT_EQ(params.at("limit").as_string(), "auth");
    EXPECT_EQ(params.at("retry_after").as_int64(), retry);
    // X-Forwarded-For from an untrusted peer does not buy a new budget.
    EXPECT_EQ(post_json("/auth/general", R"({"email":"frank@example.com","password":"x"})",
                        {{"X-Forwarded-For", "198.51.100.7"}})
                  .status,
              429);
}

TEST_F(Identity, TrustedProxyForwardedAddressesHaveTheirOwnBudget) {
    start(json::object{{"server", {{"port", 0}, {"trusted_proxies", json::array{"127.0.0.1"}}}},
                       {"rate_limits", {{"auth_per_minute", 2}, {"api_per_minute", 100000}}}});
    add_user("gina@example.com");
    auto attempt = [&](char const* ip) {
        return post_json("/auth/general", R"({"email":"gina@example.com","password":"x"})",
                         {{"X-Forwarded-For", ip}})
            .status;
    };
    int first_429 = 0;
    for (int i = 1; i <= 5 && first_429 == 0; ++i) {
        if (attempt("198.51.100.1") == 429)
            first_429 = i;
    }
    EXPECT_GE(first_429, 3);
    EXPECT_EQ(attempt("198.51.100.2"), 401);  // another client behind the proxy is not limited
    auto denied = schema_->query_int(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'login.failure' AND ip = '198.51.100.1'");
    EXPECT_GE(denied, 2);
}

// Guessing one account's password from many addresses is throttled by the account's own budget of failed
// logins; other accounts are not affected.
TEST_F(Identity, FailedLoginsSpendAPerAccountBudgetFromAnyAddress) {
    start(json::object{{"server", {{"port", 0}, {"trusted_proxies", json::array{"127.0.0.1"}}}},
                       {"rate_limits",
                        {{"auth_per_minute", 1000},
                         {"api_per_minute", 100000},
                         {"login_failures_per_account_per_hour", 5}}}});
    add_user("hal@example.com");
    add_user("ida@example.com");
    wait_for_room_in_window(20, 3600);  // the account budget is a clock hour: count inside one
    auto attempt = [&](char const* email, char const* secret, std::string const& ip) {
        return post_json("/auth/general",
                         std::string(R"({"email":")") + email + R"(","password":")" + secret + R"("})",
                         {{"X-Forwarded-For", ip}});
    };
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(attempt("hal@example.com", "guess", "203.0.113." + std::to_string(i + 1)).status, 401);
    }
    auto limited = attempt("HAL@example.com", "correct-horse-battery", "203.0.113.99");
    ASSERT_EQ(limited.status, 429) << limited.body;
    EXPECT_EQ(limited.json().at("error").at("params").at("limit").as_string(), "login_account");
    EXPECT_GE(std::stoi(limited.header("retry-after")), 1);
    EXPECT_EQ(attempt("ida@example.com", "correct-horse-battery", "203.0.113.99").status, 200);
}

// IPv6 clients are budgeted per /64: addresses of one /64 share a budget.
TEST_F(Identity, Ipv6ClientsShareTheBudgetOfTheirSlash64) {
    start(json::object{{"server", {{"port", 0}, {"trusted_proxies", json::array{"127.0.0.1"}}}},
                       {"rate_limits", {{"auth_per_minute", 3}, {"api_per_minute", 100000}}}});
    auto attempt = [&](std::string const& ip) {
        return post_json("/auth/general", R"({"email":"nobody@example.com","password":"x"})",
                         {{"X-Forwarded-For", ip}})
            .status;
    };
    // Every attempt from a new address of the same /64; the window may roll over once.
    int first_429 = 0;
    for (int i = 1; i <= 7 && first_429 == 0; ++i) {
        if (attempt("2001:db8:1:2::" + std::to_string(i)) == 429)
            first_429 = i;
    }
    EXPECT_GE(first_429, 4);
    EXPECT_NE(first_429, 0) << "fresh addresses of one /64 were never limited";
    EXPECT_EQ(attempt("2001:db8:1:3::1"), 401) << "another /64 has its own budget";
}

TEST_F(Identity, GeneralApiIsRateLimitedPerUser) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 5}}}});
    auto uid = add_user("hank@example.com");
    auto cookie = login("hank@example.com");
    auto const path = "/apiv1/users/" + std::to_string(uid) + "/apikeys";
    int first_429 = 0;
    for (int i = 1; i <= 11 && first_429 == 0; ++i) {
        auto r = call("GET", path, session(cookie));
        if (r.status == 429) {
            first_429 = i;
            EXPECT_EQ(r.json().at("error").at("params").at("limit").as_string(), "api");
            EXPECT_FALSE(r.header("retry-after").empty());
        }
    }
    EXPECT_GE(first_429, 6);
}

TEST_F(Identity, CookieWritesNeedOurOriginAndBearerWritesDoNot) {
    start(json::object{{"auth", {{"dashboard_origins", json::array{"https://dash.example.com"}}}}});
    auto uid = add_user("ivy@example.com");
    auto cookie = login("ivy@example.com");
    auto const path = "/apiv1/users/" + std::to_string(uid) + "/apikeys";
    std::string const body =
        R"({"name":"x","expires_in_seconds":600,"permissions":[{"obtype":"apikeys","obid":"*","actions":["read","write"]}]})";
    auto foreign =
        call("POST", path, {{"Cookie", "cjj365=" + cookie}, {"Origin", "https://evil.example"}}, body);
    EXPECT_EQ(foreign.status, 403);
    EXPECT_EQ(code_of(foreign), 4003);
    EXPECT_EQ(call("POST", path, {{"Cookie", "cjj365=" + cookie}, {"Origin", "null"}}, body).status, 403);
    EXPECT_EQ(
        call("POST", path, {{"Cookie", "cjj365=" + cookie}, {"Sec-Fetch-Site", "cross-site"}}, body).status,
        403);
    EXPECT_EQ(
        call("POST", path, {{"Cookie", "cjj365=" + cookie}, {"Sec-Fetch-Site", "same-site"}}, body).status,
        403);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM api_keys"), 0);
    // Neither Origin nor Sec-Fetch-Site: not a browser (seed S0's `curl -b cookies.txt -d ...`), unless a
    // Referer names another site.
    EXPECT_EQ(
        call("POST", path, {{"Cookie", "cjj365=" + cookie}, {"Referer", "https://evil.example/page"}}, body)
            .status,
        403);
    EXPECT_EQ(call("POST", path, {{"Cookie", "cjj365=" + cookie}}, body).status, 201);
    EXPECT_EQ(call("POST", path, {{"Cookie", "cjj365=" + cookie}, {"Origin", own_origin}}, body).status, 201);
    EXPECT_EQ(
        call("POST", path, {{"Cookie", "cjj365=" + cookie}, {"Origin", "https://dash.example.com"}}, body)
            .status,
        201);
    auto same_site =
        call("POST", path, {{"Cookie", "cjj365=" + cookie}, {"Sec-Fetch-Site", "same-origin"}}, body);
    ASSERT_EQ(same_site.status, 201);
    // The dashboard served here, reached at an address other than public_url: the browser says same-origin.
    EXPECT_EQ(call("POST", path,
                   {{"Cookie", "cjj365=" + cookie},
                    {"Origin", "http://10.1.2.3:8080"},
                    {"Sec-Fetch-Site", "same-origin"}},
                   body)
                  .status,
              201);
    EXPECT_EQ(call("POST", path,
                   {{"Cookie", "cjj365=" + cookie},
                    {"Origin", "http://10.1.2.3:8080"},
                    {"Sec-Fetch-Site", "cross-site"}},
                   body)
                  .status,
              403);
    std::string const token(same_site.json().at("data").at("token").as_string());
    EXPECT_EQ(call("POST", "/apiv1/me/apikeys", bearer(token), body).status, 201);  // Bearer: exempt
    EXPECT_EQ(call("GET", path, {{"Cookie", "cjj365=" + cookie}}).status, 200);     // reads are not checked
}

TEST_F(Identity, ApiKeyLifecycleShowsTheTokenOnceAndStoresOnlyAHash) {
    start();
    auto uid = add_user("jill@example.com");
    auto cookie = login("jill@example.com");
    auto created = post_json(
        "/apiv1/me/apikeys",
        R"({"name":"deploy","expires_in_seconds":86400,"permissions":[{"obtype":"apikeys","obid":"*","actions":["read","write"]},{"obtype":"certificates","obid":123,"actions":["read","issue"]}]})",
        session(cookie));
    ASSERT_EQ(created.status, 201) << created.body;
    auto d = created.json().at("data");
    std::string const token(d.at("token").as_string());
    EXPECT_TRUE(std::regex_match(token, std::regex("ak_[0-9a-f]{32}\\.[0-9A-Za-z]{36}"))) << token;
    EXPECT_EQ(d.at("expires_in_seconds").as_int64(), 86400);
    EXPECT_EQ(d.at("permissions").as_array().size(), 2u);
    auto const id = d.at("id").as_int64();
    std::string const secret = token.substr(36);

    auto list = call("GET", "/apiv1/me/apikeys", bearer(token));
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.json().at("meta").at("total").as_int64(), 1);
    auto one = call("GET", "/apiv1/users/" + std::to_string(uid) + "/apikeys/" + std::to_string(id),
                    session(cookie));
    ASSERT_EQ(one.status, 200);
    for (auto const* body : {&list.body, &one.body}) {
        EXPECT_EQ(body->find(secret), std::string::npos);
        EXPECT_EQ(body->find("\"token\""), std::string::npos);
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM api_keys WHERE secret_hash = UNHEX(SHA2('" + secret +
                                 "', 256))"),
              1);

    // A key cannot mint a key with more than it holds.
    auto escalate = call(
        "POST", "/apiv1/me/apikeys", bearer(token),
        R"({"name":"x","expires_in_seconds":600,"permissions":[{"obtype":"certificates","obid":"*","actions":["read"]}]})");
    EXPECT_EQ(escalate.status, 403);
    auto narrower = call(
        "POST", "/apiv1/me/apikeys", bearer(token),
        R"({"name":"x","expires_in_seconds":600,"permissions":[{"obtype":"certificates","obid":123,"actions":["read"]}]})");
    EXPECT_EQ(narrower.status, 201) << narrower.body;

    EXPECT_EQ(call("GET", "/apiv1/me/apikeys/999999", bearer(token)).status, 404);
    EXPECT_EQ(call("DELETE", "/apiv1/users/" + std::to_string(uid) + "/apikeys/" + std::to_string(id),
                   session(cookie))
                  .status,
              204);
    EXPECT_EQ(call("GET", "/apiv1/me/apikeys", bearer(token)).status, 401);  // at once
    EXPECT_EQ(schema_->query_int(
                  "SELECT COUNT(*) FROM audit_log WHERE action IN ('apikey.create','apikey.delete')"),
              3);
}

// The cached-lookup count of an instance, from its /metrics.
std::int64_t cache_hits(http_client& c, std::string const& token) {
    auto m = c.get("/metrics", {{"Authorization", "Bearer " + token}});
    std::smatch found;
    if (!std::regex_search(m.body, found,
                           std::regex(R"(certctrl_credential_cache_lookups_total\{result="hit"\} (\d+))"))) {
        ADD_FAILURE() << "no cache metric in: " << m.body.substr(0, 200);
        return -1;
    }
    return std::stoll(found[1].str());
}

// Polls `still` until it is false; the time it took (the test fails past `limit`).
template <class Still>
std::chrono::milliseconds until_refused(Still still, std::chrono::milliseconds limit) {
    auto const t0 = std::chrono::steady_clock::now();
    while (still()) {
        if (std::chrono::steady_clock::now() - t0 > limit + std::chrono::seconds(2)) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
}

TEST_F(Identity, RevocationsReachAnotherInstanceWithinASecond) {
    std::string const metrics_token = "metrics-token-0123456789";
    start(json::object{{"metrics", {{"token_env", "E2E_METRICS_TOKEN"}}}},
          {"E2E_METRICS_TOKEN=" + metrics_token});
    auto uid = add_user("kim@example.com");
    auto cookie = login("kim@example.com");
    auto [id, token] =
        make_key(cookie, uid, R"([{"obtype":"apikeys","obid":"*","actions":["read","write"]}])");
    auto const keys_path = "/apiv1/users/" + std::to_string(uid) + "/apikeys";
    server_process other(cfg_, schema_->db().password, env_);
    http_client b(other.port());
    // Both credentials work on the other instance and are served from its memory once seen.
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(b.get("/apiv1/me/apikeys", bearer(token)).status, 200);
        EXPECT_EQ(b.get(keys_path, session(cookie)).status, 200);
        std::this_thread::sleep_for(
            std::chrono::milliseconds(300));  // the cache is trusted once the epoch is read
    }
    auto const hits = cache_hits(b, metrics_token);
    EXPECT_GE(hits, 2) << "the other instance answered from its cache";

    // A deleted key: refused here at once, and there within a second.
    EXPECT_EQ(call("DELETE", "/apiv1/me/apikeys/" + std::to_string(id), bearer(token)).status, 204);
    EXPECT_EQ(call("GET", "/apiv1/me/apikeys", bearer(token)).status, 401);
    auto took = until_refused([&] { return b.get("/apiv1/me/apikeys", bearer(token)).status == 200; },
                              std::chrono::seconds(1));
    EXPECT_LT(took, std::chrono::milliseconds(1000))
        << "key revocation reached the other instance in " << took.count() << " ms";
    EXPECT_EQ(b.get("/apiv1/me/apikeys", bearer(token)).status, 401);

    // A logout: the session ends there within a second.
    EXPECT_EQ(b.get(keys_path, session(cookie)).status, 200);
    EXPECT_EQ(call("POST", "/auth/logout", session(cookie)).status, 200);
    took = until_refused([&] { return b.get(keys_path, session(cookie)).status == 200; },
                         std::chrono::seconds(1));
    EXPECT_LT(took, std::chrono::milliseconds(1000))
        << "logout reached the other instance in " << took.count() << " ms";

    // A disabled user: its remaining session and key end on both instances within a second.
    auto cookie2 = login("kim@example.com");
    auto [id2, token2] = make_key(cookie2, uid, R"([{"obtype":"apikeys","obid":"*","actions":["read"]}])");
    EXPECT_EQ(b.get("/apiv1/me/apikeys", bearer(token2)).status, 200);
    EXPECT_EQ(b.get(keys_path, session(cookie2)).status, 200);
    auto r =
        run_server_command({"user", "disable", "--config", cfg_path_.string(), "--email", "kim@example.com"},
                           cli_env(), std::chrono::seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    took = until_refused(
        [&] {
            return b.get("/apiv1/me/apikeys", bearer(token2)).status == 200 ||
                   b.get(keys_path, session(cookie2)).status == 200 ||
                   call("GET", "/apiv1/me/apikeys", bearer(token2)).status == 200;
        },
        std::chrono::seconds(1));
    EXPECT_LT(took, std::chrono::milliseconds(1000))
        << "disabling reached both instances in " << took.count() << " ms";
    EXPECT_EQ(post_json("/auth/general",
                        R"({"email":"kim@example.com","password":")" + std::string(password) + R"("})")
                  .status,
              401)
        << "a disabled user cannot log in";
    r = run_server_command({"user", "enable", "--config", cfg_path_.string(), "--email", "kim@example.com"},
                           cli_env(), std::chrono::seconds(30));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    took = until_refused([&] { return call("GET", "/apiv1/me/apikeys", bearer(token2)).status != 200; },
                         std::chrono::seconds(1));
    EXPECT_LT(took, std::chrono::milliseconds(1000)) << "enabled again after " << took.count() << " ms";
}

TEST_F(Identity, BadInputIs400WithAPreciseMessageAndNothingIsStored) {
    start();
    auto uid = add_user("lee@example.com");
    auto cookie = login("lee@example.com");
    auto const keys = "/apiv1/users/" + std::to_string(uid) + "/apikeys";
    auto count = [&] {
        return schema_->query_int(
            "SELECT (SELECT COUNT(*) FROM api_keys) + (SELECT COUNT(*) FROM users) * 1000 + "
            "(SELECT COUNT(*) FROM sessions) * 1000000");
    };
    auto const before = count();
    struct bad_case {
        std::string target;
        std::string body;
        std::string content_type;
        int status;
        std::string needle;
    };
    std::string const big(10 * 1024, 'a');
    std::vector<bad_case> cases = {
        {"/auth/general", "{not json", "application/json", 400, "Malformed JSON"},
        {"/auth/general", "[]", "application/json", 400, "JSON object"},
        {"/auth/general", R"({"password":"x"})", "application/json", 400, "email is required"},
        {"/auth/general", R"({"email":"lee@example.com"})", "application/json", 400, "password is required"},
        {"/auth/general", R"({"email":42,"password":"x"})", "application/json", 400,
         "email must be a string"},
        {"/auth/general", R"({"email":")" + big + R"(@x.io","password":"x"})", "application/json", 400,
         "email must be at most 254 bytes"},
        {"/auth/general", R"({"email":"lee@example.com","password":"x","action":"fly"})", "application/json",
         400, "Unknown action 'fly'"},
        {"/auth/general", R"({"email":"a","password":"b"})", "text/plain", 415, "application/json"},
        {"/auth/general", R"({"action":"register","email":"new@example.com","password":"longenough"})",
         "application/json", 403, "Registration is disabled"},
        {keys, "", "application/json", 400, "JSON object"},
        {keys, R"({"expires_in_seconds":60,"permissions":[]})", "application/json", 400, "name is required"},
        {keys, R"({"name":"k","permissions":[]})", "application/json", 400, "expires_in_seconds is required"},
        {keys, R"({"name":"k","expires_in_seconds":"soon","permissions":[]})", "application/json", 400,
         "expires_in_seconds must be an integer"},
        {keys, R"({"name":"k","expires_in_seconds":5,"permissions":[]})", "application/json", 400,
         "expires_in_seconds must be between"},
        {keys, R"({"name":"k","expires_in_seconds":-60,"permissions":[]})", "application/json", 400,
         "expires_in_seconds must be between"},
        {keys, R"({"name":"k","expires_in_seconds":1e99,"permissions":[]})", "application/json", 400,
         "expires_in_seconds must be an integer"},
        {keys, R"({"name":"k","expires_in_seconds":600})", "application/json", 400,
         "permissions is required"},
        {keys, R"({"name":"k","expires_in_seconds":600,"permissions":{}})", "application/json", 400,
         "permissions must be an array"},
        {keys,
         R"({"name":"k","expires_in_seconds":600,"permissions":[{"obtype":"x","obid":"*","actions":["read"]}]})",
         "application/json", 400, "unknown obtype 'x'"},
        {keys, R"({"name":")" + big + R"(","expires_in_seconds":600,"permissions":[]})", "application/json",
         400, "name must be at most 128 bytes"},
        {keys, R"({"name":"","expires_in_seconds":600,"permissions":[]})", "application/json", 400,
         "name must be 1-128 characters"},
        {keys + "?x=1", R"({"name":"k","expires_in_seconds":600,"permissions":[]})", "text/html", 415,
         "application/json"},
    };
    for (auto const& c : cases) {
        SCOPED_TRACE(c.target + " " + c.body.substr(0, 80));
        headers h = c.target.rfind("/apiv1", 0) == 0 ? session(cookie) : headers{};
        h["Content-Type"] = c.content_type;
        http_client client(server_->port());
        auto r = client.request("POST", c.target, c.body, h);
        EXPECT_EQ(r.status, c.status) << r.body;
        EXPECT_NE(r.body.find(c.needle), std::string::npos) << r.body;
    }
    EXPECT_EQ(count(), before);
    auto page = call("GET", keys + "?limit=0", session(cookie));
    EXPECT_EQ(page.status, 400);
    EXPECT_NE(page.body.find("limit must be an integer in 1..1000"), std::string::npos);
    EXPECT_EQ(call("GET", keys + "?offset=-1", session(cookie)).status, 400);
    EXPECT_EQ(call("GET", "/apiv1/users/abc/apikeys", session(cookie)).status, 400);
}

TEST_F(Identity, RegistrationAndActivationWhenEnabled) {
    start(json::object{{"auth", {{"registration_enabled", true}}}},
          {"CERTCTRL_ACTIVATION_CODE=let-me-in-2026"});
    auto reg = post_json("/auth/general",
                         R"({"action":"register","email":"max@example.com","password":"longenough"})");
    ASSERT_EQ(reg.status, 200) << reg.body;
    EXPECT_EQ(reg.json().at("data").at("status").as_string(), "waiting_for_verification");
    auto inactive = post_json("/auth/general", R"({"email":"max@example.com","password":"longenough"})");
    EXPECT_EQ(inactive.status, 401);
    auto short_pw =
        post_json("/auth/general", R"({"action":"register","email":"n@example.com","password":"short"})");
    EXPECT_EQ(short_pw.status, 400);
    // Registering an email that exists answers exactly as a new one: nothing tells which emails have
    // accounts.
    auto again = post_json("/auth/general",
                           R"({"action":"register","email":"max@example.com","password":"longenough"})");
    EXPECT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(again.body, reg.body);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM users WHERE email = 'max@example.com'"), 1);
    auto wrong = post_json("/auth/general",
                           R"({"action":"activate-user","email":"max@example.com","verify_code":"nope"})");
    EXPECT_EQ(wrong.status, 400);
    auto right =
        post_json("/auth/general",
                  R"({"action":"activate-user","email":"max@example.com","verify_code":"let-me-in-2026"})");
    ASSERT_EQ(right.status, 200) << right.body;
    EXPECT_EQ(right.json().at("data").at("status").as_string(), "activation_successful");
    EXPECT_EQ(post_json("/auth/general", R"({"email":"max@example.com","password":"longenough"})").status,
              200);
}

TEST_F(Identity, NoSecretInAnyTableOrLog) {
    start();
    auto uid = add_user("nia@example.com");
    auto cookie = login("nia@example.com");
    auto [id, token] = make_key(cookie, uid, R"([{"obtype":"apikeys","obid":"*","actions":["read"]}])");
    (void)id;
    EXPECT_EQ(call("GET", "/apiv1/me/apikeys", bearer(token)).status, 200);
    post_json("/auth/general", R"({"email":"nia@example.com","password":"a-wrong-guess-xyz"})");
    // Everything stored, every column of every row, as text.
    std::string const dump =
        schema_->dump_text({"users", "sessions", "api_keys", "audit_log", "rate_limits"});
    ASSERT_NE(dump.find("nia@example.com"), std::string::npos) << "the dump should contain the data";
    for (std::string const& secret :
         {std::string(password), std::string("a-wrong-guess-xyz"), cookie, token, token.substr(36)}) {
        EXPECT_EQ(dump.find(secret), std::string::npos) << "secret in the tables: " << secret.substr(0, 6);
        EXPECT_EQ(server_->log().find(secret), std::string::npos)
            << "secret in the log: " << secret.substr(0, 6);
    }
}

TEST_F(Identity, EveryPageInBothStylesReturnsEachRowOnce) {
    start();
    auto uid = add_user("vic@example.com");
    auto cookie = login("vic@example.com");
    std::set<std::int64_t> created;
    for (int i = 0; i < 7; ++i) {
        created.insert(make_key(cookie, uid, R"([{"obtype":"audit","obid":"*","actions":["read"]}])").first);
    }
    auto const base = "/apiv1/users/" + std::to_string(uid) + "/apikeys?limit=3";
    // offset/limit
    std::vector<std::int64_t> by_offset;
    for (int offset = 0; offset < 12; offset += 3) {
        auto r = call("GET", base + "&offset=" + std::to_string(offset) + "&total=true", session(cookie));
        ASSERT_EQ(r.status, 200) << r.body;
        auto body = r.json();
        EXPECT_EQ(body.at("meta").at("total").as_int64(), 7);
        EXPECT_EQ(body.at("meta").at("offset").as_int64(), offset);
        for (auto const& k : body.at("data").as_array())
            by_offset.push_back(k.at("id").as_int64());
    }
    // cursor
    std::vector<std::int64_t> by_cursor;
    std::string cursor;
    for (int pages = 0; pages < 10; ++pages) {
        auto r = call("GET", base + (cursor.empty() ? "" : "&cursor=" + cursor), session(cookie));
        ASSERT_EQ(r.status, 200) << r.body;
        auto body = r.json();
        for (auto const& k : body.at("data").as_array())
            by_cursor.push_back(k.at("id").as_int64());
        auto const& pg = body.at("pagination");
        if (!pg.at("has_more").as_bool()) {
            EXPECT_TRUE(pg.at("cursor").is_null());
            break;
        }
        cursor = std::string(pg.at("cursor").as_string());
        // The cursor is base64, which may hold '+', '/' and '=': send it percent-encoded.
        cursor = std::regex_replace(cursor, std::regex("\\+"), "%2B");
        cursor = std::regex_replace(cursor, std::regex("/"), "%2F");
        cursor = std::regex_replace(cursor, std::regex("="), "%3D");
    }
    for (auto const* ids : {&by_offset, &by_cursor}) {
        EXPECT_EQ(ids->size(), 7u);
        EXPECT_EQ(std::set<std::int64_t>(ids->begin(), ids->end()), created);
        EXPECT_TRUE(std::is_sorted(ids->rbegin(), ids->rend())) << "newest first";
    }
    EXPECT_EQ(call("GET", base + "&cursor=not-a-cursor", session(cookie)).status, 400);
    EXPECT_EQ(call("GET", base + "&cursor=eyJpZCI6MTAwMH0%3D&offset=3", session(cookie)).status, 400);
    // The overview document's own example cursor is accepted.
    EXPECT_EQ(call("GET", base + "&cursor=eyJpZCI6MTAwMH0%3D", session(cookie)).status, 200);
}

TEST_F(Identity, ProxyAddedForwardedLineIsUsedNotTheClientsOwn) {
    start(json::object{{"server", {{"port", 0}, {"trusted_proxies", json::array{"127.0.0.1"}}}}});
    add_user("oz@example.com");
    // The client sends its own X-Forwarded-For; the proxy adds a second line with the real address.
    http_client c(server_->port());
    std::string const body = R"({"email":"oz@example.com","password":"bad-guess-123"})";
    c.send_raw(
        "POST /auth/general HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.9\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
    EXPECT_EQ(c.read_response().status, 401);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'login.failure' AND ip = "
                                 "'198.51.100.9'"),
              1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE ip = '6.6.6.6'"), 0);
}

TEST_F(Identity, AKeyCannotMintAKeyThatOutlivesIt) {
    start();
    auto uid = add_user("pat@example.com");
    auto cookie = login("pat@example.com");
    auto [id, token] =
        make_key(cookie, uid, R"([{"obtype":"apikeys","obid":"*","actions":["read","write"]}])", 600);
    (void)id;
    std::string const perms = R"("permissions":[{"obtype":"apikeys","obid":"*","actions":["read"]}])";
    auto longer = call("POST", "/apiv1/me/apikeys", bearer(token),
                       R"({"name":"x","expires_in_seconds":3600,)" + perms + "}");
    EXPECT_EQ(longer.status, 403) << longer.body;
    auto shorter = call("POST", "/apiv1/me/apikeys", bearer(token),
                        R"({"name":"x","expires_in_seconds":300,)" + perms + "}");
    EXPECT_EQ(shorter.status, 201) << shorter.body;
    // A session is not bound that way.
    EXPECT_EQ(call("POST", "/apiv1/me/apikeys", session(cookie),
                   R"({"name":"x","expires_in_seconds":86400,)" + perms + "}")
                  .status,
              201);
}

TEST_F(Identity, DeniedAndUnauthenticatedRequestsAreRateLimitedToo) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 3}, {"api_per_minute", 5}}}});
    auto alice = add_user("quinn@example.com");
    add_user("ruth@example.com");
    auto ruth = login("ruth@example.com");  // spends 1 of the IP's 3 auth requests
    auto const path = "/apiv1/users/" + std::to_string(alice) + "/apikeys";
    int first_429 = 0;
    for (int i = 1; i <= 11 && first_429 == 0; ++i) {
        auto r = call("GET", path, session(ruth));
        if (r.status == 429)
            first_429 = i;
        else
            EXPECT_EQ(r.status, 403);
    }
    EXPECT_GE(first_429, 6);
    EXPECT_LE(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'permission.denied'"), 10);
    // Bad credentials spend the per-IP authentication budget.
    int bad_429 = 0;
    for (int i = 1; i <= 9 && bad_429 == 0; ++i) {
        auto r = call("GET", "/apiv1/me/apikeys",
                      bearer("ak_" + std::string(32, 'f') + "." + std::string(36, 'z')));
        if (r.status == 429)
            bad_429 = i;
        else
            EXPECT_EQ(r.status, 401);
    }
    EXPECT_GE(bad_429, 2);
}

TEST_F(Identity, AccountEdgeCases) {
    start(json::object{{"auth", {{"registration_enabled", true}}}},
          {"CERTCTRL_ACTIVATION_CODE=let-me-in-2026"});
    auto uid = add_user("sam@example.com");
    auto root = add_user("tess@example.com", true);
    (void)root;
    // A row without a hash can never be logged into, not even with the timing-equaliser's password.
    schema_->exec("UPDATE users SET password_hash = '' WHERE id = " + std::to_string(uid));
    EXPECT_EQ(
        post_json("/auth/general", R"({"email":"sam@example.com","password":"certctrl-timing-equaliser"})")
            .status,
        401);
    // A disabled account cannot be activated.
    schema_->exec("UPDATE users SET status = 'DISABLED' WHERE id = " + std::to_string(uid));
    EXPECT_EQ(
        post_json("/auth/general",
                  R"({"action":"activate-user","email":"sam@example.com","verify_code":"let-me-in-2026"})")
            .status,
        403);
    // An admin making a key for a user who does not exist: 404, not 500.
    auto admin = login("tess@example.com");
    auto missing = call("POST", "/apiv1/users/999999/apikeys", session(admin),
                        R"({"name":"x","expires_in_seconds":600,"permissions":[]})");
    EXPECT_EQ(missing.status, 404) << missing.body;
    // Registration stores the user inactive from the start.
    ASSERT_EQ(post_json("/auth/general",
                        R"({"action":"register","email":"uma@example.com","password":"longenough"})")
                  .status,
              200);
    EXPECT_EQ(schema_->query_int(
                  "SELECT COUNT(*) FROM users WHERE email = 'uma@example.com' AND status = 'INACTIVE'"),
              1);
}

}  // namespace
}  // namespace certctrl::test
