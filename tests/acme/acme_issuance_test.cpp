// End to end against the real pebble ACME CA: HTTP-01 issuance through the server's own challenge
// listener, a CA refusal becoming a readable FAILED row, and crash safety (kill -9 mid-issuance).
// These tests share pebble's fixed HTTP-01 port, so ctest runs them one at a time (RESOURCE_LOCK).
#include "acme_fixture.hpp"
#include "ca_proxy.hpp"
#include "cli_runner.hpp"
#include "openssl_cli.hpp"
#include "run_awaitable.hpp"
#include "webhook_sink.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/dns/rfc2136.hpp"
#include "certctrl/net/outbound.hpp"

#include <boost/asio/io_context.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <map>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;

class Acme : public acme_fixture {};

std::vector<std::string> const scopes = {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]"};

TEST_F(Acme, Http01IssuanceThroughTheServersOwnChallengeListener) {
    start(config_overrides());
    add_user("acme@example.com");
    auto key = key_for("acme@example.com", scopes);
    auto acct = pebble_account(key);
    std::string const domain = fresh_domain();
    auto created = call("POST", "/apiv1/me/certificates", key,
                        R"({"domain_name":")" + domain + R"(","sans":["www.)" + domain + R"("],"acct_id":)" +
                            std::to_string(acct) + R"(,"server_decrypt_export":true,"key_algorithm":"RSA"})");
    ASSERT_EQ(created.status, 200) << created.body;
    auto const cert = std::to_string(id_of(created));
    auto const t0 = std::chrono::steady_clock::now();
    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    ASSERT_EQ(issued.status, 200) << issued.body;
    EXPECT_EQ(issued.json().at("data").at("status").as_string(), "PENDING");
    auto const hid = issued.json().at("data").at("issue_history_id").as_int64();
    auto row = wait_terminal(key, cert, hid);
    auto const seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_EQ(row["status"], "SUCCESS") << json::serialize(row) << "\n" << server_->log();
    EXPECT_NE(row["acme_order_id"].as_string().find("https://127.0.0.1"), std::string::npos);
    EXPECT_GE(row["completed_at"].as_int64(), row["started_at"].as_int64());
    std::cout << "ACME HTTP-01 issuance (2 names, RSA 2048) took " << seconds << " s\n";
    // The worker logs where the time went (issue 14): one line with every step.
    std::string const log = server_->log();
    auto const line = log.find("issue " + std::to_string(hid) + ": certificate " + cert + " issued in");
    ASSERT_NE(line, std::string::npos) << "no step timings in the log";
    std::cout << log.substr(line, log.find('\n', line) - line) << "\n";
    for (char const* step :
         {"account_ms=", "key_ms=", "order_ms=", "authorizations_ms=", "finalize_ms=", "store_ms="}) {
        EXPECT_NE(log.find(step, line), std::string::npos) << step;
    }

    auto result = call("GET", "/apiv1/me/certificates/" + cert + "/issue-result", key);
    ASSERT_EQ(result.status, 200);
    std::string const chain(result.json().at("data").at("cert").as_string());
    std::string const root = pebble_root();
    EXPECT_EQ(crypto::verify_chain(chain, root), "");
    auto const verified = openssl_verify(chain, root);
    EXPECT_NE(verified.find("leaf.pem: OK"), std::string::npos) << verified;
    auto info = crypto::inspect_certificate_pem(chain);
    ASSERT_TRUE(info);
    EXPECT_EQ(info->key_algorithm, "RSA_2048");
    auto exported = call("GET", "/apiv1/me/certificates/" + cert + "/export", key);
    ASSERT_EQ(exported.status, 200) << exported.body;
    auto key_pem = base64_decode(std::string(exported.json().at("data").at("privkey").as_string()));
    ASSERT_TRUE(key_pem);
    EXPECT_TRUE(crypto::key_matches_certificate(*key_pem, chain));
    // The account is registered once and remembered; the challenge rows are gone.
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM acme_accounts WHERE kid LIKE 'https://127.0.0.1%'"),
              1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM acme_http_challenges"), 0);
    auto dump = schema_->dump_text({"certificates", "issue_history", "acme_accounts"});
    EXPECT_EQ(dump.find("PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(server_->log().find("PRIVATE KEY"), std::string::npos);
}

TEST_F(Acme, AFailedValidationEndsFailedWithTheCasWords) {
    // A webhook receiver hears each failure as certificate.issue_failed with the same words.
    webhook_sink rx(dir_.path() / "rx-root.pem");
    auto cfg = config_overrides();
    cfg["webhooks"] =
        json::object{{"ca_file", (dir_.path() / "rx-root.pem").string()}, {"poll_interval_ms", 50}};
    start(cfg);
    add_user("fail@example.com");
    auto key = key_for("fail@example.com", scopes);
    auto hooks = key_for("fail@example.com", {"webhooks:*[write]"});
    auto hook = call("POST", "/apiv1/me/webhooks", hooks,
                     R"({"url":")" + rx.url("/failed") + R"(","events":["certificate.issue_failed"]})");
    ASSERT_EQ(hook.status, 201) << hook.body;
    std::string const secret(hook.json().at("data").at("secret").as_string());
    auto acct = pebble_account(key);
    std::string const domain =
        "unreachable.certctrl.test";  // 127.0.0.2 in the test zone: nothing answers there
    auto created = call("POST", "/apiv1/me/certificates", key,
                        R"({"domain_name":")" + domain + R"(","acct_id":)" + std::to_string(acct) + "}");
    ASSERT_EQ(created.status, 200);
    auto const cert = std::to_string(id_of(created));
    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    ASSERT_EQ(issued.status, 200);
    auto row = wait_terminal(key, cert, issued.json().at("data").at("issue_history_id").as_int64());
    ASSERT_EQ(row["status"], "FAILED") << json::serialize(row);
    std::string const msg(row["error_message"].as_string());
    EXPECT_NE(msg.find("Validation of " + domain + " failed"), std::string::npos) << msg;
    EXPECT_NE(msg.find("127.0.0.2"), std::string::npos) << "the CA's detail names the address: " << msg;

    // A wildcard needs DNS-01: said plainly.
    auto wild =
        call("POST", "/apiv1/me/certificates", key,
             R"({"domain_name":"*.)" + fresh_domain() + R"(","acct_id":)" + std::to_string(acct) + "}");
    ASSERT_EQ(wild.status, 200);
    auto const wcert = std::to_string(id_of(wild));
    auto wissued = call("POST", "/apiv1/me/certificates/" + wcert + "/issues", key, "{}");
    auto wrow = wait_terminal(key, wcert, wissued.json().at("data").at("issue_history_id").as_int64());
    EXPECT_EQ(wrow["status"], "FAILED");
    EXPECT_NE(std::string(wrow["error_message"].as_string()).find("DNS-01"), std::string::npos)
        << json::serialize(wrow);

    auto const heard = rx.wait(2);
    ASSERT_EQ(heard.size(), 2u);
    std::map<std::string, json::object> by_cert;
    for (auto const& e : heard) {
        EXPECT_EQ(e.at("type"), "certificate.issue_failed");
        by_cert[std::to_string(e.at("data").at("certificate").at("id").as_int64())] =
            e.at("data").as_object();
    }
    EXPECT_EQ(by_cert[cert].at("error"), row["error_message"]);
    EXPECT_EQ(by_cert[cert].at("history_id"), row["id"]);
    EXPECT_EQ(by_cert[wcert].at("error"), wrow["error_message"]);
    EXPECT_EQ(rx.not_signed_by(secret), 0u);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(rx.events().size(), 2u) << "one event per failure";
}

// The worker's path: an ACME issuance and its renewal are announced as certificate.issued and .renewed with
// the serial the record then has.
TEST_F(Acme, AnIssuanceAndItsRenewalAreAnnouncedByWebhook) {
    webhook_sink rx(dir_.path() / "rx-root.pem");
    auto cfg = config_overrides();
    cfg["webhooks"] =
        json::object{{"ca_file", (dir_.path() / "rx-root.pem").string()}, {"poll_interval_ms", 50}};
    start(cfg);
    add_user("announce@example.com");
    auto key = key_for("announce@example.com", scopes);
    auto hooks = key_for("announce@example.com", {"webhooks:*[write]"});
    auto hook =
        call("POST", "/apiv1/me/webhooks", hooks,
             R"({"url":")" + rx.url("/acme") + R"(","events":["certificate.issued","certificate.renewed"]})");
    ASSERT_EQ(hook.status, 201) << hook.body;
    std::string const secret(hook.json().at("data").at("secret").as_string());
    auto issued = request_issues(key, pebble_account(key), 1);
    ASSERT_EQ(issued.size(), 1u);
    auto const& [cert, hid] = issued[0];
    ASSERT_EQ(wait_terminal(key, cert, hid)["status"], "SUCCESS");
    auto again = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    ASSERT_EQ(again.status, 200) << again.body;
    ASSERT_EQ(wait_terminal(key, cert, again.json().at("data").at("issue_history_id").as_int64())["status"],
              "SUCCESS");
    auto const heard = rx.wait(2);
    ASSERT_EQ(heard.size(), 2u);
    EXPECT_EQ(heard[0].at("type"), "certificate.issued");
    EXPECT_EQ(heard[0].at("data").at("history_id").as_int64(), hid);
    EXPECT_EQ(heard[1].at("type"), "certificate.renewed");
    auto const record = call("GET", "/apiv1/me/certificates/" + cert, key).json().at("data");
    EXPECT_EQ(heard[1].at("data").at("certificate").at("serial_number"), record.at("serial_number"));
    EXPECT_NE(heard[0].at("data").at("certificate").at("serial_number"), record.at("serial_number"));
    EXPECT_EQ(rx.not_signed_by(secret), 0u);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(rx.events().size(), 2u) << "one event each";
}

// The CLI against pebble: `certs issue --wait` ends non-zero with the CA's reason when validation fails, and
// zero with SUCCESS when it does not.
TEST_F(Acme, TheCliWaitsForAnIssuanceAndPrintsTheCasReasonWhenItFails) {
    start(config_overrides());
    add_user("cli@example.com");
    auto key = key_for("cli@example.com", scopes);
    auto acct = std::to_string(pebble_account(key));
    cli_runner cli(dir_.path());
    std::vector<std::string> const env{"CERTCTRL_URL=http://127.0.0.1:" + std::to_string(server_->port()),
                                       "CERTCTRL_API_KEY=" + key};
    auto create = [&](std::string const& name) {
        auto r =
            cli.run({"certs", "create", "domain_name=" + name, "acct_id=" + acct, "-o", "json"}, "", env);
        EXPECT_EQ(r.code, 0) << r.err;
        return std::to_string(json::parse(r.out).at("id").as_int64());
    };
    auto const bad = create("unreachable.certctrl.test");
    auto failed = cli.run({"certs", "issue", bad, "--wait"}, "", env);
    EXPECT_EQ(failed.code, 1) << failed.out << failed.err;
    EXPECT_NE(failed.out.find("FAILED"), std::string::npos) << failed.out;
    EXPECT_NE(failed.err.find("Validation of unreachable.certctrl.test failed"), std::string::npos)
        << failed.err;
    auto ok = cli.run({"certs", "issue", create(fresh_domain()), "--wait"}, "", env);
    EXPECT_EQ(ok.code, 0) << ok.err;
    EXPECT_NE(ok.out.find("SUCCESS"), std::string::npos) << ok.out;
    EXPECT_EQ(ok.err.find('\r'), std::string::npos) << "no progress when stderr is not a terminal";
    // On a terminal (script(1) gives it one) the status and the elapsed seconds are shown as it runs.
    auto tty_env = env;
    tty_env.push_back("CERTCTRL_CONFIG=" + (dir_.path() / "cli.json").string());
    tty_env.push_back("HOME=" + dir_.path().string());
    int const pid = spawn_process(
        {"/usr/bin/script", "-qfec",
         std::string(CERTCTRL_CLI_BINARY) + " certs issue " + create(fresh_domain()) + " --wait",
         "/dev/null"},
        tty_env, dir_.path() / "tty.out");
    EXPECT_EQ(wait_process(pid, std::chrono::seconds(90)), 0);
    std::ifstream in(dir_.path() / "tty.out");
    std::string const shown((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto const line = shown.find('\r');  // "\r<status>  <seconds> s", rewritten in place
    ASSERT_NE(line, std::string::npos) << shown;
    EXPECT_TRUE(shown.compare(line + 1, 7, "PENDING") == 0 ||
                shown.compare(line + 1, 10, "PROCESSING") == 0 || shown.compare(line + 1, 7, "SUCCESS") == 0)
        << shown;
    EXPECT_NE(shown.find(" s   "), std::string::npos) << shown;
    EXPECT_NE(shown.find("SUCCESS"), std::string::npos) << shown;
}

TEST_F(Acme, KillingTheServerMidIssuanceLosesNothing) {
    auto cfg = config_overrides(4);
    start(cfg);
    add_user("crash@example.com");
    auto key = key_for("crash@example.com", scopes);
    auto const issued = request_issues(key, pebble_account(key), 20);  // certificate id, history id
    ASSERT_EQ(issued.size(), 20u);
    // kill -9 while rows are being worked on.
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE status = 'PROCESSING'") == 0 &&
           std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto const processing =
        schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE status = 'PROCESSING'");
    auto const done_before =
        schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE status = 'SUCCESS'");
    EXPECT_GT(processing, 0);
    EXPECT_EQ(server_->stop(SIGKILL, std::chrono::seconds(5)), -SIGKILL);
    std::cout << "killed with " << processing << " PROCESSING and " << done_before << " SUCCESS of 20\n";

    // A new process takes the rows over once their leases expire, resuming stored orders.
    server_.reset();
    start(cfg);
    for (auto const& [cert, hid] : issued) {
        auto row = wait_terminal(key, cert, hid, std::chrono::seconds(120));
        EXPECT_EQ(row["status"], "SUCCESS") << cert << ": " << json::serialize(row);
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history"), 20)
        << "one row per certificate, no duplicates";
    EXPECT_EQ(schema_->query_int(
                  "SELECT COUNT(*) FROM certificates WHERE cert_pem LIKE '-----BEGIN CERTIFICATE-----%' "
                  "AND enc_privkey IS NOT NULL"),
              20);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_master_wrapped"), 20);
    // Each stored certificate matches the stored key: checked through export for one of them.
    schema_->exec("UPDATE certificates SET server_decrypt_export = 1");
    auto exported = call("GET", "/apiv1/me/certificates/" + issued.front().first + "/export", key);
    ASSERT_EQ(exported.status, 200) << exported.body;
    auto key_pem = base64_decode(std::string(exported.json().at("data").at("privkey").as_string()));
    ASSERT_TRUE(key_pem);
    EXPECT_TRUE(crypto::key_matches_certificate(
        *key_pem, std::string(exported.json().at("data").at("cert").as_string())));
}

// kill -9 while orders stand at the CA (finalize held by the CA): the new process resumes each stored order
// with its stored key instead of starting another, and every certificate is issued once.
TEST_F(Acme, AnOrderStoredBeforeAKillIsResumedNotReplaced) {
    std::string const origin = pebble_.directory_url.substr(0, pebble_.directory_url.find("/dir"));
    ca_proxy ca(dir_.path() / "proxy-root.pem", origin, pebble_.ca_file);
    auto cfg = config_overrides(4);
    cfg["issuance"].as_object()["acme_ca_file"] = trust_with(dir_.path() / "proxy-root.pem");
    start(cfg);
    add_user("resume@example.com");
    auto key = key_for("resume@example.com", scopes);
    auto const acct = acme_account(key, ca.url("/dir"));
    ca.hold("/finalize-order/");
    auto const issued = request_issues(key, acct, 4);
    ASSERT_EQ(issued.size(), 4u);
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (ca.held() == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GT(ca.held(), 0) << "an order reached finalize";
    // The order each row stood at when the server died (rows whose order was stored).
    std::map<std::int64_t, std::string> orders_at_kill;
    for (auto const& [cert, hid] : issued) {
        auto const list = call("GET", "/apiv1/me/certificates/" + cert + "/issues", key).json();
        for (auto const& row : list.at("data").as_array()) {
            if (row.at("id").as_int64() == hid && !row.at("acme_order_id").as_string().empty()) {
                orders_at_kill[hid] = std::string(row.at("acme_order_id").as_string());
            }
        }
    }
    ASSERT_FALSE(orders_at_kill.empty());
    EXPECT_EQ(server_->stop(SIGKILL, std::chrono::seconds(5)), -SIGKILL);
    std::cout << "killed with " << orders_at_kill.size() << " of 4 orders stored, " << ca.held()
              << " finalize held\n";
    ca.release();  // the held finalize reaches pebble after the kill, as a request in flight would

    server_.reset();
    start(cfg);
    for (auto const& [cert, hid] : issued) {
        auto row = wait_terminal(key, cert, hid, std::chrono::seconds(120));
        EXPECT_EQ(row["status"], "SUCCESS") << cert << ": " << json::serialize(row);
        if (orders_at_kill.contains(hid)) {
            EXPECT_EQ(std::string(row["acme_order_id"].as_string()), orders_at_kill[hid])
                << "the stored order was resumed, not replaced";
        }
    }
    EXPECT_NE(server_->log().find("resumed order"), std::string::npos) << "the new process says so";
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM issue_history"), 4) << "one row per certificate";
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates WHERE cert_pem LIKE '-----BEGIN "
                                 "CERTIFICATE-----%' AND enc_privkey IS NOT NULL"),
              4);
}

TEST_F(Acme, WildcardThroughDns01WithRfc2136UpdatesToARealDnsServer) {
    auto env = [](char const* n) { return std::string(std::getenv(n) ? std::getenv(n) : ""); };
    std::string const knot_port = env("CERTCTRL_TEST_KNOT_PORT");
    if (knot_port.empty()) {
        if (in_ci())
            FAIL() << "CERTCTRL_TEST_KNOT_* not set: knot is required under CI (run scripts/test.sh)";
        GTEST_SKIP() << "knot not running; run through scripts/test.sh";
    }
    start(config_overrides());
    add_user("dns@example.com");
    auto key = key_for("dns@example.com", {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]",
                                           "dns_providers:*[read,write]"});
    auto acct = pebble_account(key);
    auto provider = [&](std::string const& secret) {
        auto r =
            call("POST", "/apiv1/me/dns-providers", key,
                 R"({"name":"knot","kind":"rfc2136","server":"127.0.0.1","port":)" + knot_port +
                     R"(,"zone":"certctrl.test","tsig_key_name":")" + env("CERTCTRL_TEST_KNOT_TSIG_NAME") +
                     R"(","tsig_algorithm":"hmac-sha256","tsig_secret":")" + secret + R"("})");
        EXPECT_EQ(r.status, 201) << r.body;
        return id_of(r);
    };
    auto const good = provider(env("CERTCTRL_TEST_KNOT_TSIG_SECRET"));
    std::string const base = fresh_domain();
    auto created = call("POST", "/apiv1/me/certificates", key,
                        R"({"domain_name":")" + base + R"(","sans":["*.)" + base + R"("],"acct_id":)" +
                            std::to_string(acct) + R"(,"dns_provider_id":)" + std::to_string(good) + "}");
    ASSERT_EQ(created.status, 200) << created.body;
    auto const cert = std::to_string(id_of(created));
    auto const t0 = std::chrono::steady_clock::now();
    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    ASSERT_EQ(issued.status, 200);
    auto row = wait_terminal(key, cert, issued.json().at("data").at("issue_history_id").as_int64());
    ASSERT_EQ(row["status"], "SUCCESS") << json::serialize(row) << "\n" << server_->log();
    std::cout << "ACME DNS-01 issuance (apex + wildcard over RFC 2136) took "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
    auto result = call("GET", "/apiv1/me/certificates/" + cert + "/issue-result", key);
    std::string const chain(result.json().at("data").at("cert").as_string());
    auto const verified = openssl_verify(chain, pebble_root());
    EXPECT_NE(verified.find("leaf.pem: OK"), std::string::npos) << verified;
    // The TXT records were removed after validation.
    auto txt =
        dns::query_txt("127.0.0.1", static_cast<unsigned>(std::stoul(knot_port)), "_acme-challenge." + base);
    ASSERT_TRUE(txt) << txt.error().what;
    EXPECT_TRUE(txt->empty()) << txt->size() << " TXT record(s) left behind";

    // A wrong TSIG secret: the server's refusal is what the user reads.
    auto const bad = provider("c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1rZXk=");
    auto wrong = call("POST", "/apiv1/me/certificates", key,
                      R"({"domain_name":")" + fresh_domain() + R"(","acct_id":)" + std::to_string(acct) +
                          R"(,"dns_provider_id":)" + std::to_string(bad) + "}");
    auto const wcert = std::to_string(id_of(wrong));
    auto wissued = call("POST", "/apiv1/me/certificates/" + wcert + "/issues", key, "{}");
    auto wrow = wait_terminal(key, wcert, wissued.json().at("data").at("issue_history_id").as_int64());
    EXPECT_EQ(wrow["status"], "FAILED");
    EXPECT_NE(std::string(wrow["error_message"].as_string()).find("TSIG"), std::string::npos)
        << json::serialize(wrow);
}

// A DNS server that never answers (a UDP socket that takes every packet) holds two issuances in their DNS-01
// step. Logins must not wait behind them (blocking DNS calls have a pool of their own), and each step gives
// up after dns_step_timeout_seconds with a retryable error naming the server.
// DNS providers are user-supplied endpoints too: a webhook URL or an RFC 2136 server on an internal address
// (here the cloud metadata address) is refused by the egress policy, and the issuance fails saying so.
TEST_F(Acme, DnsProvidersOnInternalAddressesAreRefusedByTheEgressPolicy) {
    start(config_overrides(2));
    add_user("egress@example.com");
    auto key = key_for(
        "egress@example.com",
        {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]", "dns_providers:*[read,write]"});
    auto acct = pebble_account(key);
    auto hook = call(
        "POST", "/apiv1/me/dns-providers", key,
        R"({"name":"inside","kind":"webhook","url":"https://169.254.169.254/hook","hmac_secret":"0123456789abcdef0123"})");
    ASSERT_EQ(hook.status, 201) << hook.body;
    auto rfc = call(
        "POST", "/apiv1/me/dns-providers", key,
        R"({"name":"meta","kind":"rfc2136","server":"169.254.169.254","zone":"certctrl.test",)"
        R"("tsig_key_name":"k","tsig_algorithm":"hmac-sha256","tsig_secret":"c2VjcmV0LXNlY3JldC1zZWNyZXQ="})");
    ASSERT_EQ(rfc.status, 201) << rfc.body;
    for (auto provider : {id_of(hook), id_of(rfc)}) {
        std::string const base = fresh_domain();
        auto created =
            call("POST", "/apiv1/me/certificates", key,
                 R"({"domain_name":")" + base + R"(","sans":["*.)" + base + R"("],"acct_id":)" +
                     std::to_string(acct) + R"(,"dns_provider_id":)" + std::to_string(provider) + "}");
        ASSERT_EQ(created.status, 200) << created.body;
        auto const cert = std::to_string(id_of(created));
        auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
        ASSERT_EQ(issued.status, 200) << issued.body;
        auto row = wait_terminal(key, cert, issued.json().at("data").at("issue_history_id").as_int64(),
                                 std::chrono::seconds(60));
        ASSERT_FALSE(row.empty());
        EXPECT_EQ(row.at("status").as_string(), "FAILED");
        std::string const msg(row.at("error_message").as_string());
        EXPECT_NE(msg.find("egress policy"), std::string::npos) << msg;
        EXPECT_NE(msg.find("link-local"), std::string::npos) << msg;
    }
}

TEST_F(Acme, ADnsServerThatNeverAnswersStallsNoLoginAndTimesOut) {
    int const hole = ::socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(hole, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(hole, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(hole, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    std::string const hole_port = std::to_string(ntohs(addr.sin_port));

    auto cfg = config_overrides(2);
    cfg["issuance"].as_object()["dns_step_timeout_seconds"] = 4;
    start(cfg);
    add_user("stall@example.com");
    auto key = key_for(
        "stall@example.com",
        {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]", "dns_providers:*[read,write]"});
    auto acct = pebble_account(key);
    auto provider = call("POST", "/apiv1/me/dns-providers", key,
                         R"({"name":"silent","kind":"rfc2136","server":"127.0.0.1","port":)" + hole_port +
                             R"(,"zone":"certctrl.test","tsig_key_name":"k","tsig_algorithm":"hmac-sha256",)"
                             R"("tsig_secret":"c2VjcmV0LXNlY3JldC1zZWNyZXQ="})");
    ASSERT_EQ(provider.status, 201) << provider.body;
    std::vector<std::pair<std::string, std::int64_t>> rows;
    for (int i = 0; i < 2; ++i) {
        std::string const base = fresh_domain();
        auto created =
            call("POST", "/apiv1/me/certificates", key,
                 R"({"domain_name":")" + base + R"(","sans":["*.)" + base + R"("],"acct_id":)" +
                     std::to_string(acct) + R"(,"dns_provider_id":)" + std::to_string(id_of(provider)) + "}");
        ASSERT_EQ(created.status, 200) << created.body;
        auto const cert = std::to_string(id_of(created));
        auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
        ASSERT_EQ(issued.status, 200) << issued.body;
        rows.emplace_back(cert, issued.json().at("data").at("issue_history_id").as_int64());
    }
    // Both workers reach their DNS step (the order and authorizations come from pebble first).
    auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (schema_->query_int("SELECT COUNT(*) FROM issue_history WHERE status = 'PROCESSING'") < 2 &&
           std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // into the DNS update

    // Logins go through while both DNS calls hang (the CPU pool used to be shared: one ldns timeout each).
    for (int i = 0; i < 3; ++i) {
        auto const t0 = std::chrono::steady_clock::now();
        login("stall@example.com");
        auto const took = std::chrono::steady_clock::now() - t0;
        EXPECT_LT(took, std::chrono::seconds(3))
            << "login " << i << " took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms";
    }

    // Each DNS step gives up after its cap with a retryable error naming the server.
    for (auto const& [cert, id] : rows) {
        std::string message;
        auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (message.find("did not finish in time") == std::string::npos &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            auto const doc =
                call("GET", "/apiv1/me/certificates/" + cert + "/issues?offset=0&limit=10", key).json();
            for (auto const& row : doc.at("data").as_array()) {
                if (row.at("id").as_int64() == id && row.as_object().contains("error_message")) {
                    message = std::string(row.at("error_message").as_string());
                }
            }
        }
        EXPECT_NE(message.find("The DNS server 127.0.0.1 did not finish in time"), std::string::npos)
            << message;
        call("POST", "/apiv1/me/certificates/" + cert + "/issues/" + std::to_string(id) + "/cancel", key,
             "{}");
    }
    ::close(hole);
}

}  // namespace
}  // namespace certctrl::test
