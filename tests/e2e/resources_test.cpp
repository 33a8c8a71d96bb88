// End to end: self-managed CAs, certificates, devices and assignments on both prefixes, against the real
// binary and MariaDB.
#include "api_fixture.hpp"

#include <set>

namespace certctrl::test {
namespace {

namespace json = boost::json;

class Resources : public api_fixture {
  protected:
    // An ACME account of the key's user; returns its id.
    std::int64_t make_account(std::string const& key) {
        auto r = call("POST", "/apiv1/me/acme-accounts", key, R"({"name":"le","provider":"letsencrypt"})");
        EXPECT_EQ(r.status, 200) << r.body;
        return id_of(r);
    }
    std::int64_t make_cert(std::string const& key, std::int64_t acct, std::string const& domain) {
        auto r = call("POST", "/apiv1/me/certificates", key,
                      R"({"domain_name":")" + domain + R"(","acct_id":)" + std::to_string(acct) + "}");
        EXPECT_EQ(r.status, 200) << r.body;
        return id_of(r);
    }
    std::int64_t make_device(std::string const& key, std::string const& name) {
        auto r = call("POST", "/apiv1/me/devices", key, R"({"name":")" + name + R"("})");
        EXPECT_EQ(r.status, 201) << r.body;
        return id_of(r);
    }
};

std::vector<std::string> const full_scopes = {"acme_accounts:*[read,write]", "certificates:*[read,write]",
                                              "devices:*[read,write]", "cas:*[read,write]",
                                              "dns_providers:*[read,write]"};

TEST_F(Resources, CasAreCreatedWithSealedKeysAndGuardedWhileAccountsUseThem) {
    start();
    auto uid = add_user("ca@example.com");
    auto key = key_for("ca@example.com", full_scopes);
    auto created =
        call("POST", "/apiv1/me/cas", key,
             R"({"name":"Lab root","algorithm":"ECDSA","curve_name":"secp384r1","common_name":"Lab Root CA",
                            "organization":"Lab","country":"de","valid_days":365,"max_path_length":0,
                            "key_usage":"keyCertSign,cRLSign"})");
    ASSERT_EQ(created.status, 200) << created.body;
    auto d = created.json().at("data");
    auto const ca_id = d.at("id").as_int64();
    EXPECT_EQ(d.at("user_id").as_int64(), uid);
    EXPECT_EQ(d.at("key_algorithm").as_string(), "ECDSA_P384");
    EXPECT_EQ(d.at("algorithm").as_string(), "ECDSA");
    EXPECT_EQ(d.at("curve_name").as_string(), "secp384r1");
    EXPECT_EQ(d.at("country").as_string(), "DE");
    EXPECT_EQ(d.at("max_path_length").as_int64(), 0);
    EXPECT_EQ(d.at("status").as_string(), "ACTIVE");
    EXPECT_NE(d.at("subject").as_string().find("CN=Lab Root CA"), std::string::npos);
    EXPECT_TRUE(std::regex_match(std::string(d.at("serial_number").as_string()),
                                 std::regex("[0-9A-F]{2}(:[0-9A-F]{2})+")));
    auto const validity = d.at("not_after").as_int64() - d.at("not_before").as_int64();
    EXPECT_NEAR(static_cast<double>(validity), 365.0 * 86400 + 60, 120.0);
    EXPECT_EQ(d.at("ca_certificate_pem").as_string().find("-----BEGIN CERTIFICATE-----"), 0u);
    EXPECT_EQ(created.body.find("PRIVATE KEY"), std::string::npos);
    auto dump = schema_->dump_text({"cas"});
    EXPECT_EQ(dump.find("PRIVATE KEY"), std::string::npos) << "the CA key is stored sealed";
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM cas WHERE LEFT(enc_private_key, 1) = 'C'"), 1);
    EXPECT_EQ(server_->log().find("PRIVATE KEY"), std::string::npos);

    // RSA on the session prefix; both appear in the list, newest first.
    auto session = login("ca@example.com");
    auto const base = "/apiv1/users/" + std::to_string(uid);
    auto rsa = call("POST", base + "/cas", session,
                    R"({"algorithm":"RSA","key_size":3072,"common_name":"RSA root"})");
    ASSERT_EQ(rsa.status, 200) << rsa.body;
    EXPECT_EQ(rsa.json().at("data").at("key_algorithm").as_string(), "RSA_3072");
    EXPECT_EQ(rsa.json().at("data").at("name").as_string(), "RSA root");
    auto list = call("GET", base + "/cas", session);
    ASSERT_EQ(list.status, 200);
    ASSERT_EQ(list.json().at("data").as_array().size(), 2u);
    EXPECT_EQ(list.json().at("data").at(0).at("id").as_int64(), id_of(rsa));
    EXPECT_EQ(call("GET", "/apiv1/me/cas/" + std::to_string(ca_id), key).status, 200);

    // A SELF_CA account pins the CA: 409 until the account is gone.
    auto acct = call("POST", "/apiv1/me/acme-accounts", key,
                     R"({"name":"self","provider":"SELF_CA","ca_id":)" + std::to_string(ca_id) + "}");
    ASSERT_EQ(acct.status, 200) << acct.body;
    auto pinned = call("DELETE", "/apiv1/me/cas/" + std::to_string(ca_id), key);
    EXPECT_EQ(pinned.status, 409);
    EXPECT_EQ(code_of(pinned), 4009);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM cas"), 2);
    EXPECT_EQ(call("DELETE", "/apiv1/me/acme-accounts/" + std::to_string(id_of(acct)), key).status, 204);
    EXPECT_EQ(call("DELETE", "/apiv1/me/cas/" + std::to_string(ca_id), key).status, 204);
    EXPECT_EQ(call("GET", "/apiv1/me/cas/" + std::to_string(ca_id), key).status, 404);

    // Bad bodies: 400 naming the problem, nothing stored.
    struct bad {
        char const* body;
        char const* what;
    };
    for (auto const& b : std::vector<bad>{
             {R"({})", "common_name is required"},
             {R"({"common_name":"x","algorithm":"DSA"})", "algorithm must be ECDSA or RSA"},
             {R"({"common_name":"x","algorithm":"RSA","key_size":1024})", "2048, 3072 or 4096"},
             {R"({"common_name":"x","curve_name":"secp521r1"})", "curve_name must be"},
             {R"({"common_name":"x","valid_days":0})", "valid_days must be an integer in 1..36500"},
             {R"({"common_name":"x","valid_days":1e9})", "valid_days must be an integer"},
             {R"({"common_name":"x","country":"Germany"})", "two-letter"},
             {R"({"common_name":"x","max_path_length":-5})", "max_path_length must be"},
             {R"({"common_name":"x","key_usage":"serverAuth"})", "serverAuth"},
             {R"({"common_name":"x","key_usage":"cRLSign"})", "must include keyCertSign"},
         }) {
        auto r = call("POST", "/apiv1/me/cas", key, b.body);
        EXPECT_EQ(r.status, 400) << b.body << " " << r.body;
        EXPECT_NE(what_of(r).find(b.what), std::string::npos) << b.body << " -> " << r.body;
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM cas"), 1);
}

TEST_F(Resources, CertificatesInBothDialectsOnBothPrefixes) {
    start();
    auto uid = add_user("cert@example.com");
    auto key = key_for("cert@example.com", full_scopes);
    auto acct = make_account(key);
    auto dns = call("POST", "/apiv1/me/dns-providers", key, R"({"name":"by hand","kind":"manual"})");
    ASSERT_EQ(dns.status, 201) << dns.body;

    // The API-key document's dialect.
    auto a = call(
        "POST", "/apiv1/me/certificates", key,
        R"({"domain_name":"Example.COM.","sans":["www.example.com","example.com","WWW.example.com","*.api.example.com"],
                      "acct_id":)" +
            std::to_string(acct) +
            R"(,"action":"create","key_algorithm":"ECDSA","policy":"hybrid","country":"de"})");
    ASSERT_EQ(a.status, 200) << a.body;
    auto ad = a.json().at("data");
    auto const a_id = ad.at("id").as_int64();
    EXPECT_EQ(ad.at("domain_name").as_string(), "example.com");
    EXPECT_EQ(json::serialize(ad.at("sans")), R"(["example.com","www.example.com","*.api.example.com"])");
    EXPECT_EQ(ad.at("acct_id").as_int64(), acct);
    EXPECT_EQ(ad.at("key_algorithm").as_string(), "ECDSA_P256");
    EXPECT_EQ(ad.at("key_dist_policy").as_string(), "HYBRID");
    EXPECT_EQ(ad.at("country").as_string(), "DE");
    EXPECT_EQ(ad.at("status").as_string(), "pending");
    EXPECT_FALSE(ad.at("server_decrypt_export").as_bool());
    EXPECT_TRUE(
        std::regex_match(std::string(ad.at("public_id").as_string()),
                         std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
    EXPECT_EQ(ad.at("orders").at("identifiers").as_array().size(), 3u);

    // The overview document's dialect, with a session.
    auto session = login("cert@example.com");
    auto const base = "/apiv1/users/" + std::to_string(uid);
    auto b = call("POST", base + "/certificates", session,
                  R"({"domain":"shop.example.org","sans":["www.shop.example.org"],"acme_account_id":)" +
                      std::to_string(acct) + R"(,"dns_provider_id":)" + std::to_string(id_of(dns)) +
                      R"(,"key_type":"rsa","key_size":3072,"auto_renew":false,"policy":"MASTER_ONLY",
                          "server_decrypt_export":true})");
    ASSERT_EQ(b.status, 200) << b.body;
    auto bd = b.json().at("data");
    auto const b_id = bd.at("id").as_int64();
    EXPECT_EQ(bd.at("domain").as_string(), "shop.example.org");
    EXPECT_EQ(bd.at("acme_account_id").as_int64(), acct);
    EXPECT_EQ(bd.at("dns_provider_id").as_int64(), id_of(dns));
    EXPECT_EQ(bd.at("key_algorithm").as_string(), "RSA_3072");
    EXPECT_FALSE(bd.at("auto_renew").as_bool());
    EXPECT_TRUE(bd.at("server_decrypt_export").as_bool());

    // Detail: heavy fields only with ?detail=most.
    auto plain = call("GET", "/apiv1/me/certificates/" + std::to_string(a_id), key);
    ASSERT_EQ(plain.status, 200);
    EXPECT_FALSE(plain.json().at("data").as_object().contains("cert"));
    auto most = call("GET", base + "/certificates/" + std::to_string(a_id) + "?detail=most", session);
    ASSERT_EQ(most.status, 200);
    EXPECT_TRUE(most.json().at("data").as_object().contains("cert"));
    EXPECT_TRUE(most.json().at("data").as_object().contains("csr"));
    EXPECT_EQ(call("GET", "/apiv1/me/certificates?detail=all", key).status, 400);
    auto list = call("GET", "/apiv1/me/certificates", key);
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.json().at("meta").at("total").as_int64(), 2);
    EXPECT_EQ(list.json().at("data").at(0).at("id").as_int64(), b_id);
    EXPECT_FALSE(list.json().at("data").at(0).as_object().contains("cert"));

    // By account: both; another account: none; an unknown account: 404.
    auto other_acct = make_account(key);
    auto by = call("GET", "/apiv1/me/acme-accounts/" + std::to_string(acct) + "/certificates", key);
    ASSERT_EQ(by.status, 200);
    EXPECT_EQ(by.json().at("data").as_array().size(), 2u);
    auto none = call("GET", base + "/acme-accounts/" + std::to_string(other_acct) + "/certificates", session);
    ASSERT_EQ(none.status, 200);
    EXPECT_EQ(none.json().at("data").as_array().size(), 0u);
    EXPECT_EQ(call("GET", "/apiv1/me/acme-accounts/999999/certificates", key).status, 404);

    // The account and DNS provider are now in use.
    EXPECT_EQ(call("DELETE", "/apiv1/me/acme-accounts/" + std::to_string(acct), key).status, 409);
    EXPECT_EQ(call("DELETE", "/apiv1/me/dns-providers/" + std::to_string(id_of(dns)), key).status, 409);

    // Delete removes keys, history and assignments with the record, in one go.
    auto dev = make_device(key, "web-1");
    ASSERT_EQ(call("POST", "/apiv1/me/certificates/" + std::to_string(a_id) + "/assign", key,
                   R"({"device_id":)" + std::to_string(dev) + "}")
                  .status,
              200);
    schema_->exec("INSERT INTO issue_history (cert_id, user_id, status, created_at) VALUES (" +
                  std::to_string(a_id) + ", " + std::to_string(uid) + ", 'FAILED', 1)");
    schema_->exec(
        "INSERT INTO certificate_master_wrapped (cert_id, key_version, wrapped_data_key, nonce, tag) "
        "VALUES (" +
        std::to_string(a_id) + ", 1, REPEAT('k', 48), REPEAT('n', 12), REPEAT('t', 16))");
    EXPECT_EQ(call("DELETE", "/apiv1/me/certificates/" + std::to_string(a_id), key).status, 204);
    for (auto const* table : {"certificate_assignments", "issue_history", "certificate_master_wrapped"}) {
        EXPECT_EQ(schema_->query_int(std::string("SELECT COUNT(*) FROM ") + table), 0) << table;
    }
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + std::to_string(a_id), key).status, 404);
    EXPECT_EQ(call("DELETE", "/apiv1/me/certificates/" + std::to_string(a_id), key).status, 404);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices"), 1) << "the device stays";
    EXPECT_EQ(call("DELETE", base + "/certificates/" + std::to_string(b_id), session).status, 204);
}

TEST_F(Resources, BadCertificateBodiesAre400Or404WithAPreciseWhatAndNothingIsStored) {
    start();
    add_user("bad@example.com");
    add_user("else@example.com");
    auto key = key_for("bad@example.com", full_scopes);
    auto theirs_key = key_for("else@example.com", full_scopes);
    auto acct = std::to_string(make_account(key));
    auto theirs = std::to_string(make_account(theirs_key));
    std::string const a = R"("acct_id":)" + acct;
    std::string many = "[";
    for (int i = 0; i < 101; ++i)
        many += std::string(i ? "," : "") + "\"h" + std::to_string(i) + ".example.com\"";
    many += "]";
    struct bad {
        std::string body;
        int status;
        std::string what;
    };
    std::vector<bad> const cases = {
        {"{", 400, "JSON"},
        {"[]", 400, "object"},
        {"{" + a + "}", 400, "domain_name (or domain) is required"},
        {R"({"domain_name":5,)" + a + "}", 400, "domain_name must be a string"},
        {R"({"domain_name":"",)" + a + "}", 400, "it is empty"},
        {R"({"domain_name":"localhost",)" + a + "}", 400, "at least two labels"},
        {R"({"domain_name":"www.*.example.com",)" + a + "}", 400, "whole left-most label"},
        {R"({"domain_name":"w*.example.com",)" + a + "}", 400, "whole left-most label"},
        {R"({"domain_name":"*.com",)" + a + "}", 400, "two labels after"},
        {R"({"domain_name":"a_b.example.com",)" + a + "}", 400, "only letters, digits"},
        {R"({"domain_name":"-a.example.com",)" + a + "}", 400, "must not begin or end with '-'"},
        {R"({"domain_name":")" + std::string(64, 'a') + R"(.example.com",)" + a + "}", 400, "longer than 63"},
        {R"({"domain_name":")" + std::string(50, 'a') + "." + std::string(50, 'b') + "." +
             std::string(50, 'c') + "." + std::string(50, 'd') + "." + std::string(50, 'e') + R"(.com",)" +
             a + "}",
         400, "longer than 253"},
        {R"({"domain_name":"b\u00fccher.example",)" + a + "}", 400, "A-labels"},
        {R"({"domain_name":"ab--c.example.com",)" + a + "}", 400, "reserved for A-labels"},
        {R"({"domain_name":"192.168.1.1",)" + a + "}", 400, "numeric"},
        {R"({"domain_name":"a..example.com",)" + a + "}", 400, "empty label"},
        {R"({"domain_name":"example.com","sans":"www.example.com",)" + a + "}", 400, "sans must be an array"},
        {R"({"domain_name":"example.com","sans":[1],)" + a + "}", 400, "sans[0] must be a string"},
        {R"({"domain_name":"example.com","sans":["ok.example.com","bad_name.example.com"],)" + a + "}", 400,
         "sans[1]"},
        {R"({"domain_name":"example.com","sans":)" + many + "," + a + "}", 400, "at most 100"},
        {R"({"domain_name":"example.com"})", 400, "acct_id (or acme_account_id) is required"},
        {R"({"domain_name":"example.com","acct_id":")" + acct + R"("})", 400,
         "acct_id must be a positive integer"},
        {R"({"domain_name":"example.com","acct_id":-1})", 400, "acct_id must be a positive integer"},
        {R"({"domain_name":"example.com","acct_id":0})", 400, "acct_id must be a positive integer"},
        {R"({"domain_name":"example.com","acct_id":1e30})", 400, "acct_id must be a positive integer"},
        {R"({"domain_name":"example.com","acme_account_id":99999999999999999999})", 400,
         "acme_account_id must be a positive integer"},
        {R"({"domain_name":"example.com","acct_id":999999})", 404, "ACME account 999999 not found"},
        {R"({"domain_name":"example.com","acct_id":)" + theirs + "}", 404,
         "ACME account " + theirs + " not found"},
        {R"({"domain_name":"example.com","dns_provider_id":424242,)" + a + "}", 404,
         "DNS provider 424242 not found"},
        {R"({"domain_name":"example.com","dns_provider_id":"x",)" + a + "}", 400, "dns_provider_id must be"},
        {R"({"domain_name":"example.com","key_algorithm":"DSA",)" + a + "}", 400, "key_algorithm must be"},
        {R"({"domain_name":"example.com","key_type":5,)" + a + "}", 400, "key_type must be a string"},
        {R"({"domain_name":"example.com","key_type":"RSA","key_size":1024,)" + a + "}", 400,
         "2048, 3072 or 4096"},
        {R"({"domain_name":"example.com","policy":"DEVICE_ONLY",)" + a + "}", 400,
         "policy must be HYBRID, MASTER_ONLY or DEVICE_REQUIRED"},
        {R"({"domain_name":"example.com","policy":"DEVICE_REQUIRED","server_decrypt_export":true,)" + a + "}",
         400, "server_decrypt_export cannot be true"},
        {R"({"domain_name":"example.com","action":"issue",)" + a + "}", 400, "action must be"},
        {R"({"domain_name":"example.com","auto_renew":"yes",)" + a + "}", 400,
         "auto_renew must be true or false"},
        {R"({"domain_name":"example.com","country":"DEU",)" + a + "}", 400, "two-letter"},
        {R"({"domain_name":"example.com","domain":"example.org",)" + a + "}", 400, "differ"},
        {R"({"domain_name":"example.com","organization":")" + std::string(65, 'o') + R"(",)" + a + "}", 400,
         "organization must be at most 64"},
    };
    ASSERT_GE(cases.size(), 30u);
    for (auto const& c : cases) {
        auto r = call("POST", "/apiv1/me/certificates", key, c.body);
        EXPECT_EQ(r.status, c.status) << c.body.substr(0, 200) << " -> " << r.body;
        EXPECT_EQ(code_of(r), c.status == 400 ? 4000 : 4001) << r.body;
        EXPECT_NE(what_of(r).find(c.what), std::string::npos) << c.body.substr(0, 200) << " -> " << r.body;
    }
    auto text = call("POST", "/apiv1/me/certificates",
                     {{"Authorization", "Bearer " + key}, {"Content-Type", "text/plain"}},
                     R"({"domain_name":"example.com",)" + a + "}");
    EXPECT_EQ(text.status, 415);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates"), 0);
    // The 100-name limit is inclusive: the domain plus 99 SANs is fine.
    std::string ninety_nine = "[";
    for (int i = 0; i < 99; ++i)
        ninety_nine += std::string(i ? "," : "") + "\"h" + std::to_string(i) + ".example.com\"";
    ninety_nine += "]";
    auto ok = call("POST", "/apiv1/me/certificates", key,
                   R"({"domain_name":"example.com","sans":)" + ninety_nine + "," + a + "}");
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.json().at("data").at("sans").as_array().size(), 100u);
}

TEST_F(Resources, DevicesAndAssignmentsOnBothPrefixes) {
    start();
    auto uid = add_user("dev@example.com");
    auto key = key_for("dev@example.com", full_scopes);
    auto acct = make_account(key);
    auto cert = make_cert(key, acct, "example.com");
    auto cert2 = make_cert(key, acct, "example.net");

    auto session = login("dev@example.com");
    auto const base = "/apiv1/users/" + std::to_string(uid);
    auto reg =
        call("POST", base + "/devices", session,
             R"({"name":"web-server-01","description":"Production web server","device_type":"nginx"})");
    ASSERT_EQ(reg.status, 201) << reg.body;
    auto d = reg.json().at("data");
    auto const dev = d.at("id").as_int64();
    std::string const pid(d.at("device_public_id").as_string());
    EXPECT_TRUE(std::regex_match(
        pid, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
    EXPECT_EQ(d.at("status").as_string(), "ACTIVE");
    EXPECT_EQ(d.at("device_type").as_string(), "nginx");
    EXPECT_EQ(d.at("description").as_string(), "Production web server");
    auto by_pid = call("GET", "/apiv1/me/devices/by-public-id/" + pid, key);
    ASSERT_EQ(by_pid.status, 200);
    EXPECT_EQ(id_of(by_pid), dev);
    EXPECT_EQ(call("GET", "/apiv1/me/devices/by-public-id/not-a-uuid", key).status, 400);
    EXPECT_EQ(call("GET", "/apiv1/me/devices/by-public-id/00000000-0000-4000-8000-000000000000", key).status,
              404);
    // A public id chosen by the caller is kept, and is unique.
    auto chosen = call("POST", "/apiv1/me/devices", key,
                       R"({"name":"edge","device_public_id":"6F9619FF-8B86-4011-B42D-00C04FC964FF"})");
    ASSERT_EQ(chosen.status, 201) << chosen.body;
    EXPECT_EQ(chosen.json().at("data").at("device_public_id").as_string(),
              "6f9619ff-8b86-4011-b42d-00c04fc964ff");
    EXPECT_EQ(call("POST", "/apiv1/me/devices", key,
                   R"({"name":"dup","device_public_id":"6f9619ff-8b86-4011-b42d-00c04fc964ff"})")
                  .status,
              409);
    EXPECT_EQ(call("POST", "/apiv1/me/devices", key, R"({"description":"no name"})").status, 400);

    // Assign in the three ways; twice is a conflict.
    auto const c = std::to_string(cert);
    auto assigned = call("POST", base + "/certificates/" + c + "/assign", session,
                         R"({"device_id":)" + std::to_string(dev) + "}");
    ASSERT_EQ(assigned.status, 200) << assigned.body;
    EXPECT_EQ(assigned.json().at("data").at("device_public_id").as_string(), pid);
    auto twice = call("POST", "/apiv1/me/certificates/" + c + "/assign", key,
                      R"({"device_public_id":")" + pid + R"("})");
    EXPECT_EQ(twice.status, 409);
    EXPECT_EQ(code_of(twice), 4009);
    auto holders = call("GET", "/apiv1/me/certificates/" + c + "/devices", key);
    ASSERT_EQ(holders.status, 200);
    ASSERT_EQ(holders.json().at("data").as_array().size(), 1u);
    EXPECT_EQ(holders.json().at("data").at(0).at("id").as_int64(), dev);
    auto held = call("GET", base + "/devices/" + std::to_string(dev) + "/certificates", session);
    ASSERT_EQ(held.status, 200);
    ASSERT_EQ(held.json().at("data").as_array().size(), 1u);
    EXPECT_EQ(held.json().at("data").at(0).at("id").as_int64(), cert);
    EXPECT_EQ(call("GET", "/apiv1/me/devices/" + std::to_string(dev) + "/certificates/" + c, key).status,
              200);
    EXPECT_EQ(call("GET",
                   "/apiv1/me/devices/" + std::to_string(dev) + "/certificates/" + std::to_string(cert2), key)
                  .status,
              404);
    EXPECT_EQ(call("DELETE", base + "/devices/" + std::to_string(dev) + "/certificates/" + c, session).status,
              204);
    EXPECT_EQ(call("DELETE", base + "/devices/" + std::to_string(dev) + "/certificates/" + c, session).status,
              404);
    auto via_device = call("POST", "/apiv1/me/devices/" + std::to_string(dev) + "/certificates", key,
                           R"({"cert_id":)" + c + "}");
    EXPECT_EQ(via_device.status, 200) << via_device.body;
    EXPECT_EQ(call("POST", "/apiv1/me/devices/" + std::to_string(dev) + "/certificates", key,
                   R"({"cert_id":999999})")
                  .status,
              404);
    EXPECT_EQ(call("POST", "/apiv1/me/devices/" + std::to_string(dev) + "/certificates", key, R"({})").status,
              400);

    // Sealing a key to a device needs assign (or write) on the certificate: a key that only reads it, or that
    // only writes the device, is refused on every route, and nothing is assigned.
    auto const cert2s = std::to_string(cert2);
    auto const devs = std::to_string(dev);
    auto reader = key_for("dev@example.com", {"certificates:" + cert2s + "[read]", "devices:*[read,write]"});
    auto refused =
        call("POST", "/apiv1/me/certificate-assign", reader, R"({"device_public_id":")" + pid + R"("})");
    EXPECT_EQ(refused.status, 400) << "names no certificate it may assign: " << refused.body;
    refused = call("POST", "/apiv1/me/certificate-assign", reader,
                   R"({"device_public_id":")" + pid + R"(","certificate_id":)" + cert2s + "}");
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(what_of(refused).find("certificates:" + cert2s + "[assign]"), std::string::npos)
        << refused.body;
    refused =
        call("POST", "/apiv1/me/devices/" + devs + "/certificates", reader, R"({"cert_id":)" + cert2s + "}");
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(what_of(refused).find("certificates:" + cert2s + "[assign]"), std::string::npos)
        << refused.body;
    refused =
        call("POST", "/apiv1/me/certificates/" + cert2s + "/assign", reader, R"({"device_id":)" + devs + "}");
    EXPECT_EQ(refused.status, 403) << refused.body;
    // ... and assign on the certificate without write on the device does not reach it through the
    // certificate.
    auto cert_only = key_for("dev@example.com", {"certificates:" + cert2s + "[assign]"});
    refused = call("POST", "/apiv1/me/certificates/" + cert2s + "/assign", cert_only,
                   R"({"device_id":)" + devs + "}");
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(what_of(refused).find("devices:" + devs + "[write]"), std::string::npos) << refused.body;
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_assignments WHERE cert_id = " + cert2s),
              0);
    EXPECT_GE(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'permission.denied'"), 3);

    // The agent's route: the certificate comes from the key's permission.
    auto agent_key = key_for("dev@example.com", {"certificates:" + std::to_string(cert2) + "[assign]"});
    auto agent =
        call("POST", "/apiv1/me/certificate-assign", agent_key, R"({"device_public_id":")" + pid + R"("})");
    ASSERT_EQ(agent.status, 200) << agent.body;
    EXPECT_EQ(agent.json().at("data").at("cert_id").as_int64(), cert2);
    EXPECT_TRUE(agent.json().at("data").at("message").is_string());
    EXPECT_EQ(
        call("POST", "/apiv1/me/certificate-assign", agent_key, R"({"device_public_id":")" + pid + R"("})")
            .status,
        409);
    auto not_covered = call("POST", "/apiv1/me/certificate-assign", agent_key,
                            R"({"device_public_id":")" + pid + R"(","certificate_id":)" + c + "}");
    EXPECT_EQ(not_covered.status, 403);
    auto two_key = key_for("dev@example.com", {"certificates:" + c + "[assign]",
                                               "certificates:" + std::to_string(cert2) + "[write]"});
    auto ambiguous =
        call("POST", "/apiv1/me/certificate-assign", two_key, R"({"device_public_id":")" + pid + R"("})");
    EXPECT_EQ(ambiguous.status, 400);
    EXPECT_NE(what_of(ambiguous).find("several"), std::string::npos);
    auto no_cert_key = key_for("dev@example.com", {"devices:*[read]"});
    EXPECT_EQ(
        call("POST", "/apiv1/me/certificate-assign", no_cert_key, R"({"device_public_id":")" + pid + R"("})")
            .status,
        403);
    EXPECT_EQ(call("POST", "/apiv1/me/certificate-assign", agent_key, R"({})").status, 400);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_assignments"), 2);

    // A device that is not ACTIVE takes no new certificates.
    auto cert3 = make_cert(key, acct, "example.org");
    schema_->exec("UPDATE devices SET status = 'REVOKED' WHERE id = " + std::to_string(dev));
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + std::to_string(cert3) + "/assign", key,
                   R"({"device_id":)" + std::to_string(dev) + "}")
                  .status,
              409);

    // Deleting the device removes its assignments, not the certificates.
    EXPECT_EQ(call("DELETE", "/apiv1/me/devices/" + std::to_string(dev), key).status, 204);
    EXPECT_EQ(call("GET", "/apiv1/me/devices/" + std::to_string(dev), key).status, 404);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_assignments"), 0);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates"), 3);
}

TEST_F(Resources, AnotherUsersIdsLookAbsentAndScopesAreEnforcedById) {
    start();
    add_user("own@example.com");
    add_user("oth@example.com");
    auto key = key_for("own@example.com", full_scopes);
    auto other = key_for("oth@example.com", full_scopes);
    auto acct = make_account(key);
    auto cert = std::to_string(make_cert(key, acct, "example.com"));
    auto dev = std::to_string(make_device(key, "mine"));
    auto ca = call("POST", "/apiv1/me/cas", key, R"({"common_name":"mine"})");
    ASSERT_EQ(ca.status, 200);
    auto const ca_id = std::to_string(id_of(ca));
    auto other_dev = std::to_string(make_device(other, "theirs"));
    for (auto const& [method, path] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/apiv1/me/certificates/" + cert},
             {"DELETE", "/apiv1/me/certificates/" + cert},
             {"GET", "/apiv1/me/certificates/" + cert + "/devices"},
             {"GET", "/apiv1/me/devices/" + dev},
             {"DELETE", "/apiv1/me/devices/" + dev},
             {"GET", "/apiv1/me/devices/" + dev + "/certificates"},
             {"GET", "/apiv1/me/cas/" + ca_id},
             {"DELETE", "/apiv1/me/cas/" + ca_id},
             {"GET", "/apiv1/me/acme-accounts/" + std::to_string(acct) + "/certificates"},
         }) {
        auto r = call(method, path, other);
        EXPECT_EQ(r.status, 404) << method << " " << path << " " << r.body;
        EXPECT_EQ(r.body.find("example.com"), std::string::npos);
    }
    auto cross = call("POST", "/apiv1/me/certificates/" + cert + "/assign", other,
                      R"({"device_id":)" + other_dev + "}");
    EXPECT_EQ(cross.status, 404);
    auto cross2 =
        call("POST", "/apiv1/me/certificates/" + cert + "/assign", key, R"({"device_id":)" + other_dev + "}");
    EXPECT_EQ(cross2.status, 404);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates", other).json().at("meta").at("total").as_int64(), 0);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates"), 1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices"), 2);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM cas"), 1);

    // A key scoped to one certificate reads that one only.
    auto one = key_for("own@example.com", {"certificates:" + cert + "[read]"});
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + cert, one).status, 200);
    auto cert2 = std::to_string(make_cert(key, acct, "example.net"));
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + cert2, one).status, 403);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates", one).status, 403);
    EXPECT_EQ(call("DELETE", "/apiv1/me/certificates/" + cert, one).status, 403);
}

TEST_F(Resources, WalkingEveryPageInBothStylesReturnsEachRowOnce) {
    start();
    add_user("walk@example.com");
    auto key = key_for("walk@example.com", full_scopes);
    auto acct = make_account(key);
    std::vector<std::int64_t> made;
    for (int i = 0; i < 23; ++i) {
        made.push_back(make_cert(key, acct, "h" + std::to_string(i) + ".example.com"));
        if (i < 11)
            make_device(key, "d" + std::to_string(i));
    }
    std::vector<std::int64_t> const newest_first(made.rbegin(), made.rend());
    for (std::string const& list : {std::string("/apiv1/me/certificates"),
                                    "/apiv1/me/acme-accounts/" + std::to_string(acct) + "/certificates"}) {
        // offset/limit
        std::vector<std::int64_t> seen;
        for (int offset = 0;; offset += 5) {
            // Counted when asked for (the even pages); otherwise only the last page tells the total.
            bool const counted = offset % 10 == 0;
            auto r = call("GET",
                          list + "?limit=5&offset=" + std::to_string(offset) + (counted ? "&total=true" : ""),
                          key);
            ASSERT_EQ(r.status, 200) << r.body;
            auto const page = r.json();
            auto const& items = page.at("data").as_array();
            auto const& meta = page.at("meta").as_object();
            if (counted || items.size() < 5) {
                EXPECT_EQ(meta.at("total").as_int64(), 23) << r.body;
            } else {
                EXPECT_FALSE(meta.contains("total")) << "not counted unless asked: " << r.body;
            }
            for (auto const& it : items)
                seen.push_back(it.at("id").as_int64());
            if (items.size() < 5)
                break;
        }
        EXPECT_EQ(seen, newest_first) << list;
        // cursor
        seen.clear();
        std::string cursor;
        for (int pages = 0; pages < 10; ++pages) {
            auto r = call("GET", list + "?limit=5" + (cursor.empty() ? "" : "&cursor=" + cursor), key);
            ASSERT_EQ(r.status, 200) << r.body;
            auto const page = r.json();
            for (auto const& it : page.at("data").as_array())
                seen.push_back(it.at("id").as_int64());
            auto const& p = page.at("pagination");
            if (!p.at("has_more").as_bool()) {
                EXPECT_TRUE(p.at("cursor").is_null());
                break;
            }
            cursor = std::string(p.at("cursor").as_string());
        }
        EXPECT_EQ(seen, newest_first) << list;
        EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()).size(), 23u);
    }
    // Offsets past the cap are refused with a pointer to the cursor; the cap itself is served.
    auto deep = call("GET", "/apiv1/me/certificates?offset=10001", key);
    EXPECT_EQ(deep.status, 400) << deep.body;
    EXPECT_EQ(deep.json().at("error").at("params").at("param").as_string(), "offset");
    auto at_cap = call("GET", "/apiv1/me/certificates?offset=10000", key);
    ASSERT_EQ(at_cap.status, 200) << at_cap.body;
    EXPECT_TRUE(at_cap.json().at("data").as_array().empty());
    EXPECT_FALSE(at_cap.json().at("meta").as_object().contains("total")) << "past the end: unknown";
    EXPECT_EQ(call("GET", "/apiv1/me/certificates?total=yes", key).status, 400);
    std::set<std::int64_t> devices;
    std::string cursor;
    for (int pages = 0; pages < 10; ++pages) {
        auto r = call("GET", "/apiv1/me/devices?limit=4" + (cursor.empty() ? "" : "&cursor=" + cursor), key);
        ASSERT_EQ(r.status, 200);
        auto const page = r.json();
        for (auto const& it : page.at("data").as_array())
            EXPECT_TRUE(devices.insert(it.at("id").as_int64()).second);
        if (!r.json().at("pagination").at("has_more").as_bool())
            break;
        cursor = std::string(r.json().at("pagination").at("cursor").as_string());
    }
    EXPECT_EQ(devices.size(), 11u);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates?limit=1001", key).status, 400);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates?cursor=bm9wZQ==", key).status, 400);
}

TEST_F(Resources, CertificateListsFilterByAccountStatusAndNameOverEveryPage) {
    start();
    add_user("filter@example.com");
    add_user("other@example.com");
    auto key = key_for("filter@example.com", full_scopes);
    auto theirs = key_for("other@example.com", full_scopes);
    auto a = make_account(key);
    auto b = make_account(key);
    std::set<std::int64_t> shop;
    for (int i = 0; i < 12; ++i) {
        auto id = make_cert(key, i % 3 == 0 ? b : a,
                            (i % 2 == 0 ? "shop" : "blog") + std::to_string(i) + ".Example.com");
        if (i % 2 == 0 && i % 3 != 0) {
            shop.insert(id);
        }
    }
    // "shop" names of account a, found case-insensitively, page by page with the cursor.
    std::set<std::int64_t> seen;
    std::string cursor;
    for (int pages = 0; pages < 10; ++pages) {
        auto r = call("GET",
                      "/apiv1/me/certificates?limit=2&status=pending&q=SHOP&acct_id=" + std::to_string(a) +
                          (cursor.empty() ? "" : "&cursor=" + cursor),
                      key);
        ASSERT_EQ(r.status, 200) << r.body;
        auto const page = r.json();  // held: the loop below reads into it
        for (auto const& it : page.at("data").as_array()) {
            EXPECT_TRUE(seen.insert(it.at("id").as_int64()).second);
        }
        if (!page.at("pagination").at("has_more").as_bool()) {
            break;
        }
        cursor = std::string(page.at("pagination").at("cursor").as_string());
    }
    EXPECT_EQ(seen, shop);
    auto counted = call("GET", "/apiv1/me/certificates?q=blog&total=true", key);
    EXPECT_EQ(counted.json().at("meta").at("total").as_int64(), 6) << counted.body;
    auto none = call("GET", "/apiv1/me/certificates?status=active", key);
    EXPECT_TRUE(none.json().at("data").as_array().empty()) << none.body;
    // ?acme_account_id= (the overview document's name) works as acct_id.
    EXPECT_EQ(call("GET", "/apiv1/me/certificates?acme_account_id=" + std::to_string(b), key)
                  .json()
                  .at("data")
                  .as_array()
                  .size(),
              4u);
    // Mistakes name their parameter; another user's account is 404.
    for (auto const& [query, param] :
         {std::pair{"status=valid", "status"}, std::pair{"acct_id=abc", "acct_id"},
          std::pair{"acct_id=-1", "acct_id"}}) {
        auto r = call("GET", std::string("/apiv1/me/certificates?") + query, key);
        EXPECT_EQ(r.status, 400) << query;
        EXPECT_EQ(r.json().at("error").at("params").at("param").as_string(), param) << r.body;
    }
    EXPECT_EQ(call("GET", "/apiv1/me/certificates?q=" + std::string(254, 'a'), key).status, 400);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates?acct_id=" + std::to_string(a), theirs).status, 404);
}

TEST_F(Resources, TheOpenApiDocumentIsServedToAnyone) {
    start();
    auto r = call("GET", "/openapi.json", headers{});
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    auto doc = r.json();
    EXPECT_EQ(std::string(doc.at("openapi").as_string()).substr(0, 2), "3.");
    for (auto const* path :
         {"/apiv1/me/certificates", "/apiv1/users/{user_id}/cas/{ca_id}", "/apiv1/me/certificate-assign",
          "/apiv1/me/devices/by-public-id/{device_public_id}"}) {
        EXPECT_TRUE(doc.at("paths").as_object().contains(path)) << path;
    }
}

}  // namespace
}  // namespace certctrl::test
