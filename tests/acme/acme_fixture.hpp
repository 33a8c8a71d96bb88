#pragma once
// The fixture of the tests against the real pebble ACME CA: pebble's settings, a fresh name per test, a
// pebble account, waiting for a history row to finish, and pebble's current root.
#include "api_fixture.hpp"
#include "run_awaitable.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/net/outbound.hpp"

#include <sstream>
#include <thread>

namespace certctrl::test {

class acme_fixture : public api_fixture {
  protected:
    void SetUp() override {
        api_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        CERTCTRL_REQUIRE_PEBBLE();
        pebble_ = *pebble();
    }

    boost::json::object config_overrides(unsigned workers = 2) const {
        return boost::json::object{
            {"rate_limits",
             {{"auth_per_minute", 1000}, {"api_per_minute", 100000}, {"issuance_per_hour", 1000}}},
            {"issuance",
             {{"workers", workers},
              {"http01_port", pebble_.http01_port},
              {"acme_ca_file", pebble_.ca_file},
              {"poll_interval_ms", 200},
              {"lease_seconds", 10},
              {"retry_base_seconds", 1}}}};
    }

    // A fresh name under a test domain every time (pebble keeps its state between tests).
    static std::string fresh_domain() { return "t" + hex_encode(crypto::random_bytes(5)) + ".certctrl.test"; }

    // An ACME account of `key`'s user at `directory`; its id.
    std::int64_t acme_account(std::string const& key, std::string const& directory) {
        auto r = call("POST", "/apiv1/me/acme-accounts", key,
                      R"({"name":"ca","provider":"custom","email":"ops@example.com","directory_url":")" +
                          directory + R"("})");
        EXPECT_EQ(r.status, 200) << r.body;
        return id_of(r);
    }
    std::int64_t pebble_account(std::string const& key) { return acme_account(key, pebble_.directory_url); }

    // `n` new certificates of `acct` for fresh names, each with an issuance requested: {certificate id,
    // history id} (empty after a failed request, which the test reports).
    std::vector<std::pair<std::string, std::int64_t>> request_issues(std::string const& key,
                                                                     std::int64_t acct, int n) {
        std::vector<std::pair<std::string, std::int64_t>> out;
        for (int i = 0; i < n; ++i) {
            auto created =
                call("POST", "/apiv1/me/certificates", key,
                     R"({"domain_name":")" + fresh_domain() + R"(","acct_id":)" + std::to_string(acct) + "}");
            EXPECT_EQ(created.status, 200) << created.body;
            auto const cert = std::to_string(id_of(created));
            auto r = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
            EXPECT_EQ(r.status, 200) << r.body;
            if (created.status != 200 || r.status != 200) {
                return {};
            }
            out.emplace_back(cert, r.json().at("data").at("issue_history_id").as_int64());
        }
        return out;
    }

    // Polls the history until the row is terminal; returns it.
    boost::json::object wait_terminal(std::string const& key, std::string const& cert,
                                      std::int64_t history_id,
                                      std::chrono::seconds limit = std::chrono::seconds(90)) {
        auto const until = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < until) {
            auto r = call("GET", "/apiv1/me/certificates/" + cert + "/issues?offset=0&limit=10", key);
            if (r.status == 200) {
                auto v = r.json();
                for (auto const& row : v.at("data").as_array()) {
                    if (row.at("id").as_int64() != history_id)
                        continue;
                    std::string const s(row.at("status").as_string());
                    if (s == "SUCCESS" || s == "FAILED" || s == "CANCELLED")
                        return row.as_object();
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
        ADD_FAILURE() << "issue " << history_id << " did not finish in " << limit.count() << " s";
        return {};
    }

    // pebble's CA and a test server's root (a stub the server talks to over HTTPS) in one trust file, for
    // issuance.acme_ca_file; its path.
    std::string trust_with(std::filesystem::path const& root) const {
        std::ifstream a(pebble_.ca_file);
        std::ifstream b(root);
        auto const path = dir_.path() / "trust.pem";
        std::ofstream out(path);
        out << a.rdbuf() << b.rdbuf();
        return path.string();
    }

    // pebble's current root (it makes a new one at every start).
    std::string pebble_root() {
        net::outbound_options o;
        o.ca_file = pebble_.ca_file;
        auto r = run_awaitable(net::fetch({"GET", pebble_.management_url + "/roots/0", {}, ""}, o));
        EXPECT_TRUE(r) << (r ? "" : r.error().what);
        return r ? r->body : std::string();
    }

    pebble_env pebble_;
};

}  // namespace certctrl::test
