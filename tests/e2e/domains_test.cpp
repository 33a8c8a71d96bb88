// End to end: domain ownership through the real binary. Another user's name is refused (409 naming it) until
// an admin shares or transfers it; SELF_CA names claim nothing; the HTTP-01 listener answers a token only for
// the name it belongs to.
#include "api_fixture.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/dns/rfc2136.hpp"

namespace certctrl::test {
namespace {

namespace json = boost::json;

class Domains : public api_fixture {
  protected:
    std::int64_t le_account(std::string const& key) {
        auto r = call("POST", "/apiv1/me/acme-accounts", key, R"({"name":"le","provider":"letsencrypt"})");
        EXPECT_EQ(r.status, 200) << r.body;
        return id_of(r);
    }
    http_response create(std::string const& key, std::int64_t acct, std::string const& domain,
                         std::string const& sans = "[]") {
        return call("POST", "/apiv1/me/certificates", key,
                    R"({"domain":")" + domain + R"(","sans":)" + sans + R"(,"acme_account_id":)" +
                        std::to_string(acct) + "}");
    }
    static std::string param(http_response const& r, char const* name) {
        auto const v = r.json();
        auto const* p = v.at("error").at("params").as_object().if_contains(name);
        return p != nullptr && p->is_string() ? std::string(p->as_string()) : std::string();
    }
};

std::vector<std::string> const scopes = {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]",
                                         "domains:*[read,write]", "cas:*[read,write]"};

TEST_F(Domains, AnotherUsersNameIsRefusedUntilAnAdminSharesOrTransfersIt) {
    start();
    add_user("alice@example.com");
    auto const bob = add_user("bob@example.com");
    add_user("root@example.com");
    schema_->exec("UPDATE users SET roles = 'user,admin' WHERE email = 'root@example.com'");
    auto const alice_key = key_for("alice@example.com", scopes);
    auto const bob_key = key_for("bob@example.com", scopes);
    auto const aa = le_account(alice_key);
    auto const ba = le_account(bob_key);

    auto mine = create(alice_key, aa, "shop.example.com", R"(["www.example.com"])");
    ASSERT_EQ(mine.status, 200) << mine.body;
    auto const alice_cert = std::to_string(id_of(mine));

    // Exactly as the seed's create call, by another tenant: 409 / 4009 naming the name.
    auto taken = create(bob_key, ba, "shop.example.com");
    EXPECT_EQ(taken.status, 409) << taken.body;
    EXPECT_EQ(code_of(taken), 4009);
    EXPECT_EQ(param(taken, "name"), "shop.example.com");
    EXPECT_EQ(param(taken, "field"), "domain_name");
    EXPECT_EQ(taken.body.find("alice"), std::string::npos) << "the owner is not revealed";
    auto wildcard = create(bob_key, ba, "*.example.com");
    EXPECT_EQ(wildcard.status, 409) << wildcard.body;
    EXPECT_EQ(param(wildcard, "claimed_name"), "shop.example.com");
    auto in_sans = create(bob_key, ba, "bob.example.org", R"(["www.example.com"])");
    EXPECT_EQ(in_sans.status, 409) << in_sans.body;
    EXPECT_EQ(param(in_sans, "field"), "sans");
    EXPECT_EQ(create(bob_key, ba, "other.example.com").status, 200);

    // Bob's own SELF_CA certificate for the same name is his private business.
    auto ca = call("POST", "/apiv1/me/cas", bob_key,
                   R"({"name":"lab","algorithm":"ECDSA","common_name":"Lab","valid_days":30})");
    ASSERT_EQ(ca.status, 200) << ca.body;
    auto self = call("POST", "/apiv1/me/acme-accounts", bob_key,
                     R"({"name":"self","provider":"SELF_CA","ca_id":)" + std::to_string(id_of(ca)) + "}");
    ASSERT_EQ(self.status, 200) << self.body;
    EXPECT_EQ(create(bob_key, id_of(self), "shop.example.com").status, 200);

    // Each user lists their own claims, with the record that would prove them.
    auto listed = call("GET", "/apiv1/me/domains", bob_key);
    ASSERT_EQ(listed.status, 200) << listed.body;
    auto const bobs = listed.json();
    ASSERT_EQ(bobs.at("data").as_array().size(), 1u) << listed.body;
    EXPECT_EQ(bobs.at("data").at(0).at("name").as_string(), "other.example.com");
    EXPECT_EQ(bobs.at("data").at(0).at("verification").at("record").as_string(),
              "_certctrl-challenge.other.example.com");
    EXPECT_EQ(call("GET", "/apiv1/me/domains", alice_key).json().at("data").as_array().size(), 2u);

    // Only an admin's session reaches the admin routes.
    EXPECT_EQ(call("GET", "/apiv1/admin/domains/shop.example.com", bob_key).status, 403);
    EXPECT_EQ(call("GET", "/apiv1/admin/domains/shop.example.com", login("alice@example.com")).status, 403);
    auto const admin = login("root@example.com");
    auto owner = call("GET", "/apiv1/admin/domains/shop.example.com", admin);
    ASSERT_EQ(owner.status, 200) << owner.body;
    EXPECT_NE(owner.json().at("data").at("user_id").as_int64(), bob);

    // Shared: bob may use the name; the share withdrawn: no more.
    auto shared = call("POST", "/apiv1/admin/domains/shop.example.com/shares", admin,
                       R"({"user_id":)" + std::to_string(bob) + "}");
    ASSERT_EQ(shared.status, 200) << shared.body;
    EXPECT_EQ(create(bob_key, ba, "shop.example.com").status, 200);
    EXPECT_EQ(
        call("DELETE", "/apiv1/admin/domains/shop.example.com/shares/" + std::to_string(bob), admin).status,
        204);
    EXPECT_EQ(create(bob_key, ba, "shop.example.com").status, 409);

    // Transferred: bob holds www.example.com, and alice's certificate that names it can no longer be issued.
    auto moved = call("POST", "/apiv1/admin/domains/www.example.com/transfer", admin,
                      R"({"user_id":)" + std::to_string(bob) + "}");
    ASSERT_EQ(moved.status, 200) << moved.body;
    EXPECT_EQ(moved.json().at("data").at("user_id").as_int64(), bob);
    EXPECT_EQ(create(bob_key, ba, "www.example.com").status, 200);
    auto issue = call("POST", "/apiv1/me/certificates/" + alice_cert + "/issues", alice_key, "{}");
    EXPECT_EQ(issue.status, 409) << issue.body;
    EXPECT_EQ(param(issue, "name"), "www.example.com");
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + alice_cert), 0);

    // Released by its owner, a name is free for the next claimer.
    EXPECT_EQ(call("DELETE", "/apiv1/me/domains/shop.example.com", bob_key).status, 404);
    EXPECT_EQ(call("DELETE", "/apiv1/me/domains/shop.example.com", alice_key).status, 204);
    EXPECT_EQ(create(bob_key, ba, "shop.example.com").status, 200);

    // Bad names and users are client errors, never 500.
    EXPECT_EQ(call("DELETE", "/apiv1/me/domains/..", alice_key).status, 400);
    EXPECT_EQ(
        call("POST", "/apiv1/admin/domains/free.example.com/shares", admin, R"({"user_id":999999})").status,
        404);
    EXPECT_EQ(
        call("POST", "/apiv1/admin/domains/free.example.com/transfer", admin, R"({"user_id":999999})").status,
        404);
    EXPECT_EQ(
        call("POST", "/apiv1/admin/domains/free.example.com/transfer", admin, R"({"user_id":"x"})").status,
        400);
}

TEST_F(Domains, TheHttp01ListenerAnswersATokenOnlyForTheNameItIsFor) {
    auto const port = free_port();
    start(json::object{{"issuance", {{"http01_port", port}, {"http01_listen_address", "127.0.0.1"}}}});
    schema_->exec(
        "INSERT INTO acme_http_challenges (token, identifier, key_authorization, history_id, expires_at) "
        "VALUES "
        "('tok-a', 'a.example.com', 'tok-a.thumb', 1, UNIX_TIMESTAMP() + 600)");
    auto get = [&](std::string const& host) {
        http_client c(static_cast<std::uint16_t>(port));
        return c.request("GET", "/.well-known/acme-challenge/tok-a", "", {{"Host", host}});
    };
    auto ok = get("a.example.com");
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.body, "tok-a.thumb");
    EXPECT_EQ(get("A.Example.COM:80").status, 200) << "case and port do not matter";
    EXPECT_EQ(get("b.example.com").status, 404) << "another tenant's name must not get this token";
    EXPECT_EQ(get("127.0.0.1").status, 404);
}

// issuance.domain_verification "dns_txt": the first issuance of a claimed name needs the TXT record
// _certctrl-challenge.<name> = the claim's value, looked up at the configured resolver (knot here).
TEST_F(Domains, StrictModeIssuesOnlyAfterTheTxtProof) {
    CERTCTRL_REQUIRE_KNOT();
    dns::update_target const knot = *test::knot();
    start(json::object{{"issuance",
                        {{"workers", 0},
                         {"domain_verification", "dns_txt"},
                         {"domain_verification_resolver", "127.0.0.1:" + std::to_string(knot.port)}}},
                       {"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}}});
    add_user("strict@example.com");
    auto const key = key_for("strict@example.com", scopes);
    std::string const name = "s" + hex_encode(crypto::random_bytes(5)) + ".certctrl.test";
    auto created = create(key, le_account(key), name);
    ASSERT_EQ(created.status, 200) << created.body;
    auto const cert = std::to_string(id_of(created));

    auto refused = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    ASSERT_EQ(refused.status, 403) << refused.body;
    EXPECT_EQ(code_of(refused), 4003);
    std::string const record = param(refused, "record");
    std::string const value = param(refused, "value");
    EXPECT_EQ(record, "_certctrl-challenge." + name);
    EXPECT_GE(value.size(), 32u);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + cert), 0);
    // A wrong value proves nothing.
    ASSERT_TRUE(dns::update_txt(knot, record, "not-the-value", true));
    EXPECT_EQ(call("POST", "/apiv1/me/domains/" + name + "/verify", key, "{}").status, 403);

    ASSERT_TRUE(dns::update_txt(knot, record, value, true));
    auto verified = call("POST", "/apiv1/me/domains/" + name + "/verify", key, "{}");
    ASSERT_EQ(verified.status, 200) << verified.body;
    EXPECT_TRUE(verified.json().at("data").at("verified").as_bool());
    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    EXPECT_EQ(issued.status, 200) << issued.body;
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + cert), 1);
    (void)dns::update_txt(knot, record, value, false);
    (void)dns::update_txt(knot, record, "not-the-value", false);
}

}  // namespace
}  // namespace certctrl::test
