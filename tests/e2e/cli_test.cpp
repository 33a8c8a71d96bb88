// End to end: the real `certctrl` client against the real server and MariaDB: login and profiles, tables and
// JSON, exit codes, issue --wait and export --out verified with openssl.
#include "api_fixture.hpp"
#include "cli_runner.hpp"
#include "https_stub.hpp"
#include "openssl_cli.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/x509.hpp"

#include <sys/stat.h>

namespace certctrl::test {
namespace {

namespace json = boost::json;

std::vector<std::string> const scopes = {"acme_accounts:*[read,write]",
                                         "cas:*[read,write]",
                                         "certificates:*[read,write,issue,export,assign]",
                                         "webhooks:*[read,write]",
                                         "apikeys:*[read,write]",
                                         "audit:*[read]",
                                         "devices:*[read,write]",
                                         "dns_providers:*[read,write]"};

class Cli : public api_fixture {
  protected:
    void SetUp() override {
        api_fixture::SetUp();
        cli_ = std::make_unique<cli_runner>(dir_.path());
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
    cli_result cli(std::vector<std::string> const& args, std::string const& in = "") {
        return cli_->run(args, in);
    }
    // `-o json` output of a command that must succeed.
    json::value cli_json(std::vector<std::string> args) {
        args.push_back("-o");
        args.push_back("json");
        auto r = cli(args);
        EXPECT_EQ(r.code, 0) << r.err;
        boost::system::error_code ec;
        auto v = json::parse(r.out, ec);
        EXPECT_FALSE(ec) << r.out;
        return v;
    }
    static std::string text(std::string const& path) {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    std::unique_ptr<cli_runner> cli_;
};

TEST_F(Cli, LoginStoresAPrivateProfileAndEveryFailureHasItsExitCode) {
    start();
    add_user("cli@example.com");
    auto key = key_for("cli@example.com", scopes);

    // Without a profile there is no server to talk to: usage.
    EXPECT_EQ(cli({"certs", "ls"}).code, 2);
    auto bad_login = cli(
        {"login", "--url", url(), "--api-key", "ak_" + std::string(32, '0') + "." + std::string(36, 'x')});
    EXPECT_EQ(bad_login.code, 3) << bad_login.err;
    EXPECT_FALSE(std::filesystem::exists(cli_->config_file())) << "a refused credential is not stored";
    auto login = cli({"login", "--url", url(), "--api-key", key});
    ASSERT_EQ(login.code, 0) << login.err;
    struct stat st {};
    ASSERT_EQ(::stat(cli_->config_file().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_NE(text(cli_->config_file()).find(url()), std::string::npos);

    // Tables for people, JSON for scripts.
    auto cas = cli({"cas", "create", "common_name=CLI root", "valid_days=365"});
    ASSERT_EQ(cas.code, 0) << cas.err;
    auto accounts = cli_json({"accounts", "ls"});
    EXPECT_TRUE(accounts.as_array().empty());
    auto ca_list = cli({"cas", "ls"});
    ASSERT_EQ(ca_list.code, 0) << ca_list.err;
    EXPECT_EQ(ca_list.out.rfind("ID", 0), 0u) << ca_list.out;
    EXPECT_NE(ca_list.out.find("CLI root"), std::string::npos) << ca_list.out;

    // Exit codes: not found 4, refused 8 (with the server's words), usage 2, conflict 5, network 7, auth 3.
    auto missing = cli({"certs", "show", "999999"});
    EXPECT_EQ(missing.code, 4);
    EXPECT_NE(missing.err.find("(error 4001)"), std::string::npos) << missing.err;
    auto invalid = cli({"certs", "create", "domain_name=not a name", "acct_id=1"});
    EXPECT_EQ(invalid.code, 8) << invalid.err;
    EXPECT_NE(invalid.err.find("field"), std::string::npos) << invalid.err;
    EXPECT_EQ(cli({"certs", "show"}).code, 2);
    EXPECT_EQ(cli({"certs", "frobnicate"}).code, 2);
    EXPECT_EQ(cli({"nothing"}).code, 2);
    EXPECT_EQ(cli({"certs", "ls", "--bogus"}).code, 2);
    auto hook = cli_json({"webhooks", "create", "url=https://hooks.example.com/x", R"(events=["*"])"});
    auto const hook_id = std::to_string(hook.at("id").as_int64());
    EXPECT_TRUE(hook.at("secret").as_string().starts_with("whsec_"));
    EXPECT_EQ(cli({"webhooks", "update", hook_id, "enabled=false"}).code, 0);
    auto disabled_ping = cli({"webhooks", "ping", hook_id});
    EXPECT_EQ(disabled_ping.code, 5) << disabled_ping.err;
    auto unreachable = cli({"certs", "ls", "--url", "http://127.0.0.1:" + std::to_string(free_port())});
    EXPECT_EQ(unreachable.code, 7) << unreachable.err;
    EXPECT_NE(unreachable.err.find("cannot reach"), std::string::npos);
    auto env_key = cli_->run({"certs", "ls"}, "",
                             {"CERTCTRL_API_KEY=ak_" + std::string(32, '1') + "." + std::string(36, 'y')});
    EXPECT_EQ(env_key.code, 3) << "the environment wins over the profile: " << env_key.err;

    // Help and completion.
    auto help = cli({"--help"});
    EXPECT_EQ(help.code, 0);
    EXPECT_NE(help.out.find("Exit codes"), std::string::npos);
    EXPECT_EQ(cli({"certs", "issue", "--help"}).code, 0);
    auto completion = cli({"completion", "bash"});
    EXPECT_NE(completion.out.find("complete -F _certctrl certctrl"), std::string::npos);
    EXPECT_NE(completion.out.find("certs) COMPREPLY"), std::string::npos);
    auto version = cli({"--version"});
    EXPECT_EQ(version.out.rfind("certctrl ", 0), 0u) << version.out;
    EXPECT_NE(version.out.find("(" + source_commit() + ")"), std::string::npos) << version.out;

    // Logout forgets the credential.
    EXPECT_EQ(cli({"logout"}).code, 0);
    EXPECT_EQ(cli({"certs", "ls"}).code, 2);
}

TEST_F(Cli, IssueWaitsAndExportWritesFilesOpensslAccepts) {
    start();
    add_user("issue@example.com");
    auto key = key_for("issue@example.com", scopes);
    ASSERT_EQ(cli({"login", "--url", url(), "--api-key", key}).code, 0);
    auto ca = cli_json({"cas", "create", "common_name=Export root", "valid_days=365"});
    std::string const root(ca.at("ca_certificate_pem").as_string());
    auto acct = cli_json({"accounts", "create", "name=self", "provider=SELF_CA",
                          "ca_id=" + std::to_string(ca.at("id").as_int64())});
    auto cert =
        cli_json({"certs", "create", "domain_name=cli.example.com",
                  R"(sans=["cli.example.com","www.cli.example.com"])",
                  "acct_id=" + std::to_string(acct.at("id").as_int64()), "server_decrypt_export=true"});
    auto const id = std::to_string(cert.at("id").as_int64());

    auto issued = cli({"certs", "issue", id, "--wait"});
    ASSERT_EQ(issued.code, 0) << issued.err;
    EXPECT_NE(issued.out.find("SUCCESS"), std::string::npos) << issued.out;
    EXPECT_EQ(issued.err, "") << "quiet when stderr is not a terminal";
    auto history = cli({"certs", "history", id});
    EXPECT_NE(history.out.find("SUCCESS"), std::string::npos) << history.out;

    auto const out = dir_.path() / "deploy";
    auto exported = cli({"certs", "export", id, "--out", out.string()});
    ASSERT_EQ(exported.code, 0) << exported.err;
    for (auto const* f : {"cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"}) {
        EXPECT_TRUE(std::filesystem::exists(out / f)) << f;
    }
    struct stat st {};
    ASSERT_EQ(::stat((out / "privkey.pem").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(openssl_verify(text((out / "fullchain.pem").string()), root).find("OK"),
              openssl_verify(text((out / "fullchain.pem").string()), root).size() - 3)
        << openssl_verify(text((out / "fullchain.pem").string()), root);
    EXPECT_TRUE(crypto::key_matches_certificate(text((out / "privkey.pem").string()),
                                                text((out / "cert.pem").string())));
    EXPECT_EQ(text((out / "cert.pem").string()) + text((out / "chain.pem").string()),
              text((out / "fullchain.pem").string()));
    EXPECT_FALSE(std::filesystem::exists(out / ".privkey.pem.tmp"));
    // Without --out the key is not printed to a terminal by accident.
    EXPECT_EQ(cli({"certs", "export", id}).code, 2);

    // Devices: one registered by the agent path, then listed, given the certificate, relieved of it, revoked.
    auto device = call("POST", "/apiv1/me/devices", key,
                       R"({"device_public_id":"5e0f4a52-3c1e-4b7a-9f0e-2a4b6c8d0e2f","dev_pk":")" +
                           base64_encode(std::string(32, 'k')) + R"("})");
    ASSERT_EQ(device.status, 201) << device.body;
    auto const d = std::to_string(device.json().at("data").at("device").at("id").as_int64());
    auto devices = cli({"devices", "ls"});
    EXPECT_NE(devices.out.find("ACTIVE"), std::string::npos) << devices.out;
    auto assigned = cli({"devices", "assign", d, id});
    EXPECT_EQ(assigned.code, 0) << assigned.err;
    EXPECT_EQ(call("GET", "/apiv1/me/devices/" + d + "/certificates/" + id, key).status, 200);
    EXPECT_EQ(cli({"devices", "unassign", d, id}).code, 0);
    EXPECT_EQ(call("GET", "/apiv1/me/devices/" + d + "/certificates/" + id, key).status, 404);
    auto revoked = cli({"devices", "revoke", d});
    EXPECT_EQ(revoked.code, 0) << revoked.err;
    EXPECT_EQ(cli_json({"devices", "show", d}).at("status"), "REVOKED");
}

// A session's writes carry the server's origin, as its dashboard's do: the URL must be server.public_url.
TEST_F(Cli, ASessionLoginWorksForReadsAndWrites) {
    auto const port = free_port();
    start(json::object{{"server",
                        {{"listen_address", "127.0.0.1"},
                         {"port", port},
                         {"threads", 2},
                         {"public_url", "http://127.0.0.1:" + std::to_string(port)}}}});
    add_user("session@example.com");
    auto r = cli({"login", "--url", url(), "--email", "session@example.com", "--profile", "ops"},
                 "correct-horse-battery\n");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(text(cli_->config_file()).find("\"cookie\""), std::string::npos);
    auto created = cli({"cas", "create", "common_name=Session root", "valid_days=30", "--profile", "ops"});
    EXPECT_EQ(created.code, 0) << created.err;
    EXPECT_EQ(cli({"cas", "ls", "--profile", "ops"}).code, 0);
    auto wrong = cli({"login", "--url", url(), "--email", "session@example.com"}, "wrong password\n");
    EXPECT_EQ(wrong.code, 3) << wrong.err;
}

// The commands of every group against the real server: certs update/renew/rm, dns-providers, apikeys (a new
// key's token works within its scope, and not after rm), audit, webhooks rotate-secret/deliveries/rm; the
// profile named by --profile is the one used, CERTCTRL_URL wins over a profile's URL, a 5xx is exit 6, and
// the completion script is valid bash.
TEST_F(Cli, EveryGroupsCommandsProfilesTheEnvironmentAndAServerError) {
    start();
    add_user("alice@example.com");
    add_user("bob@example.com");
    auto alice = key_for("alice@example.com", scopes);
    auto bob = key_for("bob@example.com", scopes);
    ASSERT_EQ(cli({"login", "--url", url(), "--api-key", alice, "--profile", "alice"}).code, 0);
    ASSERT_EQ(cli({"login", "--url", url(), "--api-key", bob, "--profile", "bob"}).code, 0);  // now current

    auto ca = cli_json({"cas", "create", "common_name=Bob root", "valid_days=365"});
    EXPECT_EQ(cli_json({"cas", "ls"}).as_array().size(), 1u);
    EXPECT_EQ(cli_json({"cas", "ls", "--profile", "alice"}).as_array().size(), 0u) << "alice's view";
    auto acct = cli_json({"accounts", "create", "name=self", "provider=SELF_CA",
                          "ca_id=" + std::to_string(ca.at("id").as_int64())});
    auto cert = cli_json({"certs", "create", "domain_name=every.example.com",
                          "acct_id=" + std::to_string(acct.at("id").as_int64())});
    auto const id = std::to_string(cert.at("id").as_int64());
    auto updated = cli_json({"certs", "update", id, "auto_renew=false"});
    EXPECT_EQ(updated.at("auto_renew"), false) << json::serialize(updated);
    EXPECT_EQ(cli({"certs", "issue", id}).code, 0);
    auto renewed = cli({"certs", "renew", id, "--wait"});
    EXPECT_EQ(renewed.code, 0) << renewed.err;
    EXPECT_NE(renewed.out.find("SUCCESS"), std::string::npos) << renewed.out;
    auto history = cli_json({"certs", "history", id});
    ASSERT_EQ(history.as_array().size(), 2u) << json::serialize(history);
    for (auto const& row : history.as_array()) {
        EXPECT_EQ(row.at("status"), "SUCCESS");
    }
    EXPECT_EQ(cli({"certs", "rm", id}).code, 0);
    EXPECT_EQ(cli({"certs", "show", id}).code, 4);

    // DNS providers: the credential is stored, never shown back.
    auto dns =
        cli_json({"dns-providers", "create", "name=hook", "kind=webhook",
                  "url=https://dns-hook.example.com/present", "hmac_secret=dns-hook-secret-0123456789"});
    auto const dns_id = std::to_string(dns.at("id").as_int64());
    auto dns_list = cli({"dns-providers", "ls"});
    EXPECT_NE(dns_list.out.find("webhook"), std::string::npos) << dns_list.out;
    auto dns_show = cli({"dns-providers", "show", dns_id, "-o", "json"});
    EXPECT_EQ(dns_show.out.find("dns-hook-secret"), std::string::npos) << dns_show.out;
    EXPECT_EQ(cli({"dns-providers", "rm", dns_id}).code, 0);
    EXPECT_EQ(cli({"dns-providers", "show", dns_id}).code, 4);

    // API keys: a read-only key reads and cannot write; removed, it no longer works.
    auto made = cli_json({"apikeys", "create", "name=ci", "--scope", "cas:*[read]"});
    std::string const token(made.at("token").as_string());
    auto const key_id = std::to_string(made.at("id").as_int64());
    EXPECT_EQ(cli_->run({"cas", "ls"}, "", {"CERTCTRL_API_KEY=" + token}).code, 0);
    EXPECT_EQ(
        cli_->run({"cas", "create", "common_name=No", "valid_days=1"}, "", {"CERTCTRL_API_KEY=" + token})
            .code,
        3);
    auto keys = cli({"apikeys", "ls"});
    EXPECT_NE(keys.out.find("ci"), std::string::npos) << keys.out;
    EXPECT_EQ(cli({"apikeys", "rm", key_id}).code, 0);
    EXPECT_EQ(cli_->run({"cas", "ls"}, "", {"CERTCTRL_API_KEY=" + token}).code, 3);

    // Webhooks: rotate, the delivery log, rm.
    auto hook = cli_json({"webhooks", "create", "url=https://hooks.example.com/x", R"(events=["*"])"});
    auto const hook_id = std::to_string(hook.at("id").as_int64());
    auto rotated = cli_json({"webhooks", "rotate-secret", hook_id, "overlap_seconds=60"});
    EXPECT_NE(rotated.at("secret"), hook.at("secret"));
    EXPECT_EQ(cli({"webhooks", "deliveries", hook_id}).code, 0);
    EXPECT_EQ(cli({"webhooks", "rm", hook_id}).code, 0);

    // The audit log holds what was done above.
    auto audit = cli({"audit", "ls", "--limit", "100"});
    ASSERT_EQ(audit.code, 0) << audit.err;
    EXPECT_NE(audit.out.find("apikey.create"), std::string::npos) << audit.out;
    EXPECT_NE(audit.out.find("apikey.delete"), std::string::npos) << audit.out;

    // CERTCTRL_URL wins over the profile's URL: nothing listens there.
    auto elsewhere =
        cli_->run({"cas", "ls"}, "", {"CERTCTRL_URL=http://127.0.0.1:" + std::to_string(free_port())});
    EXPECT_EQ(elsewhere.code, 7) << elsewhere.err;

    // A server error is exit 6, with the server's words.
    https_stub broken(dir_.path() / "broken-root.pem", [](https_stub::request const&) {
        https_stub::response res{boost::beast::http::status::internal_server_error, 11};
        res.set(boost::beast::http::field::content_type, "application/json");
        res.body() = R"({"success":false,"error":{"code":5000,"what":"Something broke"}})";
        return res;
    });
    auto five =
        cli({"cas", "ls", "--url", broken.url(""), "--ca-file", (dir_.path() / "broken-root.pem").string()});
    EXPECT_EQ(five.code, 6) << five.err;
    EXPECT_NE(five.err.find("Something broke"), std::string::npos) << five.err;

    // Help of every command, and a completion script bash accepts.
    for (auto const& args : std::vector<std::vector<std::string>>{{"version", "--help"},
                                                                  {"completion", "--help"},
                                                                  {"apikeys", "create", "--help"},
                                                                  {"dns-providers", "--help"}}) {
        auto h = cli(args);
        EXPECT_EQ(h.code, 0) << args[0];
        EXPECT_NE(h.out.find("Usage: certctrl"), std::string::npos) << args[0] << ": " << h.out;
    }
    auto completion = cli({"completion", "bash"});
    std::ofstream(dir_.path() / "completion.bash") << completion.out;
    int const pid = spawn_process({"/bin/bash", "-n", (dir_.path() / "completion.bash").string()}, {},
                                  dir_.path() / "bash-n.log");
    EXPECT_EQ(wait_process(pid, std::chrono::seconds(10)), 0) << text((dir_.path() / "bash-n.log").string());
}

}  // namespace
}  // namespace certctrl::test
