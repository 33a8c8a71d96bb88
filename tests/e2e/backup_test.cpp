// Backup and restore as docs/operations.md tells it: a hot `mariadb-dump --single-transaction` of a live
// database, restored into an empty one, serves the same users, API keys, certificates and private keys to a
// server with the same master key; with another master key the server refuses to start.
#include "api_fixture.hpp"
#include "process.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"

namespace certctrl::test {
namespace {

namespace json = boost::json;

class Backup : public api_fixture {
  protected:
    // A mariadb client tool against `db`, the password in its environment (never in argv); its exit code.
    int tool(std::string const& program, config::database_config const& db, std::vector<std::string> args,
             std::filesystem::path const& out, std::filesystem::path const& in = "/dev/null") {
        std::vector<std::string> argv{program, "--no-defaults",         "-h", db.host,
                                      "-P",    std::to_string(db.port), "-u", db.user};
        argv.insert(argv.end(), args.begin(), args.end());
        int const pid = spawn_process(argv, {"MYSQL_PWD=" + db.password}, out, in);
        return wait_process(pid, std::chrono::seconds(120)).value_or(-1000);
    }
};

TEST_F(Backup, AHotDumpRestoredServesTheSameKeysWithTheSameMasterKeyAndRefusesAnother) {
    start();
    add_user("backup@example.com");
    auto key = key_for("backup@example.com", {"cas:*[read,write]", "acme_accounts:*[read,write]",
                                              "certificates:*[read,write,issue,export]"});
    auto const acct = self_ca_account(key, "Backup root");
    ASSERT_NE(acct, 0);
    auto cert = call("POST", "/apiv1/me/certificates", key,
                     R"({"domain_name":"backup.example.com","server_decrypt_export":true,"acct_id":)" +
                         std::to_string(acct) + "}");
    ASSERT_EQ(cert.status, 200) << cert.body;
    auto const path = "/apiv1/me/certificates/" + std::to_string(id_of(cert));
    ASSERT_EQ(call("POST", path + "/issues", key, "{}").status, 200);
    auto before = call("GET", path + "/export", key);
    ASSERT_EQ(before.status, 200) << before.body;
    json::object const was = before.json().at("data").as_object();

    // The dump is taken while the server runs.
    auto const dump = dir_.path() / "dump.sql";
    ASSERT_EQ(tool("/usr/bin/mariadb-dump", schema_->db(),
                   {"--single-transaction", "--routines", schema_->name()}, dump),
              0)
        << read_file(dump).substr(0, 2000);
    ASSERT_NE(read_file(dump).find("CREATE TABLE `certificates`"), std::string::npos);
    server_->stop(SIGTERM);
    server_.reset();

    test_schema restored;  // an empty database
    auto const loaded = dir_.path() / "load.log";
    ASSERT_EQ(tool("/usr/bin/mariadb", restored.db(), {restored.name()}, loaded, dump), 0)
        << read_file(loaded);

    auto cfg = make_config(restored.db(), {{"database", {{"migrate_on_start", false}}}});
    server_ = std::make_unique<server_process>(cfg, restored.db().password);
    auto ready = http_get(server_->port(), "/ready");
    EXPECT_EQ(ready.status, 200) << ready.body << "\n" << server_->log();
    auto after = call("GET", path + "/export", key);  // the same API key
    ASSERT_EQ(after.status, 200) << after.body;
    json::object const is = after.json().at("data").as_object();
    EXPECT_EQ(is.at("privkey"), was.at("privkey"));
    EXPECT_EQ(is.at("leaf_pem"), was.at("leaf_pem"));
    auto const session = login("backup@example.com");  // the same password
    EXPECT_EQ(call("GET", path, session).status, 200);
    server_->stop(SIGTERM);
    server_.reset();

    // Another master key: the server refuses to start (master_key_checks) instead of failing each sealed
    // secret later.
    cfg["crypto"] = json::object{{"master_key_env", "CERTCTRL_TEST_OTHER_MASTER_KEY"}};
    std::string const other = hex_encode(crypto::random_bytes(32));
    try {
        server_ = std::make_unique<server_process>(
            cfg, restored.db().password, std::vector<std::string>{"CERTCTRL_TEST_OTHER_MASTER_KEY=" + other});
        ADD_FAILURE() << "started with another master key";
    } catch (std::runtime_error const& e) {
        std::string const msg = e.what();
        EXPECT_NE(msg.find("exited with 2"), std::string::npos) << msg;
        EXPECT_NE(msg.find("is not the key this database's secrets were sealed with"), std::string::npos)
            << msg;
        EXPECT_EQ(msg.find(other), std::string::npos) << "the key is not logged";
    }
    // A database whose secrets were sealed under a newer key version than the config's current one.
    restored.exec("INSERT INTO master_key_checks (version, check_blob, created_at) VALUES (5, 'x', 0)");
    cfg["crypto"] = json::object{{"master_key_env", "CERTCTRL_TEST_MASTER_KEY"}};
    try {
        server_ = std::make_unique<server_process>(cfg, restored.db().password);
        ADD_FAILURE() << "started without the newer key";
    } catch (std::runtime_error const& e) {
        std::string const msg = e.what();
        EXPECT_NE(msg.find("exited with 2"), std::string::npos) << msg;
        EXPECT_NE(msg.find("sealed under master key version 5"), std::string::npos) << msg;
    }
}

}  // namespace
}  // namespace certctrl::test
