// End to end: DNS providers, with credentials sealed at rest and masked in every response.
#include "api_fixture.hpp"

namespace certctrl::test {
namespace {

namespace json = boost::json;

class DnsProviders : public api_fixture {
  protected:
    void SetUp() override {
        api_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        start();
        user_id_ = add_user("dns@example.com");
        token_ = key_for("dns@example.com", {"dns_providers:*[read,write]"});
    }

    http_response call(std::string const& method, std::string const& target, std::string const& body = "") {
        return api_fixture::call(method, target, token_, body);
    }

    std::int64_t user_id_ = 0;
    std::string token_;
};

TEST_F(DnsProviders, EveryKindStoredSealedAndShownMasked) {
    std::string const tsig = "c2VjcmV0LXRzaWcta2V5LWZvci10ZXN0cw==";  // "secret-tsig-key-for-tests"
    struct kind_case {
        std::string body;
        std::string secret;
        std::string shown_field;
    };
    std::vector<kind_case> kinds = {
        {R"({"name":"knot","kind":"rfc2136","server":"127.0.0.1","port":5353,"zone":"bench.test",)"
         R"("tsig_key_name":"acme-update","tsig_secret":")" +
             tsig + R"("})",
         tsig, "zone"},
        {R"({"name":"cf","kind":"cloudflare","api_token":"cf-token-0123456789abcdef","zone_id":"023e105f4ecef8ad9ca31a8372d0c353"})",
         "cf-token-0123456789abcdef", "zone_id"},
        {R"({"name":"hook","kind":"webhook","url":"https://hooks.example.com/dns","hmac_secret":"hook-secret-0123456789"})",
         "hook-secret-0123456789", "url"},
        {R"({"name":"by hand","kind":"manual"})", "", "kind"},
    };
    std::string all_responses;
    for (auto const& k : kinds) {
        auto r = call("POST", "/apiv1/me/dns-providers", k.body);
        ASSERT_EQ(r.status, 201) << r.body;
        all_responses += r.body;
        auto d = r.json().at("data");
        EXPECT_TRUE(d.as_object().contains(k.shown_field)) << r.body;
        if (!k.secret.empty()) {
            EXPECT_TRUE(d.at("has_credentials").as_bool());
            EXPECT_NE(r.body.find("********"), std::string::npos);
        }
        auto one = call("GET", "/apiv1/users/" + std::to_string(user_id_) + "/dns-providers/" +
                                   std::to_string(d.at("id").as_int64()));
        EXPECT_EQ(one.status, 200) << "a key on its own user's path, held to the /me route's scope";
    }
    auto list = call("GET", "/apiv1/me/dns-providers?limit=2&total=true");
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.json().at("meta").at("total").as_int64(), 4);
    EXPECT_TRUE(list.json().at("pagination").at("has_more").as_bool());
    all_responses += list.body;
    auto dump = schema_->dump_text({"dns_providers"});
    for (auto const& k : kinds) {
        if (k.secret.empty())
            continue;
        EXPECT_EQ(all_responses.find(k.secret), std::string::npos) << k.secret;
        EXPECT_EQ(dump.find(k.secret), std::string::npos) << k.secret;
    }
    EXPECT_NE(dump.find("bench.test"), std::string::npos);  // settings are plain, secrets are not
    EXPECT_EQ(server_->log().find("cf-token-0123456789abcdef"), std::string::npos);
}

TEST_F(DnsProviders, ReplaceDeleteAndConflicts) {
    auto r = call("POST", "/apiv1/me/dns-providers",
                  R"({"name":"cf","kind":"cloudflare","api_token":"cf-token-0123456789abcdef"})");
    ASSERT_EQ(r.status, 201);
    auto const id = std::to_string(r.json().at("data").at("id").as_int64());
    auto const before = schema_->dump_text({"dns_providers"});
    auto put = call(
        "PUT", "/apiv1/me/dns-providers/" + id,
        R"({"name":"cf2","kind":"cloudflare","api_token":"cf-token-rotated-0123456789","zone_id":"9a7806061c88ada191ed06f989cc3dac"})");
    ASSERT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(put.json().at("data").at("name").as_string(), "cf2");
    EXPECT_EQ(put.json().at("data").at("zone_id").as_string(), "9a7806061c88ada191ed06f989cc3dac");
    EXPECT_NE(schema_->dump_text({"dns_providers"}), before);  // re-sealed
    EXPECT_EQ(call("PUT", "/apiv1/me/dns-providers/" + id, R"({"name":"x","kind":"manual"})").status, 409);
    EXPECT_EQ(call("PUT", "/apiv1/me/dns-providers/999999", R"({"name":"x","kind":"manual"})").status, 404);
    // In use by a certificate: 409 and kept.
    schema_->exec("INSERT INTO acme_accounts (user_id, name, provider, created_at, updated_at) VALUES (" +
                  std::to_string(user_id_) + ", 'a', 'letsencrypt', 1, 1)");
    schema_->exec(
        "INSERT INTO certificates (user_id, public_id, domain_name, sans, acct_id, dns_provider_id, "
        "created_at, updated_at) VALUES (" +
        std::to_string(user_id_) + ", UUID(), 'example.com', '[]', (SELECT MAX(id) FROM acme_accounts), " +
        id + ", 1, 1)");
    EXPECT_EQ(call("DELETE", "/apiv1/me/dns-providers/" + id).status, 409);
    schema_->exec("DELETE FROM certificates");
    EXPECT_EQ(call("DELETE", "/apiv1/me/dns-providers/" + id).status, 204);
    EXPECT_EQ(call("GET", "/apiv1/me/dns-providers/" + id).status, 404);
}

TEST_F(DnsProviders, BadBodiesAre400AndNothingIsStored) {
    std::vector<std::pair<std::string, std::string>> cases = {
        {R"({"kind":"manual"})", "name is required"},
        {R"({"name":"x"})", "kind is required"},
        {R"({"name":"x","kind":"route53"})", "kind must be rfc2136"},
        {R"({"name":"x","kind":"rfc2136","zone":"a.test","tsig_key_name":"k","tsig_secret":"c2VjcmV0LXRzaWcta2V5"})",
         "server is required"},
        {R"({"name":"x","kind":"rfc2136","server":"bad host!","zone":"a.test","tsig_key_name":"k","tsig_secret":"c2VjcmV0LXRzaWcta2V5"})",
         "server must be a host name"},
        {R"({"name":"x","kind":"rfc2136","server":"ns","port":70000,"zone":"a.test","tsig_key_name":"k","tsig_secret":"c2VjcmV0LXRzaWcta2V5"})",
         "port must be an integer in 1..65535"},
        {R"({"name":"x","kind":"rfc2136","server":"ns","zone":"a.test","tsig_key_name":"k","tsig_algorithm":"md5","tsig_secret":"c2VjcmV0LXRzaWcta2V5"})",
         "tsig_algorithm must be one of"},
        {R"({"name":"x","kind":"rfc2136","server":"ns","zone":"a.test","tsig_key_name":"k","tsig_secret":"short"})",
         "tsig_secret must be base64 of at least 16 bytes"},
        {R"({"name":"x","kind":"cloudflare"})", "api_token is required"},
        {R"({"name":"x","kind":"cloudflare","api_token":42})", "api_token must be a string"},
        {R"({"name":"x","kind":"webhook","url":"http://plain.example","hmac_secret":"0123456789abcdef"})",
         "https:// URL"},
        {R"({"name":"x","kind":"webhook","url":"https://h.example","hmac_secret":"short"})", "at least 16"},
    };
    for (auto const& [body, needle] : cases) {
        SCOPED_TRACE(body);
        auto r = call("POST", "/apiv1/me/dns-providers", body);
        EXPECT_EQ(r.status, 400) << r.body;
        EXPECT_NE(r.body.find(needle), std::string::npos) << r.body;
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM dns_providers"), 0);
}

}  // namespace
}  // namespace certctrl::test
