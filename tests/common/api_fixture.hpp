#pragma once
// A fixture for end-to-end API tests: a fresh schema, the real server, users created with the CLI, API keys
// with scopes, session logins, and requests with either credential.
#include "http_client.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace certctrl::test {

class api_fixture : public ::testing::Test {
  protected:
    using headers = std::map<std::string, std::string>;
    static constexpr char const* own_origin = "http://127.0.0.1:8080";  // the default server.public_url

    void SetUp() override {
        CERTCTRL_REQUIRE_DB();
        schema_ = std::make_unique<test_schema>();
    }

    // A failed test shows the tail of what the server printed (its access lines, warnings, sanitizer
    // reports).
    void TearDown() override {
        if (HasFailure() && server_) {
            std::string const log = server_->log();
            std::cerr << "---- server log (last 6000 bytes) ----\n"
                      << (log.size() > 6000 ? log.substr(log.size() - 6000) : log) << "\n";
        }
    }

    /// `env`: extra environment of the server (e.g. a metrics token variable).
    void start(boost::json::object overrides = {}, std::vector<std::string> env = {}) {
        boost::json::object base{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}}};
        for (auto const& kv : overrides)
            base[kv.key()] = kv.value();
        auto cfg = make_config(schema_->db(), base);
        std::ofstream(dir_.path() / "c.json") << boost::json::serialize(cfg);
        server_ = std::make_unique<server_process>(cfg, schema_->db().password, env);
        server_config_ = cfg;
        server_env_ = env;
    }

    /// Another server on the same database with the same config (start() first).
    std::unique_ptr<server_process> another_instance() const {
        return std::make_unique<server_process>(server_config_, schema_->db().password, server_env_);
    }

    /// The environment of the server's command-line tools: the database password and the server's own.
    std::vector<std::string> cli_env() const {
        auto e = server_env_;
        e.push_back("CERTCTRL_TEST_SERVER_DB_PASSWORD=" + schema_->db().password);
        return e;
    }

    std::int64_t add_user(std::string const& email) {
        auto r = run_server_command({"user", "add", "--config", (dir_.path() / "c.json").string(), "--email",
                                     email, "--password-stdin"},
                                    cli_env(), std::chrono::seconds(30), "correct-horse-battery\n");
        EXPECT_EQ(r.exit_code, 0) << r.output;
        return schema_->query_int("SELECT id FROM users WHERE email = '" + email + "'");
    }

    /// A new API key of `email` with `scopes` (grammar form, e.g. "certificates:*[read]").
    std::string key_for(std::string const& email, std::vector<std::string> const& scopes) {
        std::vector<std::string> args{"apikey",  "add", "--config", (dir_.path() / "c.json").string(),
                                      "--email", email, "--name",   "t"};
        for (auto const& s : scopes) {
            args.push_back("--scope");
            args.push_back(s);
        }
        auto r = run_server_command(args, cli_env());
        EXPECT_EQ(r.exit_code, 0) << r.output;
        return r.output.substr(0, r.output.find('\n'));
    }

    /// Session headers (cookie and our Origin) of a fresh login.
    headers login(std::string const& email) {
        http_client c(server_->port());
        auto r = c.request("POST", "/auth/general",
                           R"({"email":")" + email + R"(","password":"correct-horse-battery"})",
                           {{"Content-Type", "application/json"}});
        EXPECT_EQ(r.status, 200) << r.body;
        std::smatch m;
        std::string const sc = r.header("set-cookie");
        EXPECT_TRUE(std::regex_search(sc, m, std::regex("cjj365=([0-9a-f]{64})"))) << sc;
        return {{"Cookie", "cjj365=" + (m.size() > 1 ? m[1].str() : std::string())}, {"Origin", own_origin}};
    }

    static headers bearer(std::string const& token) { return {{"Authorization", "Bearer " + token}}; }

    http_response call(std::string const& method, std::string const& target, headers h,
                       std::string const& body = "") {
        http_client c(server_->port());
        if (!body.empty() && !h.contains("Content-Type"))
            h["Content-Type"] = "application/json";
        return c.request(method, target, body, h);
    }

    http_response call(std::string const& method, std::string const& target, std::string const& token,
                       std::string const& body = "") {
        return call(method, target, bearer(token), body);
    }

    static std::int64_t code_of(http_response const& r) {
        auto v = r.json();
        if (!v.is_object() || !v.as_object().contains("error"))
            return 0;
        return v.at("error").at("code").as_int64();
    }

    static std::string what_of(http_response const& r) {
        auto v = r.json();
        if (!v.is_object() || !v.as_object().contains("error"))
            return "";
        return std::string(v.at("error").at("what").as_string());
    }

    static std::int64_t id_of(http_response const& r) { return r.json().at("data").at("id").as_int64(); }

    /// A new CA named `common_name` and a SELF_CA account of `key`'s user issuing from it: the account's id.
    std::int64_t self_ca_account(std::string const& key, std::string const& common_name) {
        auto ca = call("POST", "/apiv1/me/cas", key,
                       R"({"common_name":")" + common_name + R"(","valid_days":365})");
        EXPECT_EQ(ca.status, 200) << ca.body;
        auto acct = call("POST", "/apiv1/me/acme-accounts", key,
                         R"({"name":"self","provider":"SELF_CA","ca_id":)" + std::to_string(id_of(ca)) + "}");
        EXPECT_EQ(acct.status, 200) << acct.body;
        return acct.status == 200 ? id_of(acct) : 0;
    }

    // Starts the server with /metrics open to metrics_token (start() with overrides).
    void start_with_metrics(boost::json::object overrides) {
        overrides["metrics"] = boost::json::object{{"token_env", "TEST_METRICS_TOKEN"}};
        start(std::move(overrides), {"TEST_METRICS_TOKEN=" + metrics_token});
    }
    // The value of one series of the server's /metrics (the exact name with labels), or -1 when absent.
    double metric(std::string const& series) {
        http_client c(server_->port());
        auto const m = c.get("/metrics", {{"Authorization", "Bearer " + metrics_token}});
        std::istringstream lines(m.body);
        for (std::string line; std::getline(lines, line);) {
            if (line.rfind(series + " ", 0) == 0) {
                return std::stod(line.substr(series.size() + 1));
            }
        }
        return -1;
    }
    std::string const metrics_token = "test-metrics-token-0123456789";

    temp_dir dir_;
    std::unique_ptr<test_schema> schema_;
    std::unique_ptr<server_process> server_;
    boost::json::object server_config_;
    std::vector<std::string> server_env_;
};

}  // namespace certctrl::test
