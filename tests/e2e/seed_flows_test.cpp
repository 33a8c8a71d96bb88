// End to end: the seeds' flows exactly as their curl examples show them. S0: a session cookie and nothing
// else on every write (curl -b cookies.txt, no Origin), "Issue new certificate" with "auto_renew": true,
// export with jq '.data.cert' as nginx's certificate. S1: create, then POST .../issues (one issuance only).
// And updating a certificate (PATCH/PUT) as the documents' users expect.
#include "api_fixture.hpp"
#include "openssl_cli.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/crypto/sodium.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/zip.hpp"

#include <ctime>
#include <future>
#include <regex>

namespace certctrl::test {
namespace {

namespace json = boost::json;

class SeedFlows : public api_fixture {
  protected:
    // `curl -c cookies.txt -d '{"email":...,"password":...}' /auth/general`: the cookie alone.
    headers curl_login(std::string const& email) {
        auto r = call("POST", "/auth/general", headers{},
                      R"({"email":")" + email + R"(","password":"correct-horse-battery"})");
        EXPECT_EQ(r.status, 200) << r.body;
        std::smatch m;
        std::string const sc = r.header("set-cookie");
        EXPECT_TRUE(std::regex_search(sc, m, std::regex("cjj365=([0-9a-f]{64})"))) << sc;
        return {{"Cookie", "cjj365=" + (m.size() > 1 ? m[1].str() : std::string())}};
    }

    std::int64_t rows(std::int64_t cert) {
        return schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " +
                                  std::to_string(cert));
    }
};

TEST_F(SeedFlows, S0CookieOnlyCurlIssuesOnCreateAndExportsAChainForNginx) {
    start(json::object{{"rate_limits", {{"issuance_per_hour", 100}}}});
    auto uid = add_user("s0@example.com");
    auto const u = "/apiv1/users/" + std::to_string(uid);
    headers cookie = curl_login("s0@example.com");

    auto ca = call("POST", u + "/cas", cookie, R"({"common_name":"S0 root","valid_days":365})");
    ASSERT_EQ(ca.status, 200) << "a cookie write with no Origin (curl): " << ca.body;
    auto acct = call("POST", u + "/acme-accounts", cookie,
                     R"({"name":"own","email":"s0@example.com","provider":"SELF_CA","ca_id":)" +
                         std::to_string(id_of(ca)) + "}");
    ASSERT_EQ(acct.status, 200) << acct.body;

    // S0's example body, field for field (no dns_provider_id: this is a private CA).
    auto issued = call("POST", u + "/certificates", cookie,
                       R"({"domain":"example.com","sans":["www.example.com","api.example.com"],)"
                       R"("acme_account_id":)" +
                           std::to_string(id_of(acct)) + R"(,"key_type":"ecdsa","auto_renew":true})");
    ASSERT_EQ(issued.status, 200) << issued.body;
    auto const d = issued.json().at("data");
    std::int64_t const cert = d.at("id").as_int64();
    EXPECT_EQ(d.at("domain"), "example.com");
    EXPECT_GT(d.at("issue_history_id").as_int64(), 0) << "auto_renew: true issues on create";
    EXPECT_EQ(d.at("issue_status"), "SUCCESS") << "SELF_CA issues inline";
    EXPECT_EQ(d.at("status"), "active");
    EXPECT_EQ(rows(cert), 1);

    // Export as S0 shows it: 403 until the user allows server-side export, which PATCH now can.
    auto const c = u + "/certificates/" + std::to_string(cert);
    EXPECT_EQ(call("GET", c + "/export", cookie).status, 403);
    auto patched = call("PATCH", c, cookie, R"({"server_decrypt_export":true})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_EQ(patched.json().at("data").at("server_decrypt_export"), true);
    EXPECT_EQ(schema_->query_int(
                  "SELECT COUNT(*) FROM audit_log WHERE action = 'certificate.server_decrypt_export'"),
              1)
        << "turning on export is audited";
    auto exported = call("GET", c + "/export", cookie);
    ASSERT_EQ(exported.status, 200) << exported.body;
    auto const e = exported.json().at("data");
    std::string const cert_pem(e.at("cert").as_string());                    // jq -r '.data.cert' > cert.pem
    auto key_pem = base64_decode(std::string(e.at("privkey").as_string()));  // | base64 -d > key.pem
    ASSERT_TRUE(key_pem);
    EXPECT_TRUE(crypto::key_matches_certificate(*key_pem, cert_pem));
    EXPECT_EQ(cert_pem,
              std::string(e.at("leaf_pem").as_string()) + std::string(e.at("chain_pem").as_string()));
    EXPECT_EQ(crypto::verify_chain(cert_pem,
                                   std::string(ca.json().at("data").at("ca_certificate_pem").as_string())),
              "")
        << "cert.pem carries the chain, leaf first";
    EXPECT_EQ(e.at("id").as_int64(), cert) << "the record's fields";
    EXPECT_EQ(e.at("sans").as_array().size(), 3u);

    // The other cookie writes of S0 as written: renew, assign, delete.
    auto renew = call("POST", c + "/renew", cookie);
    EXPECT_EQ(renew.status, 200) << renew.body;
    EXPECT_EQ(call("DELETE", c, cookie).status, 204);
    // A browser page of another site is still refused.
    headers foreign = cookie;
    foreign["Origin"] = "https://evil.example";
    EXPECT_EQ(call("POST", u + "/cas", foreign, R"({"common_name":"x","valid_days":1})").status, 403);
}

TEST_F(SeedFlows, S1CreateThenIssueStartsExactlyOneIssuanceAndAKeyNeedsTheIssueScope) {
    start(json::object{{"rate_limits", {{"issuance_per_hour", 100}}}});
    add_user("s1@example.com");
    auto key = key_for("s1@example.com", {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                          "certificates:*[read,write,issue]"});
    auto writer = key_for("s1@example.com", {"certificates:*[read,write]"});
    auto ca = call("POST", "/apiv1/me/cas", key, R"({"common_name":"S1 root","valid_days":365})");
    auto acct = call("POST", "/apiv1/me/acme-accounts", key,
                     R"({"name":"own","provider":"SELF_CA","ca_id":)" + std::to_string(id_of(ca)) + "}");
    ASSERT_EQ(acct.status, 200) << acct.body;
    std::string const a = std::to_string(id_of(acct));

    // S1's body (no auto_renew): the record only.
    auto created = call("POST", "/apiv1/me/certificates", key,
                        R"({"domain_name":"s1.example.com","sans":["s1.example.com"],"acct_id":)" + a +
                            R"(,"action":"create","key_algorithm":"ECDSA","policy":"HYBRID"})");
    ASSERT_EQ(created.status, 200) << created.body;
    std::int64_t const cert = id_of(created);
    EXPECT_FALSE(created.json().at("data").as_object().contains("issue_history_id"));
    EXPECT_EQ(rows(cert), 0);
    auto issue = call("POST", "/apiv1/me/certificates/" + std::to_string(cert) + "/issues", key, "{}");
    ASSERT_EQ(issue.status, 200) << issue.body;
    EXPECT_EQ(rows(cert), 1) << "the one and only issuance";
    // "auto_renew": false says nothing about issuing either.
    auto quiet = call("POST", "/apiv1/me/certificates", key,
                      R"({"domain_name":"q.example.com","acct_id":)" + a + R"(,"auto_renew":false})");
    ASSERT_EQ(quiet.status, 200);
    EXPECT_EQ(rows(id_of(quiet)), 0);

    // A key without [issue] cannot issue by creating: refused before anything is stored.
    auto before = schema_->query_int("SELECT COUNT(*) FROM certificates");
    auto refused = call("POST", "/apiv1/me/certificates", writer,
                        R"({"domain_name":"w.example.com","acct_id":)" + a + R"(,"auto_renew":true})");
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(refused.body.find("certificates:*[issue]"), std::string::npos) << refused.body;
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates"), before);
}

TEST_F(SeedFlows, UpdatingACertificateChangesWhatIsSafeAndSaysWhatNeedsAReissue) {
    start(json::object{{"rate_limits", {{"issuance_per_hour", 100}}}});
    add_user("upd@example.com");
    add_user("other@example.com");
    auto key =
        key_for("upd@example.com", {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                    "certificates:*[read,write,issue]", "dns_providers:*[read,write]"});
    auto reader = key_for("upd@example.com", {"certificates:*[read]"});
    auto other = key_for("other@example.com", {"certificates:*[read,write]"});
    auto ca = call("POST", "/apiv1/me/cas", key, R"({"common_name":"Upd root","valid_days":365})");
    auto acct = call("POST", "/apiv1/me/acme-accounts", key,
                     R"({"name":"own","provider":"SELF_CA","ca_id":)" + std::to_string(id_of(ca)) + "}");
    std::string const a = std::to_string(id_of(acct));
    auto created = call("POST", "/apiv1/me/certificates", key,
                        R"({"domain_name":"a.example.com","sans":["b.example.com"],"acct_id":)" + a + "}");
    ASSERT_EQ(created.status, 200) << created.body;
    std::string const c = "/apiv1/me/certificates/" + std::to_string(id_of(created));

    // Before the first issuance everything may change, and nothing needs a re-issue.
    auto p1 = call("PATCH", c, key, R"({"domain_name":"c.example.com","policy":"DEVICE_REQUIRED"})");
    ASSERT_EQ(p1.status, 200) << p1.body;
    auto d1 = p1.json().at("data");
    EXPECT_EQ(d1.at("domain_name"), "c.example.com");
    EXPECT_EQ(d1.at("sans"), (json::array{"c.example.com", "b.example.com"})) << "the other SANs stay";
    EXPECT_EQ(d1.at("key_dist_policy"), "DEVICE_REQUIRED");
    EXPECT_EQ(d1.at("reissue_required"), false);
    auto p2 = call("PUT", c, key, R"({"policy":"HYBRID","sans":["c.example.com","d.example.com"]})");
    ASSERT_EQ(p2.status, 200) << p2.body;

    // Issue; the next issuance uses changed names, and the answer says so.
    auto issued = call("POST", c + "/issues", key, "{}");
    ASSERT_EQ(issued.json().at("data").at("status"), "SUCCESS") << issued.body;
    auto p3 = call("PATCH", c, key, R"({"sans":["c.example.com","e.example.com"],"auto_renew":false})");
    ASSERT_EQ(p3.status, 200) << p3.body;
    EXPECT_EQ(p3.json().at("data").at("reissue_required"), true);
    EXPECT_EQ(p3.json().at("data").at("auto_renew"), false);
    auto again = call("POST", c + "/issues", key, "{}");
    ASSERT_EQ(again.json().at("data").at("status"), "SUCCESS") << again.body;
    auto detail = call("GET", c + "?detail=most", key);
    std::string const sans = openssl_sans(std::string(detail.json().at("data").at("cert").as_string()));
    EXPECT_NE(sans.find("DNS:e.example.com"), std::string::npos)
        << "the re-issue carries the new SAN: " << sans;
    EXPECT_EQ(sans.find("DNS:d.example.com"), std::string::npos) << sans;

    // HYBRID <-> MASTER_ONLY after issuance is fine; to DEVICE_REQUIRED the key would have to leave: 409.
    EXPECT_EQ(call("PATCH", c, key, R"({"policy":"MASTER_ONLY"})").status, 200);
    auto dr = call("PATCH", c, key, R"({"policy":"DEVICE_REQUIRED"})");
    EXPECT_EQ(dr.status, 409) << dr.body;
    EXPECT_EQ(dr.json().at("error").at("params").at("field"), "key_dist_policy");

    // Refusals: bad values (400 naming the field), fields that never change, other tenants, weak keys.
    auto bad_name = call("PATCH", c, key, R"({"sans":["not a name"]})");
    EXPECT_EQ(bad_name.status, 400);
    EXPECT_EQ(bad_name.json().at("error").at("params").at("field"), "sans[0]");
    EXPECT_EQ(call("PATCH", c, key, R"({"public_id":"x"})").status, 400);
    EXPECT_EQ(call("PATCH", c, key, R"({"acct_id":999999})").status, 404);
    EXPECT_EQ(call("PATCH", c, key, R"({"dns_provider_id":999999})").status, 404);
    EXPECT_EQ(call("PATCH", c, key, "[1]").status, 400);
    EXPECT_EQ(call("PATCH", c, reader, R"({"auto_renew":true})").status, 403);
    EXPECT_EQ(call("PATCH", c, other, R"({"auto_renew":true})").status, 404)
        << "another tenant's certificate";
    EXPECT_EQ(call("PATCH", "/apiv1/me/certificates/999999", key, R"({"auto_renew":true})").status, 404);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates WHERE auto_renew = 0"), 1)
        << "nothing the refusals touched changed";
}

TEST_F(SeedFlows, ApiKeysWorkOnTheUsersPathsOfTheirOwnUserWithTheMeScopes) {
    start(json::object{{"rate_limits", {{"issuance_per_hour", 100}}}});
    auto uid = add_user("paths@example.com");
    auto oid = add_user("elsewhere@example.com");
    auto key = key_for("paths@example.com", {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                             "certificates:*[read,write,issue]"});
    auto const u = "/apiv1/users/" + std::to_string(uid);
    // S0's paths with S1's Bearer key.
    auto ca = call("POST", u + "/cas", key, R"({"common_name":"Paths root","valid_days":365})");
    ASSERT_EQ(ca.status, 200) << ca.body;
    auto acct = call("POST", u + "/acme-accounts", key,
                     R"({"name":"own","provider":"SELF_CA","ca_id":)" + std::to_string(id_of(ca)) + "}");
    ASSERT_EQ(acct.status, 200) << acct.body;
    auto created = call("POST", u + "/certificates", key,
                        R"({"domain":"paths.example.com","acme_account_id":)" + std::to_string(id_of(acct)) +
                            R"(,"auto_renew":true})");
    ASSERT_EQ(created.status, 200) << created.body;
    std::string const c = std::to_string(id_of(created));
    EXPECT_EQ(call("GET", u + "/certificates", key).status, 200);
    EXPECT_EQ(call("GET", u + "/certificates/" + c, key).status, 200);
    EXPECT_EQ(call("POST", u + "/certificates/" + c + "/renew", key).status, 200);

    // The same scopes as /me: a key for one certificate reads that one only, by either path.
    auto one = key_for("paths@example.com", {"certificates:" + c + "[read]"});
    EXPECT_EQ(call("GET", u + "/certificates/" + c, one).status, 200);
    auto other_cert = call("GET", u + "/certificates/" + std::to_string(id_of(created) + 1000), one);
    EXPECT_EQ(other_cert.status, 403);
    EXPECT_NE(other_cert.body.find("certificates:" + std::to_string(id_of(created) + 1000) + "[read]"),
              std::string::npos)
        << other_cert.body;
    EXPECT_EQ(call("POST", u + "/certificates/" + c + "/issues", one, "{}").status, 403) << "no [issue]";
    EXPECT_EQ(call("GET", u + "/cas", one).status, 403) << "no cas scope";
    // Never another user's path, and routes without a /me twin stay session-only.
    auto foreign = call("GET", "/apiv1/users/" + std::to_string(oid) + "/certificates", key);
    EXPECT_EQ(foreign.status, 403) << foreign.body;
    EXPECT_EQ(call("GET", u + "/apikeys", key).status, 403) << "apikeys scope not held";
}

// 500 agents behind one address (one NAT) onboard through the device grant with the login budget at its
// default (10 a minute per address): the device flow spends budgets of its own. Guesses still spend the
// login budget, and once it is spent the address is refused the device flow as well.
TEST_F(SeedFlows, FiveHundredAgentsFromOneAddressOnboardWithoutSpendingTheLoginBudget) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 10}, {"api_per_minute", 100000}}},
                       {"devices", {{"max_devices_per_user", 1000}}}});
    auto uid = add_user("fleet@example.com");
    // The auth budget counts in fixed one-minute windows: the login's window (it is counted when the request
    // arrives), to compare with the guesses'.
    auto const login_window = wait_for_room_in_window(5) / 60;
    headers session = login("fleet@example.com");
    constexpr int agents = 500;
    auto const t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < agents; ++i) {
        auto start_r = call("POST", "/auth/device", headers{},
                            R"({"action":"device_start","scopes":["openid"],"interval":1,"expires_in":900})");
        ASSERT_EQ(start_r.status, 200) << i << " " << start_r.body;
        auto const g = start_r.json().at("data");
        auto v = call("POST", "/auth/device", session,
                      R"({"action":"device_verify","user_code":")" +
                          std::string(g.at("user_code").as_string()) + R"(","approve":true})");
        ASSERT_EQ(v.status, 200) << i << " " << v.body;
        auto ready = call("POST", "/auth/device", headers{},
                          R"({"action":"device_poll","device_code":")" +
                              std::string(g.at("device_code").as_string()) + R"("})");
        ASSERT_EQ(ready.status, 200) << i << " " << ready.body;
        auto const rd = ready.json().at("data");
        ASSERT_EQ(rd.at("status"), "ready") << i;
        char public_id[37];
        std::snprintf(public_id, sizeof public_id, "00000000-0000-4000-8000-%012d", i);
        json::object reg{{"device_public_id", public_id},
                         {"dev_pk", base64_encode(std::string(31, 'a') + static_cast<char>('0' + i % 10))},
                         {"user_id", uid},
                         {"registration_code", rd.at("registration_code")},
                         {"name", "agent"}};
        auto r = call("POST", "/apiv1/device/registration", headers{}, json::serialize(reg));
        ASSERT_EQ(r.status, 201) << i << " " << r.body;
        if (i % 100 == 0) {
            auto const rr = r.json();
            auto refreshed =
                call("POST", "/auth/refresh", headers{},
                     R"({"refresh_token":")" +
                         std::string(rr.at("data").at("session").at("refresh_token").as_string()) + R"("})");
            ASSERT_EQ(refreshed.status, 200) << refreshed.body;
        }
    }
    std::cout << agents << " agents onboarded from one address in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                     .count()
              << " ms" << std::endl;
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices WHERE user_id = " + std::to_string(uid)),
              agents);

    // Guesses spend the login budget: once it is spent the address is refused, the device flow included.
    // They run inside one window (with 10 s of it left); when that is a later window than the login's, the
    // login's spend is gone and the tenth guess is still allowed.
    wait_for_room_in_window(10);
    bool const same_window = std::time(nullptr) / 60 == login_window;
    int refused_at = 0;
    for (int i = 1; i <= 12 && refused_at == 0; ++i) {
        auto bad = call("POST", "/auth/device", headers{},
                        R"({"action":"device_poll","device_code":"dc_guess)" + std::to_string(i) + R"("})");
        if (bad.status == 429) {
            refused_at = i;
        } else {
            EXPECT_EQ(bad.status, 404) << bad.body;
        }
    }
    EXPECT_EQ(refused_at, same_window ? 10 : 11)
        << "the login spent one of the ten (in its window), the 500 agents none: nine guesses, then 429";
    auto after = call("POST", "/auth/device", headers{},
                      R"({"action":"device_start","scopes":["openid"],"interval":1,"expires_in":900})");
    EXPECT_EQ(after.status, 429) << after.body;
}

// S1: "For a device-ready zip bundle, use .../devices/:device_id/certificates/:certificate_id/bundle": with
// ?format=zip or Accept: application/zip the bundle is a zip (certificate, chain, full chain, the key as the
// policy gives it to that device, meta.json); JSON otherwise, as before.
TEST_F(SeedFlows, TheDeviceBundleIsAZipWhenAskedForOne) {
    start(json::object{{"rate_limits", {{"issuance_per_hour", 100}}}});
    add_user("zip@example.com");
    auto key = key_for("zip@example.com", {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                           "certificates:*[read,write,issue]", "devices:*[read,write]",
                                           "ForDeviceAuthenticate:*[authenticate]"});
    auto ca = call("POST", "/apiv1/me/cas", key, R"({"common_name":"Zip root","valid_days":365})");
    auto acct = call("POST", "/apiv1/me/acme-accounts", key,
                     R"({"name":"own","provider":"SELF_CA","ca_id":)" + std::to_string(id_of(ca)) + "}");
    std::string const a = std::to_string(id_of(acct));
    auto [pk, sk] = crypto::x25519_keypair();
    auto dev = call("POST", "/apiv1/me/devices", key,
                    R"({"device_public_id":"7c2e8d9f-3b4a-4c56-9d7e-8f9a0b1c2d3e","dev_pk":")" +
                        base64_encode(pk) + R"("})");
    ASSERT_EQ(dev.status, 201) << dev.body;
    std::string const d = std::to_string(dev.json().at("data").at("device").at("id").as_int64());
    auto make = [&](std::string const& name, std::string const& extra) {
        auto c =
            call("POST", "/apiv1/me/certificates", key,
                 R"({"domain_name":")" + name + R"(","acct_id":)" + a + extra + R"(,"auto_renew":true})");
        EXPECT_EQ(c.status, 200) << c.body;
        std::string const id = std::to_string(id_of(c));
        EXPECT_EQ(
            call("POST", "/apiv1/me/devices/" + d + "/certificates", key, R"({"cert_id":)" + id + "}").status,
            200);
        return id;
    };
    auto entries_of = [](std::string const& zip) {
        std::map<std::string, std::string> m;
        for (auto& [n, c] : service::read_zip(zip)) {
            m[n] = c;
        }
        return m;
    };

    // HYBRID: the key is sealed to the device; the zip carries the sealed materials, which its key opens.
    std::string const hybrid = make("zip.example.com", R"(,"policy":"HYBRID")");
    std::string const path = "/apiv1/me/devices/" + d + "/certificates/" + hybrid + "/bundle";
    auto z = call("GET", path + "?format=zip", key);
    ASSERT_EQ(z.status, 200) << z.body;
    EXPECT_EQ(z.header("content-type"), "application/zip");
    EXPECT_NE(z.header("content-disposition").find(".zip"), std::string::npos);
    auto e = entries_of(z.body);
    for (char const* name :
         {"certificate.pem", "chain.pem", "fullchain.pem", "sealed_key.json", "meta.json"}) {
        EXPECT_TRUE(e.contains(name)) << name;
    }
    EXPECT_FALSE(e.contains("private.key")) << "HYBRID keeps the key sealed to the device";
    EXPECT_EQ(e["fullchain.pem"], e["certificate.pem"] + e["chain.pem"]);
    auto const sealed = json::parse(e["sealed_key.json"]).as_object();
    auto data_key =
        crypto::open_sealed(*base64_decode(std::string(sealed.at("enc_data_key_b64").as_string())), pk, sk);
    ASSERT_TRUE(data_key) << "the device's own key opens it";
    crypto::gcm_box box{*base64_decode(std::string(sealed.at("privkey_nonce_b64").as_string())),
                        *base64_decode(std::string(sealed.at("enc_privkey_b64").as_string())),
                        *base64_decode(std::string(sealed.at("privkey_tag_b64").as_string()))};
    auto der = crypto::aes256gcm_decrypt(*data_key, box);
    ASSERT_TRUE(der);
    EXPECT_TRUE(
        crypto::key_matches_certificate(crypto::private_key_pem_from_der(*der), e["certificate.pem"]));
    auto const meta = json::parse(e["meta.json"]).as_object();
    EXPECT_EQ(meta.at("cert_id").as_int64(), std::stoll(hybrid));
    EXPECT_EQ(meta.at("key_file"), "sealed_key.json");
    // Accept: application/zip does the same; without either, JSON as before.
    auto by_accept =
        call("GET", path, headers{{"Authorization", "Bearer " + key}, {"Accept", "application/zip"}});
    EXPECT_EQ(by_accept.header("content-type"), "application/zip");
    auto as_json = call("GET", path, key);
    ASSERT_EQ(as_json.status, 200);
    EXPECT_TRUE(as_json.json().at("data").as_object().contains("enc_data_key_b64"));

    // MASTER_ONLY with export allowed: the plaintext key (audited as a key release).
    std::string const master =
        make("plain.example.com", R"(,"policy":"MASTER_ONLY","server_decrypt_export":true)");
    auto pz = call("GET", "/apiv1/me/devices/" + d + "/certificates/" + master + "/bundle?format=zip", key);
    ASSERT_EQ(pz.status, 200) << pz.body;
    auto pe = entries_of(pz.body);
    ASSERT_TRUE(pe.contains("private.key"));
    EXPECT_TRUE(crypto::key_matches_certificate(pe["private.key"], pe["certificate.pem"]));
    EXPECT_GE(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'key.release'"), 1);
    // MASTER_ONLY without export: refused, as the JSON bundle is.
    std::string const closed = make("closed.example.com", R"(,"policy":"MASTER_ONLY")");
    EXPECT_EQ(
        call("GET", "/apiv1/me/devices/" + d + "/certificates/" + closed + "/bundle?format=zip", key).status,
        403);
}

// CORS for a dashboard on its own origin (auth.dashboard_origins): preflights, credentials, mirrored Origin.
TEST_F(SeedFlows, ADashboardOnItsOwnOriginGetsCorsWithCredentials) {
    start(json::object{{"auth", {{"dashboard_origins", json::array{"https://dash.example.com"}}}}});
    add_user("cors@example.com");
    headers session = login("cors@example.com");
    std::string const dash = "https://dash.example.com";
    auto pre = call("OPTIONS", "/apiv1/me/cas",
                    headers{{"Origin", dash},
                            {"Access-Control-Request-Method", "POST"},
                            {"Access-Control-Request-Headers", "content-type"}});
    EXPECT_EQ(pre.status, 204) << pre.body;
    EXPECT_EQ(pre.header("access-control-allow-origin"), dash);
    EXPECT_EQ(pre.header("access-control-allow-credentials"), "true");
    EXPECT_EQ(pre.header("access-control-allow-methods"), "POST");
    EXPECT_NE(pre.header("access-control-allow-headers").find("Content-Type"), std::string::npos);
    EXPECT_NE(pre.header("vary").find("Origin"), std::string::npos);

    auto evil = call("OPTIONS", "/apiv1/me/cas",
                     headers{{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
    EXPECT_EQ(evil.status, 403);
    EXPECT_TRUE(evil.header("access-control-allow-origin").empty());
    EXPECT_EQ(call("OPTIONS", "/apiv1/nothing-here",
                   headers{{"Origin", dash}, {"Access-Control-Request-Method", "GET"}})
                  .status,
              404);
    EXPECT_EQ(call("OPTIONS", "/apiv1/me/cas",
                   headers{{"Origin", dash}, {"Access-Control-Request-Method", "PATCH"}})
                  .status,
              405);

    // The dashboard's requests: cookie plus its Origin; answers it may read.
    headers from_dash = session;
    from_dash["Origin"] = dash;
    auto made = call("POST", "/apiv1/me/cas", from_dash, R"({"common_name":"Dash root","valid_days":30})");
    EXPECT_EQ(made.status, 200) << made.body;
    EXPECT_EQ(made.header("access-control-allow-origin"), dash);
    auto listed = call("GET", "/apiv1/me/cas", from_dash);
    EXPECT_EQ(listed.header("access-control-allow-origin"), dash);
    EXPECT_NE(listed.header("access-control-expose-headers").find("X-Request-Id"), std::string::npos);
    headers from_evil = session;
    from_evil["Origin"] = "https://evil.example";
    auto read = call("GET", "/apiv1/me/cas", from_evil);
    EXPECT_TRUE(read.header("access-control-allow-origin").empty()) << "another site's page may not read it";
}

// The legacy scope style (`certs.read`) creates a key that works, stored and shown under the current names.
TEST_F(SeedFlows, LegacyCertsReadScopesCreateWorkingKeys) {
    start();
    add_user("legacy@example.com");
    headers session = login("legacy@example.com");
    auto made = call("POST", "/apiv1/me/apikeys", session,
                     R"({"name":"old","expires_in_seconds":600,"permissions":["certs.read"]})");
    ASSERT_EQ(made.status, 201) << made.body;
    auto const d = made.json().at("data");
    std::string const token(d.at("token").as_string());
    EXPECT_EQ(d.at("permissions"),
              json::parse(R"([{"obtype":"certificates","obid":"*","actions":["read"]}])"));
    EXPECT_EQ(call("GET", "/apiv1/me/certificates", token).status, 200);
    EXPECT_EQ(call("GET", "/apiv1/me/devices", token).status, 403);
    EXPECT_EQ(call("POST", "/apiv1/me/apikeys", session,
                   R"({"name":"bad","expires_in_seconds":600,"permissions":["certs.launch"]})")
                  .status,
              400);
}

// A fleet registering at once through one provisioning key: every registration succeeds (they used to meet
// InnoDB deadlocks, answered 503, in bench/device_sockets.sh).
TEST_F(SeedFlows, ConcurrentRegistrationsOfOneUserAllSucceed) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
                       {"database", {{"pool_size", 8}}}});
    add_user("burst@example.com");
    auto key = key_for("burst@example.com", {"ForDeviceAuthenticate:*[authenticate]"});
    constexpr int threads = 16;
    constexpr int each = 40;
    std::vector<std::future<std::vector<int>>> runs;
    for (int t = 0; t < threads; ++t) {
        runs.push_back(std::async(std::launch::async, [this, &key, t] {
            std::vector<int> statuses;
            for (int i = 0; i < each; ++i) {
                char public_id[37];
                std::snprintf(public_id, sizeof public_id, "00000000-0000-4000-8000-%06d%06d", t, i);
                json::object body{
                    {"device_public_id", public_id},
                    {"dev_pk", base64_encode(std::string(31, 'b') + static_cast<char>('a' + t))}};
                statuses.push_back(call("POST", "/apiv1/me/devices", key, json::serialize(body)).status);
            }
            return statuses;
        }));
    }
    int created = 0;
    for (auto& r : runs) {
        for (int st : r.get()) {
            EXPECT_EQ(st, 201);
            created += st == 201 ? 1 : 0;
        }
    }
    EXPECT_EQ(created, threads * each);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices"), threads * each);
    EXPECT_EQ(server_->log().find("Deadlock"), std::string::npos);
}

// The device flow's budgets, each at its key: device_start per address, polls per device code and per
// address (ten times the budget), registrations per address whatever user_id the body names.
TEST_F(SeedFlows, TheDeviceFlowsBudgetsCountAtTheirKeys) {
    start(json::object{
        {"rate_limits",
         {{"auth_per_minute", 1000}, {"api_per_minute", 100000}, {"device_flow_per_minute", 3}}}});
    auto uid = add_user("budgets@example.com");
    wait_for_room_in_window(20);  // every budget below is one fixed minute: count inside one
    auto limit_of = [](http_response const& r) {
        auto const doc = r.json();
        return std::string(doc.at("error").at("params").at("limit").as_string());
    };
    std::string const start_body =
        R"({"action":"device_start","scopes":["openid"],"interval":1,"expires_in":900})";
    std::string code;
    for (int i = 0; i < 3; ++i) {
        auto r = call("POST", "/auth/device", headers{}, start_body);
        ASSERT_EQ(r.status, 200) << i << r.body;
        code = std::string(r.json().at("data").at("device_code").as_string());
    }
    auto fourth = call("POST", "/auth/device", headers{}, start_body);
    ASSERT_EQ(fourth.status, 429) << fourth.body;
    EXPECT_EQ(limit_of(fourth), "device_flow");

    std::string const poll = R"({"action":"device_poll","device_code":")" + code + R"("})";
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(call("POST", "/auth/device", headers{}, poll).status, 200) << i;
    }
    EXPECT_EQ(call("POST", "/auth/device", headers{}, poll).status, 429) << "the code's own budget";
    // Unknown codes: each has a budget of its own, the address ten times the budget (30): 3 polls above, 27
    // here.
    for (int i = 0; i < 27; ++i) {
        auto r = call("POST", "/auth/device", headers{},
                      R"({"action":"device_poll","device_code":"dc_unknown)" + std::to_string(i) + R"("})");
        EXPECT_EQ(r.status, 404) << i << r.body;
    }
    auto over =
        call("POST", "/auth/device", headers{}, R"({"action":"device_poll","device_code":"dc_one_more"})");
    ASSERT_EQ(over.status, 429) << over.body;
    EXPECT_EQ(limit_of(over), "device_flow_polls");

    // Registrations: per address, before the code is looked at (the body's user_id proves nothing yet).
    json::object reg{{"device_public_id", "00000000-0000-4000-8000-00000000bad0"},
                     {"dev_pk", base64_encode(std::string(32, 'c'))},
                     {"user_id", uid},
                     {"registration_code", "rc_wrong"}};
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(call("POST", "/apiv1/device/registration", headers{}, json::serialize(reg)).status, 401)
            << i;
    }
    auto reg_over = call("POST", "/apiv1/device/registration", headers{}, json::serialize(reg));
    ASSERT_EQ(reg_over.status, 429) << reg_over.body;
    EXPECT_EQ(limit_of(reg_over), "device_flow");
}

}  // namespace
}  // namespace certctrl::test
