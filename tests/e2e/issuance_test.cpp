// End to end: issuance requests, SELF_CA inline issuance, cancellation and export, against the real binary
// and MariaDB.
#include "api_fixture.hpp"
#include "openssl_cli.hpp"
#include "webhook_sink.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/zip.hpp"

#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <future>
#include <map>
#include <set>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;

class Issuance : public api_fixture {
  protected:
    void start_with(unsigned issuance_per_hour = 1000, unsigned workers = 2) {
        start(json::object{{"rate_limits",
                            {{"auth_per_minute", 1000},
                             {"api_per_minute", 100000},
                             {"issuance_per_hour", issuance_per_hour}}},
                           {"issuance", {{"workers", workers}}}});
    }
    // A CA and a SELF_CA account of the key's user: {account id, CA PEM}.
    std::pair<std::int64_t, std::string> self_ca(std::string const& key) {
        auto ca = call("POST", "/apiv1/me/cas", key, R"({"common_name":"Issuing root","valid_days":365})");
        EXPECT_EQ(ca.status, 200) << ca.body;
        auto acct = call("POST", "/apiv1/me/acme-accounts", key,
                         R"({"name":"self","provider":"SELF_CA","ca_id":)" + std::to_string(id_of(ca)) +
                             R"(,"cert_valid_seconds":86400})");
        EXPECT_EQ(acct.status, 200) << acct.body;
        return {id_of(acct), std::string(ca.json().at("data").at("ca_certificate_pem").as_string())};
    }
    std::int64_t cert(std::string const& key, std::int64_t acct, std::string const& extra = "") {
        auto r =
            call("POST", "/apiv1/me/certificates", key,
                 R"({"domain_name":"example.com","sans":["www.example.com","*.api.example.com"],"acct_id":)" +
                     std::to_string(acct) + extra + "}");
        EXPECT_EQ(r.status, 200) << r.body;
        return id_of(r);
    }
};

// The EKU bits (XKU_*) of the first certificate in `pem`.
std::uint32_t extended_key_usage(std::string const& pem) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (x == nullptr) {
        return 0;
    }
    std::uint32_t const eku = X509_get_extended_key_usage(x);
    X509_free(x);
    return eku;
}

std::vector<std::string> const scopes = {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                         "certificates:*[read,write,issue]"};

TEST_F(Issuance, SelfCaIssuesInlineAndTheChainVerifies) {
    start_with();
    auto uid = add_user("self@example.com");
    auto key = key_for("self@example.com", scopes);
    auto [acct, ca_pem] = self_ca(key);
    auto id = cert(key, acct, R"(,"policy":"HYBRID","server_decrypt_export":true)");
    auto const c = std::to_string(id);

    auto const t0 = std::chrono::steady_clock::now();
    auto issued = call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
    std::cout << "SELF_CA inline issuance (3 names, ECDSA P-256), request to response: "
              << std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count()
              << " ms\n";
    ASSERT_EQ(issued.status, 200) << issued.body;
    auto d = issued.json().at("data");
    EXPECT_EQ(d.at("status").as_string(), "SUCCESS");
    auto const history_id = d.at("issue_history_id").as_int64();
    EXPECT_GT(history_id, 0);
    EXPECT_EQ(d.at("id").as_int64(), id);  // the record's fields beside the issuance fields
    std::string const pem(d.at("cert").at("cert").as_string());
    EXPECT_EQ(crypto::verify_chain(pem, ca_pem), "") << pem;
    auto const verified = openssl_verify(pem, ca_pem);
    EXPECT_NE(verified.find("leaf.pem: OK"), std::string::npos) << verified;
    EXPECT_EQ(extended_key_usage(pem), XKU_SSL_SERVER) << "serverAuth only unless client_auth is asked for";
    auto info = crypto::inspect_certificate_pem(pem);
    ASSERT_TRUE(info);
    EXPECT_NEAR(static_cast<double>(info->not_after - info->not_before), 86400.0 + 60, 5.0);
    EXPECT_EQ(issued.body.find("PRIVATE KEY"), std::string::npos);

    // History, newest first, with seconds; issue-result is the record with its PEM.
    auto rows = call("GET", "/apiv1/me/certificates/" + c + "/issues?offset=0&limit=10", key);
    ASSERT_EQ(rows.status, 200);
    auto const rows_json = rows.json();
    auto const& row = rows_json.at("data").at(0);
    EXPECT_EQ(row.at("id").as_int64(), history_id);
    EXPECT_EQ(row.at("status").as_string(), "SUCCESS");
    EXPECT_EQ(row.at("issue_attempt_number").as_int64(), 1);
    EXPECT_EQ(row.at("error_message").as_string(), "");
    EXPECT_LT(row.at("completed_at").as_int64(), 10'000'000'000LL);
    EXPECT_GE(row.at("completed_at").as_int64(), row.at("started_at").as_int64());
    auto legacy = call("GET", "/apiv1/me/certificates/" + c + "/issues/history", key);
    EXPECT_EQ(legacy.status, 200);
    EXPECT_EQ(legacy.json().at("data").as_array().size(), 1u);
    auto result = call("GET", "/apiv1/me/certificates/" + c + "/issue-result", key);
    ASSERT_EQ(result.status, 200);
    EXPECT_EQ(result.json().at("data").at("cert").as_string(), pem);
    EXPECT_EQ(result.json().at("data").at("status").as_string(), "active");
    EXPECT_EQ(result.json().at("data").at("serial_number").as_string(), info->serial_hex);

    // The key is stored encrypted only: 12-byte nonce, 16-byte tag, a master-wrapped data key.
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates WHERE LENGTH(enc_nonce) = 12 AND "
                                 "LENGTH(enc_tag) = 16 AND enc_scheme = 1 AND LENGTH(enc_privkey) > 60"),
              1);
    EXPECT_EQ(
        schema_->query_int("SELECT COUNT(*) FROM certificate_master_wrapped WHERE LENGTH(wrapped_data_key) = "
                           "32 AND key_version = 1"),
        1);
    auto dump = schema_->dump_text({"certificates", "certificate_master_wrapped", "cas", "issue_history"});
    EXPECT_EQ(dump.find("PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(server_->log().find("PRIVATE KEY"), std::string::npos);

    // Renew (the overview document's route) keeps the record and issues a new serial.
    auto session = login("self@example.com");
    auto renewed =
        call("POST", "/apiv1/users/" + std::to_string(uid) + "/certificates/" + c + "/renew", session, "{}");
    ASSERT_EQ(renewed.status, 200) << renewed.body;
    EXPECT_EQ(renewed.json().at("data").at("status").as_string(), "SUCCESS");
    EXPECT_NE(renewed.json().at("data").at("issue_history_id").as_int64(), history_id);
    EXPECT_NE(renewed.json().at("data").at("serial_number").as_string(), info->serial_hex);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates"), 1);
    EXPECT_EQ(schema_->query_int("SELECT MAX(issue_attempt_number) FROM issue_history"), 2);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE kind = 'renew'"), 1);
    auto ca_record =
        call("GET", "/apiv1/me/cas/" + std::to_string(schema_->query_int("SELECT id FROM cas")), key);
    ASSERT_EQ(ca_record.status, 200) << ca_record.body;
    EXPECT_EQ(ca_record.json().at("data").at("issued_cert_count").as_int64(), 2);
    EXPECT_GT(ca_record.json().at("data").at("last_used_at").as_int64(), 0);

    // The worker callback is not a user route.
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues/history", key, "{}").status, 403);
    // Scopes: read alone cannot issue; read+issue on this certificate can, with a scope on its private CA's
    // account.
    auto reader = key_for("self@example.com", {"certificates:" + c + "[read]"});
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", reader, "{}").status, 403);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + c + "/issues", reader).status, 200);
    auto issuer = key_for("self@example.com", {"certificates:" + c + "[read,issue]",
                                               "acme_accounts:" + std::to_string(acct) + "[issue]"});
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", issuer, "{}").status, 200);
}

// The list items of `target` by id (the certificate list without ?detail answers rendered items).
std::map<std::int64_t, json::object> items_by_id(http_client& c, std::string const& target,
                                                 std::string const& key) {
    auto r = c.get(target, {{"Authorization", "Bearer " + key}});
    EXPECT_EQ(r.status, 200) << r.body;
    std::map<std::int64_t, json::object> out;
    auto const doc = r.json();
    for (auto const& v : doc.at("data").as_array()) {
        out[v.at("id").as_int64()] = v.as_object();
    }
    return out;
}

TEST_F(Issuance, ListsShowEveryChangeAtOnceOnEveryInstance) {
    start_with();
    add_user("lists@example.com");
    auto key = key_for("lists@example.com", scopes);
    auto [acct, ca_pem] = self_ca(key);
    std::vector<std::int64_t> ids;
    for (int i = 0; i < 3; ++i) {
        ids.push_back(cert(key, acct));
    }
    auto other = another_instance();
    http_client a(server_->port());
    http_client b(other->port());
    std::string const list = "/apiv1/me/certificates?limit=10";
    // Both instances have listed (and rendered) the three pending certificates.
    for (auto* c : {&a, &b}) {
        auto items = items_by_id(*c, list, key);
        ASSERT_EQ(items.size(), 3u);
        for (auto id : ids) {
            EXPECT_EQ(items[id].at("status"), "pending");
            EXPECT_EQ(items[id].at("serial_number"), "");
        }
    }

    // Issued through one instance, the list of the other shows it at once.
    auto issued = call("POST", "/apiv1/me/certificates/" + std::to_string(ids[1]) + "/issues", key, "{}");
    ASSERT_EQ(issued.json().at("data").at("status"), "SUCCESS") << issued.body;
    auto const detail =
        call("GET", "/apiv1/me/certificates/" + std::to_string(ids[1]), key).json().at("data");
    ASSERT_NE(detail.at("serial_number"), "");
    for (auto* c : {&b, &a}) {
        auto items = items_by_id(*c, list, key);
        EXPECT_EQ(items[ids[1]].at("status"), "active");
        EXPECT_EQ(items[ids[1]].at("serial_number"), detail.at("serial_number"));
        EXPECT_EQ(items[ids[1]].at("not_after"), detail.at("not_after"));
        EXPECT_EQ(items[ids[1]].at("has_private_key"), true);
        EXPECT_EQ(items[ids[0]].at("status"), "pending");
    }

    // A list item is the record of ?detail=most without the heavy fields, and the record of GET by id.
    auto most = items_by_id(b, list + "&detail=most", key);
    for (auto const& [id, item] : items_by_id(b, list, key)) {
        auto full = most.at(id);
        for (auto const* heavy : {"cert", "der", "csr"}) {
            EXPECT_TRUE(full.erase(heavy));
        }
        EXPECT_EQ(json::value(item), json::value(full)) << "certificate " << id;
        EXPECT_EQ(json::value(item),
                  call("GET", "/apiv1/me/certificates/" + std::to_string(id), key).json().at("data"));
    }

    // Status follows the clock, not the text: a certificate expiring in three seconds lists as expired after
    // them with no change of its row.
    schema_->exec(
        "UPDATE certificates SET not_after = UNIX_TIMESTAMP() + 3, row_version = row_version + 1 "
        "WHERE id = " +
        std::to_string(ids[1]));
    EXPECT_EQ(items_by_id(b, list, key)[ids[1]].at("status"), "active");
    std::this_thread::sleep_for(std::chrono::milliseconds(4100));
    EXPECT_EQ(items_by_id(b, list, key)[ids[1]].at("status"), "expired");

    // A deleted certificate leaves every instance's list at once.
    ASSERT_EQ(call("DELETE", "/apiv1/me/certificates/" + std::to_string(ids[2]), key).status, 204);
    EXPECT_FALSE(items_by_id(b, list, key).contains(ids[2]));
}

TEST_F(Issuance, ClientAuthOnRequest) {
    start_with();
    add_user("mtls@example.com");
    auto key = key_for("mtls@example.com", scopes);
    auto [acct, ca_pem] = self_ca(key);
    auto const c = std::to_string(cert(key, acct, R"(,"client_auth":true)"));
    auto issued = call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
    ASSERT_EQ(issued.status, 200);
    EXPECT_TRUE(issued.json().at("data").at("client_auth").as_bool());
    std::string const pem(issued.json().at("data").at("cert").at("cert").as_string());
    EXPECT_EQ(extended_key_usage(pem), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    EXPECT_EQ(call("POST", "/apiv1/me/certificates", key,
                   R"({"domain_name":"x.example.com","acct_id":1,"client_auth":"yes"})")
                  .status,
              400);
}

TEST_F(Issuance, ExportFollowsThePolicyAndTheZipHoldsTheDocumentedEntries) {
    start_with();
    add_user("exp@example.com");
    auto key = key_for("exp@example.com", scopes);
    auto [acct, ca_pem] = self_ca(key);
    auto open = std::to_string(cert(key, acct, R"(,"policy":"MASTER_ONLY","server_decrypt_export":true)"));
    auto closed = std::to_string(cert(key, acct, R"(,"policy":"HYBRID")"));
    auto device_only = std::to_string(cert(key, acct, R"(,"policy":"DEVICE_REQUIRED")"));
    auto never = std::to_string(cert(key, acct, R"(,"server_decrypt_export":true)"));
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + never + "/export", key).status, 409);  // not issued yet
    for (auto const& id : {open, closed, device_only}) {
        ASSERT_EQ(call("POST", "/apiv1/me/certificates/" + id + "/issues", key, "{}")
                      .json()
                      .at("data")
                      .at("status"),
                  "SUCCESS");
    }
    for (auto const& id : {closed, device_only}) {
        auto r = call("GET", "/apiv1/me/certificates/" + id + "/export", key);
        EXPECT_EQ(r.status, 403) << r.body;
        EXPECT_EQ(code_of(r), 4003);
        EXPECT_EQ(r.body.find("PRIVATE KEY"), std::string::npos);
        EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + id + "/export?format=zip", key).status, 403);
    }

    // JSON: the record, cert = the full chain (leaf first), leaf_pem and chain_pem beside it, privkey (base64
    // of the PEM).
    auto j = call("GET", "/apiv1/me/certificates/" + open + "/export", key);
    ASSERT_EQ(j.status, 200) << j.body;
    auto d = j.json().at("data");
    std::string const leaf(d.at("leaf_pem").as_string());
    std::string const chain(d.at("chain_pem").as_string());
    EXPECT_EQ(d.at("cert").as_string(), leaf + chain) << "S0: cert.pem for nginx's ssl_certificate";
    EXPECT_EQ(d.at("fullchain").as_string(), leaf + chain);
    EXPECT_EQ(d.at("chain").as_string(), chain);
    EXPECT_EQ(d.at("id").as_int64(), std::stoll(open));
    for (char const* member : {"domain_name", "sans", "acct_id", "status", "key_dist_policy", "public_id",
                               "serial_number", "not_after", "server_decrypt_export"}) {
        EXPECT_TRUE(d.as_object().contains(member)) << "the record's " << member;
    }
    EXPECT_EQ(d.at("status"), "active");
    auto key_pem = base64_decode(std::string(d.at("privkey").as_string()));
    ASSERT_TRUE(key_pem);
    EXPECT_TRUE(crypto::key_matches_certificate(*key_pem, leaf));
    EXPECT_TRUE(crypto::key_matches_certificate(*key_pem, std::string(d.at("cert").as_string())));
    EXPECT_EQ(chain, ca_pem);
    EXPECT_EQ(crypto::verify_chain(leaf + chain, ca_pem), "");
    EXPECT_EQ(j.header("cache-control"), "no-store");
    EXPECT_EQ(call("HEAD", "/apiv1/me/certificates/" + open + "/export", key).status, 405);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + open + "/export?format=pem", key).status, 400);

    // Zip, by query or by Accept.
    auto z = call("GET", "/apiv1/me/certificates/" + open + "/export?format=zip", key);
    ASSERT_EQ(z.status, 200) << z.body;
    EXPECT_EQ(z.header("content-type"), "application/zip");
    EXPECT_EQ(z.header("content-disposition"), "attachment; filename=\"cert-" + open + ".zip\"");
    std::string const password = z.header("x-export-password");
    EXPECT_TRUE(std::regex_match(password, std::regex("[A-Za-z0-9_-]{40}"))) << password;
    auto entries = service::read_zip(z.body);
    std::vector<std::string> names;
    std::map<std::string, std::string> files;
    for (auto const& [n, content] : entries) {
        names.push_back(n);
        files[n] = content;
    }
    EXPECT_EQ(names, (std::vector<std::string>{"private.key", "certificate.pem", "chain.pem", "fullchain.pem",
                                               "certificate.der", "bundle.pfx", "meta.json"}));
    EXPECT_TRUE(crypto::key_matches_certificate(files["private.key"], files["certificate.pem"]));
    EXPECT_EQ(files["certificate.pem"], leaf);
    EXPECT_EQ(files["fullchain.pem"], leaf + chain);
    EXPECT_EQ(files["certificate.der"], crypto::certificate_der(leaf));
    EXPECT_EQ(json::parse(files["meta.json"]), json::parse(R"({"cert_id":)" + open + "}"));
    EXPECT_EQ(files["meta.json"].find("password"), std::string::npos);
    auto const* p = reinterpret_cast<unsigned char const*>(files["bundle.pfx"].data());
    PKCS12* p12 = d2i_PKCS12(nullptr, &p, static_cast<long>(files["bundle.pfx"].size()));
    ASSERT_NE(p12, nullptr);
    EVP_PKEY* pk = nullptr;
    X509* x = nullptr;
    STACK_OF(X509)* cas = nullptr;
    EXPECT_EQ(PKCS12_parse(p12, "wrong password", &pk, &x, &cas), 0);
    EXPECT_EQ(PKCS12_parse(p12, password.c_str(), &pk, &x, &cas), 1);
    EXPECT_NE(pk, nullptr);
    EXPECT_NE(x, nullptr);
    EXPECT_EQ(cas ? sk_X509_num(cas) : 0, 1);
    EVP_PKEY_free(pk);
    X509_free(x);
    sk_X509_pop_free(cas, X509_free);
    PKCS12_free(p12);
    auto by_accept = call("GET", "/apiv1/me/certificates/" + open + "/export",
                          headers{{"Authorization", "Bearer " + key}, {"Accept", "application/zip"}});
    EXPECT_EQ(by_accept.header("content-type"), "application/zip");
    EXPECT_NE(by_accept.header("x-export-password"), password);
}

// Every release of a private key is audited in the owner's log (JSON, zip, an admin acting for the owner);
// with auth.export_requires_export_action a key needs certificates:<id>[export], read is not enough.
TEST_F(Issuance, KeyReleasesAreAuditedAndTheExportActionCanBeRequired) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
                       {"auth", {{"export_requires_export_action", true}}}});
    auto const uid = add_user("rel@example.com");
    add_user("boss@example.com");
    schema_->exec("UPDATE users SET roles = 'user,admin' WHERE email = 'boss@example.com'");
    auto key = key_for("rel@example.com", scopes);
    auto [acct, ca_pem] = self_ca(key);
    auto const c = std::to_string(cert(key, acct, R"(,"policy":"MASTER_ONLY","server_decrypt_export":true)"));
    ASSERT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}").status, 200);
    auto const releases = [&](std::string const& how) {
        return schema_->query_int(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'key.release' AND user_id = " +
            std::to_string(uid) + " AND JSON_VALUE(detail, '$.how') = '" + how +
            "' AND JSON_VALUE(detail, '$.cert_id') = " + c);
    };
    auto const read_only = key_for("rel@example.com", {"certificates:*[read]"});
    auto refused = call("GET", "/apiv1/me/certificates/" + c + "/export", read_only);
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(refused.body.find("[export]"), std::string::npos) << refused.body;
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + c + "/export?format=zip", read_only).status, 403);
    EXPECT_EQ(releases("export") + releases("zip"), 0);

    auto const exporter = key_for("rel@example.com", {"certificates:" + c + "[export]"});
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + c + "/export", exporter).status, 200);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + c + "/export?format=zip", exporter).status, 200);
    EXPECT_EQ(releases("export"), 1);
    EXPECT_EQ(releases("zip"), 1);
    EXPECT_EQ(
        schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'key.release' AND "
                           "JSON_VALUE(detail, '$.via') = 'api_key' AND JSON_VALUE(detail, '$.api_key_id') "
                           "IS NOT NULL"),
        2);
    // A session exports without scopes; an admin acting for the owner is named in the owner's log.
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + c + "/export", login("rel@example.com")).status, 200);
    auto const boss = login("boss@example.com");
    EXPECT_EQ(
        call("GET", "/apiv1/users/" + std::to_string(uid) + "/certificates/" + c + "/export", boss).status,
        200);
    EXPECT_EQ(releases("export"), 3);
    EXPECT_EQ(
        schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'key.release' AND user_id = " +
                           std::to_string(uid) + " AND JSON_VALUE(detail, '$.by_user_id') IS NOT NULL"),
        1);
}

// A private CA is its user's trust anchor: an API key issuing from it needs a scope on that account or CA,
// not only certificates:*[issue].
TEST_F(Issuance, IssuingFromAPrivateCaNeedsAScopeOnTheAccountOrTheCa) {
    start_with();
    add_user("pca@example.com");
    auto admin_key = key_for("pca@example.com", scopes);
    auto [acct, ca_pem] = self_ca(admin_key);
    auto const ca_id =
        schema_->query_int("SELECT ca_id FROM acme_accounts WHERE id = " + std::to_string(acct));
    auto const c = std::to_string(cert(admin_key, acct));
    auto const certs_only = key_for("pca@example.com", {"certificates:*[read,write,issue]"});
    auto refused = call("POST", "/apiv1/me/certificates/" + c + "/issues", certs_only, "{}");
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(refused.body.find("acme_accounts:" + std::to_string(acct) + "[issue]"), std::string::npos)
        << refused.body;
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/renew", certs_only, "{}").status, 403);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + c), 0);
    EXPECT_GE(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'permission.denied'"), 2);

    auto const by_account = key_for(
        "pca@example.com", {"certificates:*[issue]", "acme_accounts:" + std::to_string(acct) + "[issue]"});
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", by_account, "{}").status, 200);
    auto const by_ca =
        key_for("pca@example.com", {"certificates:*[issue]", "cas:" + std::to_string(ca_id) + "[issue]"});
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", by_ca, "{}").status, 200);
    // A session needs no scope.
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", login("pca@example.com"), "{}").status,
              200);
}

TEST_F(Issuance, OneOpenRowUnderConcurrentRequestsAndCancellation) {
    start_with(1000, 0);  // no workers: ACME rows stay queued
    add_user("acme@example.com");
    add_user("other@example.com");
    auto key = key_for("acme@example.com", scopes);
    auto other = key_for("other@example.com", scopes);
    auto acct = call("POST", "/apiv1/me/acme-accounts", key, R"({"name":"le","provider":"letsencrypt"})");
    ASSERT_EQ(acct.status, 200);
    auto const c = std::to_string(cert(key, id_of(acct)));
    // ACME requests are queued: 20 at once give one PENDING row and the same id to everyone.
    std::vector<std::future<http_response>> calls;
    for (int i = 0; i < 20; ++i) {
        calls.push_back(std::async(std::launch::async, [&] {
            return call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
        }));
    }
    std::set<std::int64_t> ids;
    for (auto& f : calls) {
        auto r = f.get();
        ASSERT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.json().at("data").at("status").as_string(), "PENDING");
        ids.insert(r.json().at("data").at("issue_history_id").as_int64());
    }
    EXPECT_EQ(ids.size(), 1u);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history"), 1);
    auto const hid = std::to_string(*ids.begin());

    // Another user cannot see or cancel it.
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues/" + hid + "/cancel", other, "{}").status,
              404);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + c + "/issues", other).status, 404);
    auto cancelled = call("POST", "/apiv1/me/certificates/" + c + "/issues/" + hid + "/cancel", key, "{}");
    ASSERT_EQ(cancelled.status, 200) << cancelled.body;
    EXPECT_EQ(cancelled.json().at("data").at("status").as_string(), "CANCELLED");
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues/" + hid + "/cancel", key, "{}").status,
              409);
    auto again = call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
    ASSERT_EQ(again.status, 200);
    EXPECT_NE(std::to_string(again.json().at("data").at("issue_history_id").as_int64()), hid);
    EXPECT_EQ(again.json().at("data").at("issue_attempt_number").as_int64(), 2);
    EXPECT_EQ(call("POST", "/apiv1/me/certificates/999999/issues", key, "{}").status, 404);
    // A PROCESSING row is flagged for its worker rather than stopped mid-flight.
    schema_->exec("UPDATE issue_history SET status = 'PROCESSING' WHERE status = 'PENDING'");
    auto flagged =
        call("POST",
             "/apiv1/me/certificates/" + c + "/issues/" +
                 std::to_string(again.json().at("data").at("issue_history_id").as_int64()) + "/cancel",
             key, "{}");
    ASSERT_EQ(flagged.status, 200);
    EXPECT_EQ(flagged.json().at("data").at("status").as_string(), "PROCESSING");
    EXPECT_TRUE(flagged.json().at("data").at("cancel_requested").as_bool());
}

// SELF_CA issuances spend rate_limits.self_ca_issuance_per_hour, ACME ones issuance_per_hour; a repeated
// request that the open row answers spends nothing.
TEST_F(Issuance, RequestsCountAgainstTheHourlyIssuanceBudget) {
    start(json::object{{"rate_limits",
                        {{"auth_per_minute", 1000},
                         {"api_per_minute", 100000},
                         {"issuance_per_hour", 2},
                         {"self_ca_issuance_per_hour", 3}}},
                       {"issuance", {{"workers", 0}}}});  // ACME rows stay PENDING: nothing works them
    wait_for_room_in_window(30, 3600);                    // the budgets are clock hours: count inside one
    add_user("budget@example.com");
    auto key = key_for("budget@example.com", scopes);
    auto [acct, ca_pem] = self_ca(key);
    auto const c = std::to_string(cert(key, acct));
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}").status, 200) << i;
    }
    auto fourth = call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
    EXPECT_EQ(fourth.status, 429);
    EXPECT_EQ(code_of(fourth), 4029);
    EXPECT_EQ(fourth.json().at("error").at("params").at("limit"), "self_ca_issuance");
    EXPECT_FALSE(fourth.header("retry-after").empty());
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history"), 3);

    // ACME: the SELF_CA budget spent leaves the ACME one whole; five requests while one row is open spend
    // one.
    auto le = call("POST", "/apiv1/me/acme-accounts", key,
                   R"({"name":"le","email":"budget@example.com","provider":"letsencrypt"})");
    ASSERT_EQ(le.status, 200) << le.body;
    auto const a = std::to_string(cert(key, id_of(le)));
    std::int64_t open = 0;
    for (int i = 0; i < 5; ++i) {
        auto r = call("POST", "/apiv1/me/certificates/" + a + "/issues", key, "{}");
        ASSERT_EQ(r.status, 200) << i << " " << r.body;
        auto const id = r.json().at("data").at("issue_history_id").as_int64();
        EXPECT_TRUE(open == 0 || id == open) << "single in-flight";
        open = id;
    }
    auto cancel = [&](std::int64_t row) {
        return call("POST", "/apiv1/me/certificates/" + a + "/issues/" + std::to_string(row) + "/cancel", key,
                    "{}");
    };
    ASSERT_EQ(cancel(open).status, 200);
    auto second = call("POST", "/apiv1/me/certificates/" + a + "/issues", key, "{}");
    ASSERT_EQ(second.status, 200) << "the second of two";
    ASSERT_EQ(cancel(second.json().at("data").at("issue_history_id").as_int64()).status, 200);
    auto third = call("POST", "/apiv1/me/certificates/" + a + "/issues", key, "{}");
    EXPECT_EQ(third.status, 429) << third.body;
    EXPECT_EQ(third.json().at("error").at("params").at("limit"), "issuance");
}

TEST_F(Issuance, AutoRenewQueuesCertificatesPastTwoThirdsOfTheirLifetime) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
                       {"issuance", {{"renewal_check_seconds", 1}, {"poll_interval_ms", 200}}}});
    add_user("renew@example.com");
    auto key = key_for("renew@example.com", {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                             "certificates:*[read,write,issue]", "devices:*[read,write]"});
    auto [acct, ca_pem] = self_ca(key);
    auto const due = std::to_string(cert(key, acct));
    auto const manual = std::to_string(cert(key, acct, R"(,"auto_renew":false)"));
    auto const fresh = std::to_string(cert(key, acct));
    for (auto const& id : {due, manual, fresh}) {
        ASSERT_EQ(call("POST", "/apiv1/me/certificates/" + id + "/issues", key, "{}")
                      .json()
                      .at("data")
                      .at("status"),
                  "SUCCESS");
    }
    auto dev = call("POST", "/apiv1/me/devices", key, R"({"name":"web"})");
    // A device registered from the user side has no key yet: the wrap is pending (202).
    ASSERT_EQ(call("POST", "/apiv1/me/certificates/" + due + "/assign", key,
                   R"({"device_id":)" + std::to_string(id_of(dev)) + "}")
                  .status,
              202);
    std::string const old_serial(
        call("GET", "/apiv1/me/certificates/" + due, key).json().at("data").at("serial_number").as_string());
    // Make two of them 90% through their lifetime.
    schema_->exec(
        "UPDATE certificates SET not_before = UNIX_TIMESTAMP() - 900, not_after = UNIX_TIMESTAMP() + 100 "
        "WHERE id IN (" +
        due + ", " + manual + ")");
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + due +
                              " AND kind = 'renew' AND status = 'SUCCESS'") == 0 &&
           std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + due +
                                 " AND kind = 'renew' AND status = 'SUCCESS'"),
              1);
    auto after = call("GET", "/apiv1/me/certificates/" + due, key).json().at("data");
    EXPECT_NE(after.at("serial_number").as_string(), old_serial);
    EXPECT_GT(after.at("not_after").as_int64(), static_cast<std::int64_t>(std::time(nullptr)) + 3600);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_assignments WHERE cert_id = " + due), 1)
        << "a renewal keeps the assignments";
    std::this_thread::sleep_for(std::chrono::seconds(2));  // further checks must not queue it again
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + due), 2);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + manual), 1)
        << "auto_renew false is left alone";
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE cert_id = " + fresh), 1)
        << "not due yet";
}

TEST_F(Issuance, RewrapKeysMovesEverySecretToANewMasterKeyVersion) {
    start_with();
    add_user("rot@example.com");
    auto key = key_for("rot@example.com", {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                           "certificates:*[read,write,issue]", "dns_providers:*[read,write]",
                                           "webhooks:*[read,write]"});
    auto [acct, ca_pem] = self_ca(key);
    auto const c = std::to_string(cert(key, acct, R"(,"server_decrypt_export":true)"));
    ASSERT_EQ(
        call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}").json().at("data").at("status"),
        "SUCCESS");
    ASSERT_EQ(
        call("POST", "/apiv1/me/acme-accounts", key, R"({"name":"le","provider":"letsencrypt"})").status,
        200);
    ASSERT_EQ(call("POST", "/apiv1/me/dns-providers", key,
                   R"({"name":"cf","kind":"cloudflare","api_token":"cf-token-0123456789abcdef"})")
                  .status,
              201);
    // A webhook whose secret was rotated: two sealed secrets. Its receiver is a real local HTTPS server.
    https_stub receiver(dir_.path() / "receiver-root.pem", [](https_stub::request const&) {
        https_stub::response res;
        res.result(boost::beast::http::status::no_content);
        return res;
    });
    auto hook = call("POST", "/apiv1/me/webhooks", key,
                     R"({"url":")" + receiver.url("/hook") + R"(","events":["certificate.deleted"]})");
    ASSERT_EQ(hook.status, 201) << hook.body;
    auto const hook_id = std::to_string(id_of(hook));
    std::string const old_secret(hook.json().at("data").at("secret").as_string());
    auto rotated =
        call("POST", "/apiv1/me/webhooks/" + hook_id + "/rotate-secret", key, R"({"overlap_seconds":3600})");
    ASSERT_EQ(rotated.status, 200) << rotated.body;
    std::string const new_secret(rotated.json().at("data").at("secret").as_string());
    server_.reset();
    // An order in flight: its certificate key sealed on its row (as a worker stores it) under version 1.
    schema_->exec(
        "INSERT INTO issue_history (cert_id, user_id, status, inflight_cert_id, run_after, created_at) "
        "SELECT id, user_id, 'PENDING', id, 4102444800, 1 FROM certificates WHERE id = " +
        c);
    auto const row = schema_->query_int("SELECT MAX(id) FROM issue_history");
    crypto::keyring v1;
    v1.add(1, *hex_decode(test_master_key_hex()));
    std::string const order_key = "the order's certificate key";
    std::string const context = "issue_history." + std::to_string(row);
    schema_->exec("UPDATE issue_history SET acme_state = JSON_OBJECT('key', '" +
                  base64_encode(v1.seal(order_key, context)) +
                  "', 'order_url', 'https://ca/order/1') WHERE id = " + std::to_string(row));

    // Version 2 becomes current; version 1 stays readable through the retired-keys file.
    std::string const v2(64, 'b');
    std::ofstream(dir_.path() / "retired.keys")
        << "# retired master keys\n1 " << test_master_key_hex() << "\n";
    auto cfg = make_config(schema_->db(),
                           {{"crypto",
                             {{"master_key_env", "CERTCTRL_NEW_MASTER_KEY"},
                              {"master_key_version", 2},
                              {"retired_master_keys_file", (dir_.path() / "retired.keys").string()}}}});
    std::ofstream(dir_.path() / "v2.json") << json::serialize(cfg);
    std::vector<std::string> const env{"CERTCTRL_TEST_SERVER_DB_PASSWORD=" + schema_->db().password,
                                       "CERTCTRL_NEW_MASTER_KEY=" + v2};
    auto r = run_server_command({"rewrap-keys", "--config", (dir_.path() / "v2.json").string()}, env);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(
        r.output.find(
            "re-wrapped 1 certificate data key(s) and re-sealed 6 secret(s) under master key version 2"),
        std::string::npos)
        << r.output;
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_master_wrapped WHERE key_version = 2"), 1);
    for (auto const* col :
         {"acme_accounts.enc_account_key", "cas.enc_private_key", "dns_providers.enc_credentials",
          "webhooks.enc_secret", "webhooks.enc_previous_secret"}) {
        std::string const c_(col);
        auto const dot = c_.find('.');
        EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM " + c_.substr(0, dot) + " WHERE " +
                                     c_.substr(dot + 1) + " IS NOT NULL AND SUBSTRING(" + c_.substr(dot + 1) +
                                     ", 2, 4) <> CHAR(0, 0, 0, 2)"),
                  0)
            << col;
    }
    // The in-flight order's key is under version 2 now, and the rest of its progress is as it was.
    EXPECT_EQ(schema_->query_int(
                  "SELECT COUNT(*) FROM issue_history WHERE id = " + std::to_string(row) +
                  " AND SUBSTRING(FROM_BASE64(JSON_VALUE(acme_state, '$.key')), 2, 4) = "
                  "CHAR(0, 0, 0, 2) AND JSON_VALUE(acme_state, '$.order_url') = 'https://ca/order/1'"),
              1);
    schema_->exec("DELETE FROM issue_history WHERE id = " +
                  std::to_string(row));  // frees the certificate's slot
    auto again = run_server_command({"rewrap-keys", "--config", (dir_.path() / "v2.json").string()}, env);
    EXPECT_NE(again.output.find("re-wrapped 0 certificate data key(s) and re-sealed 0 secret(s)"),
              std::string::npos)
        << again.output;

    // A server that knows only version 2 still exports the key and signs with the CA.
    auto only_v2 =
        make_config(schema_->db(),
                    {{"crypto", {{"master_key_env", "CERTCTRL_NEW_MASTER_KEY"}, {"master_key_version", 2}}},
                     {"rate_limits", {{"issuance_per_hour", 1000}, {"api_per_minute", 100000}}},
                     {"egress", {{"allow", json::array{"127.0.0.1/32"}}}},
                     {"webhooks", {{"ca_file", (dir_.path() / "receiver-root.pem").string()}}}});
    server_ = std::make_unique<server_process>(only_v2, schema_->db().password,
                                               std::vector<std::string>{"CERTCTRL_NEW_MASTER_KEY=" + v2});
    auto exported = call("GET", "/apiv1/me/certificates/" + c + "/export", key);
    ASSERT_EQ(exported.status, 200) << exported.body;
    auto key_pem = base64_decode(std::string(exported.json().at("data").at("privkey").as_string()));
    ASSERT_TRUE(key_pem);
    EXPECT_TRUE(crypto::key_matches_certificate(
        *key_pem, std::string(exported.json().at("data").at("cert").as_string())));
    EXPECT_EQ(
        call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}").json().at("data").at("status"),
        "SUCCESS");
    // The webhook's secrets open under version 2: the ping arrives signed with both, as during any overlap.
    auto ping = call("POST", "/apiv1/me/webhooks/" + hook_id + "/ping", key);
    ASSERT_EQ(ping.status, 202) << ping.body;
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (receiver.requests().empty() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto got = receiver.requests();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(json::parse(got[0].body()).at("type"), "ping") << got[0].body();
    EXPECT_TRUE(signature_valid(new_secret, got[0])) << got[0]["webhook-signature"];
    EXPECT_TRUE(signature_valid(old_secret, got[0])) << got[0]["webhook-signature"];
}

TEST_F(Issuance, AnUnreachableCaIsRetriedWithBackoffThenGivenUp) {
    start(json::object{
        {"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
        {"issuance", {{"poll_interval_ms", 100}, {"retry_base_seconds", 2}, {"max_attempts", 3}}}});
    add_user("retry@example.com");
    auto key = key_for("retry@example.com", scopes);
    // Nothing listens on port 1: every attempt fails to connect, which is worth retrying.
    auto acct = call("POST", "/apiv1/me/acme-accounts", key,
                     R"({"name":"down","provider":"custom","directory_url":"https://127.0.0.1:1/dir"})");
    ASSERT_EQ(acct.status, 200) << acct.body;
    auto const c = std::to_string(cert(key, id_of(acct)));
    auto issued = call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
    ASSERT_EQ(issued.status, 200);
    auto const hid = std::to_string(issued.json().at("data").at("issue_history_id").as_int64());
    // First a retry scheduled in the future, with the reason. Any attempt's: run_after has whole-second
    // precision, so the first retry can be due at once and be PENDING for less than one 100 ms look.
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(40);
    bool saw_retry = false;
    std::string status;
    while (std::chrono::steady_clock::now() < until) {
        status =
            std::to_string(schema_->query_int("SELECT CASE status WHEN 'PENDING' THEN 1 WHEN 'PROCESSING' "
                                              "THEN 2 WHEN 'FAILED' THEN 3 ELSE 4 END "
                                              "FROM issue_history WHERE id = " +
                                              hid));
        if (schema_->query_int(
                "SELECT COUNT(*) FROM issue_history WHERE id = " + hid +
                " AND status = 'PENDING' AND error_message LIKE 'Attempt _ failed, retrying in %' "
                "AND error_message LIKE '%127.0.0.1%'") == 1) {
            saw_retry = true;
        }
        if (status == "3") {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(saw_retry);
    ASSERT_EQ(status, "3") << "FAILED after the attempts";
    auto rows = call("GET", "/apiv1/me/certificates/" + c + "/issues", key).json();
    std::string const msg(rows.at("data").at(0).at("error_message").as_string());
    EXPECT_EQ(msg.rfind("Gave up after 3 attempts: ", 0), 0u) << msg;
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history"), 1) << "retries reuse the row";
    EXPECT_EQ(schema_->query_int("SELECT JSON_EXTRACT(acme_state, '$.retries') FROM issue_history"), 3);
}

}  // namespace
}  // namespace certctrl::test
