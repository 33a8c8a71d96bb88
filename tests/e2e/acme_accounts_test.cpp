// End to end: ACME accounts on both prefixes, against the real binary and MariaDB.
#include "api_fixture.hpp"

namespace certctrl::test {
namespace {

namespace json = boost::json;

class AcmeAccounts : public api_fixture {};

TEST_F(AcmeAccounts, CrudOnBothPrefixesWithSealedKeys) {
    start();
    auto uid = add_user("ann@example.com");
    auto key = key_for("ann@example.com", {"acme_accounts:*[read,write]"});
    auto created = call("POST", "/apiv1/me/acme-accounts", key,
                        R"({"name":"Let's Encrypt","email":"Ops@Example.com","provider":"letsencrypt",
                            "eab_kid":"kid-1","eab_hmac_key":"c2VjcmV0LWhtYWMta2V5LTEyMzQ1Njc4"})");
    ASSERT_EQ(created.status, 200) << created.body;
    auto a = created.json().at("data");
    auto const id = a.at("id").as_int64();
    EXPECT_EQ(a.at("user_id").as_int64(), uid);
    EXPECT_EQ(a.at("provider").as_string(), "letsencrypt");
    EXPECT_EQ(a.at("directory_url").as_string(), "https://acme-v02.api.letsencrypt.org/directory");
    EXPECT_EQ(a.at("email").as_string(), "ops@example.com");
    EXPECT_TRUE(a.at("kid").is_null());
    EXPECT_TRUE(a.at("ca_id").is_null());
    EXPECT_EQ(a.at("key_algorithm").as_string(), "ECDSA_P256");
    EXPECT_TRUE(a.at("has_eab").as_bool());
    for (auto const* forbidden : {"PRIVATE KEY", "enc_", "hmac_key", "c2VjcmV0"}) {
        EXPECT_EQ(created.body.find(forbidden), std::string::npos) << forbidden;
    }
    // Stored sealed: a versioned blob, never the PEM or the HMAC key.
    auto dump = schema_->dump_text({"acme_accounts"});
    EXPECT_EQ(dump.find("PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(dump.find("secret-hmac-key"), std::string::npos);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM acme_accounts WHERE LEFT(enc_account_key, 5) = "
                                 "CONCAT('C', CHAR(0,0,0,1)) AND LENGTH(enc_account_key) > 200"),
              1);

    // The same record on the session prefix, in both list styles.
    auto list = call("GET", "/apiv1/me/acme-accounts?limit=10", key);
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.json().at("meta").at("total").as_int64(), 1);
    EXPECT_FALSE(list.json().at("pagination").at("has_more").as_bool());

    auto put = call("PUT", "/apiv1/me/acme-accounts/" + std::to_string(id), key,
                    R"({"name":"LE prod","email":"new@example.com","provider":"letsencrypt"})");
    ASSERT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(put.json().at("data").at("name").as_string(), "LE prod");
    EXPECT_EQ(
        call("PUT", "/apiv1/me/acme-accounts/" + std::to_string(id), key, R"({"provider":"zerossl"})").status,
        409);
    EXPECT_EQ(call("PUT", "/apiv1/me/acme-accounts/" + std::to_string(id), key, R"({"name":""})").status,
              400);

    // Other kinds of accounts.
    auto custom = call(
        "POST", "/apiv1/me/acme-accounts", key,
        R"({"name":"pebble","provider":"custom","directory_url":"https://127.0.0.1:14000/dir","key_algorithm":"RSA"})");
    ASSERT_EQ(custom.status, 200) << custom.body;
    EXPECT_EQ(custom.json().at("data").at("key_algorithm").as_string(), "RSA_2048");

    // Deleting an account that certificates use: 409, and nothing is lost.
    schema_->exec(
        "INSERT INTO certificates (user_id, public_id, domain_name, sans, acct_id, created_at, updated_at) "
        "VALUES (" +
        std::to_string(uid) + ", UUID(), 'example.com', '[]', " + std::to_string(id) + ", 1, 1)");
    auto in_use = call("DELETE", "/apiv1/me/acme-accounts/" + std::to_string(id), key);
    EXPECT_EQ(in_use.status, 409) << in_use.body;
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM acme_accounts"), 2);
    auto const custom_id = custom.json().at("data").at("id").as_int64();
    EXPECT_EQ(call("DELETE", "/apiv1/me/acme-accounts/" + std::to_string(custom_id), key).status, 204);
    EXPECT_EQ(call("GET", "/apiv1/me/acme-accounts/" + std::to_string(custom_id), key).status, 404);
}

TEST_F(AcmeAccounts, SelfCaNeedsOneOfTheUsersCas) {
    start();
    auto uid = add_user("ben@example.com");
    auto other = add_user("cat@example.com");
    auto key = key_for("ben@example.com", {"acme_accounts:*[read,write]"});
    auto insert_ca = [&](std::int64_t owner) {
        schema_->exec(
            "INSERT INTO cas (user_id, name, algorithm, subject, cert_pem, enc_private_key, not_before, "
            "not_after, created_at) VALUES (" +
            std::to_string(owner) + ", 'ca', 'ECDSA_P256', 'CN=x', 'pem', 'blob', 1, 2, 1)");
        return schema_->query_int("SELECT MAX(id) FROM cas");
    };
    auto mine = insert_ca(uid);
    auto theirs = insert_ca(other);
    auto ok = call("POST", "/apiv1/me/acme-accounts", key,
                   R"({"name":"internal","provider":"SELF_CA","ca_id":)" + std::to_string(mine) +
                       R"(,"leaf_key_algorithm":"RSA","leaf_rsa_bits":3072,"cert_valid_seconds":86400})");
    ASSERT_EQ(ok.status, 200) << ok.body;
    auto d = ok.json().at("data");
    EXPECT_EQ(d.at("ca_id").as_int64(), mine);
    EXPECT_EQ(d.at("leaf_rsa_bits").as_int64(), 3072);
    EXPECT_EQ(d.at("key_algorithm").as_string(), "");
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM acme_accounts WHERE enc_account_key IS NULL"), 1);
    for (long long ca : {theirs, 999999LL}) {
        auto r = call("POST", "/apiv1/me/acme-accounts", key,
                      R"({"name":"x","provider":"SELF_CA","ca_id":)" + std::to_string(ca) + "}");
        EXPECT_EQ(r.status, 404) << r.body;  // another user's CA looks like no CA at all
    }
}

TEST_F(AcmeAccounts, BadBodiesAre400WithAPreciseMessageAndNothingIsStored) {
    start();
    add_user("dee@example.com");
    auto key = key_for("dee@example.com", {"acme_accounts:*[read,write]"});
    struct bad_case {
        std::string body;
        std::string needle;
    };
    std::vector<bad_case> cases = {
        {R"({"provider":"letsencrypt"})", "name is required"},
        {R"({"name":"","provider":"letsencrypt"})", "name is required"},
        {R"({"name":7,"provider":"letsencrypt"})", "name must be a string"},
        {R"({"name":"x"})", "provider is required"},
        {R"({"name":"x","provider":"acme-corp"})", "unknown provider 'acme-corp'"},
        {R"({"name":"x","provider":"letsencrypt","email":"not-an-email"})", "email must look like"},
        {R"({"name":"x","provider":"custom"})", "needs directory_url"},
        {R"({"name":"x","provider":"custom","directory_url":"http://insecure.example/dir"})", "https://"},
        {R"({"name":"x","provider":"letsencrypt","directory_url":"https://elsewhere.example/dir"})",
         "fixed by provider"},
        {R"({"name":"x","provider":"letsencrypt","key_algorithm":"DSA"})", "key_algorithm must be"},
        {R"({"name":"x","provider":"letsencrypt","ca_id":3})", "ca_id applies only to provider SELF_CA"},
        {R"({"name":"x","provider":"letsencrypt","cert_valid_seconds":86400})",
         "applies only to provider SELF_CA"},
        {R"({"name":"x","provider":"SELF_CA"})", "needs ca_id"},
        {R"({"name":"x","provider":"SELF_CA","ca_id":-1})", "ca_id must be an integer"},
        {R"({"name":"x","provider":"SELF_CA","ca_id":1,"leaf_key_algorithm":"DSA"})",
         "leaf_key_algorithm must be"},
        {R"({"name":"x","provider":"SELF_CA","ca_id":1,"leaf_key_algorithm":"RSA","leaf_rsa_bits":1024})",
         "leaf_rsa_bits must be 2048"},
        {R"({"name":"x","provider":"SELF_CA","ca_id":1,"leaf_ec_curve":"curve25519"})",
         "leaf_ec_curve must be"},
        {R"({"name":"x","provider":"SELF_CA","ca_id":1,"cert_valid_seconds":5})",
         "cert_valid_seconds must be"},
        {R"({"name":"x","provider":"SELF_CA","ca_id":1,"key_algorithm":"RSA"})", "no ACME account key"},
        {R"({"name":"x","provider":"zerossl","eab_kid":"k"})", "needs both"},
        {R"({"name":"x","provider":"zerossl","eab_kid":"k","eab_hmac_key":"c2hvcnQ"})", "at least 16 bytes"},
        {R"({"name":"x","provider":"zerossl","eab":"k"})", "eab must be an object"},
        {R"({"name":")" + std::string(200, 'n') + R"(","provider":"letsencrypt"})", "at most 128 bytes"},
        {"[1,2]", "JSON object"},
        {"{\"name\":", "Malformed JSON"},
    };
    for (auto const& c : cases) {
        SCOPED_TRACE(c.body.substr(0, 90));
        auto r = call("POST", "/apiv1/me/acme-accounts", key, c.body);
        EXPECT_EQ(r.status, 400) << r.body;
        EXPECT_NE(r.body.find(c.needle), std::string::npos) << r.body;
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM acme_accounts"), 0);
}

TEST_F(AcmeAccounts, ScopesByIdAndOtherUsersIds) {
    start();
    add_user("eve@example.com");
    add_user("fay@example.com");
    auto owner = key_for("eve@example.com", {"acme_accounts:*[read,write]"});
    auto stranger = key_for("fay@example.com", {"acme_accounts:*[read,write]"});
    auto a = call("POST", "/apiv1/me/acme-accounts", owner, R"({"name":"a","provider":"google"})");
    auto b = call("POST", "/apiv1/me/acme-accounts", owner, R"({"name":"b","provider":"google"})");
    ASSERT_EQ(a.status, 200);
    auto const a_id = a.json().at("data").at("id").as_int64();
    auto const b_id = b.json().at("data").at("id").as_int64();
    auto one = key_for("eve@example.com", {"acme_accounts:" + std::to_string(a_id) + "[read]"});
    EXPECT_EQ(call("GET", "/apiv1/me/acme-accounts/" + std::to_string(a_id), one).status, 200);
    EXPECT_EQ(call("GET", "/apiv1/me/acme-accounts/" + std::to_string(b_id), one).status, 403);
    EXPECT_EQ(call("GET", "/apiv1/me/acme-accounts", one).status, 403);  // listing needs "*"
    EXPECT_EQ(call("DELETE", "/apiv1/me/acme-accounts/" + std::to_string(a_id), one).status, 403);
    // Another user's id is simply not there: no data, no hint.
    auto peek = call("GET", "/apiv1/me/acme-accounts/" + std::to_string(a_id), stranger);
    EXPECT_EQ(peek.status, 404);
    EXPECT_EQ(peek.body.find("\"name\""), std::string::npos);
    EXPECT_EQ(call("DELETE", "/apiv1/me/acme-accounts/" + std::to_string(a_id), stranger).status, 404);
    EXPECT_EQ(
        call("PUT", "/apiv1/me/acme-accounts/" + std::to_string(a_id), stranger, R"({"name":"mine"})").status,
        404);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM acme_accounts WHERE name = 'a'"), 1);
}

TEST_F(AcmeAccounts, WithoutAMasterKeyServeRefusesToStart) {
    auto cfg =
        make_config(schema_->db(), {{"crypto", {{"master_key_env", "CERTCTRL_UNSET_MASTER_KEY_VAR"}}}});
    std::ofstream(dir_.path() / "nokey.json") << json::serialize(cfg);
    auto r = run_server_command({"serve", "--config", (dir_.path() / "nokey.json").string()},
                                {"CERTCTRL_TEST_SERVER_DB_PASSWORD=" + schema_->db().password},
                                std::chrono::seconds(30));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("no master key"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("CERTCTRL_UNSET_MASTER_KEY_VAR"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace certctrl::test
