// End to end: the egress policy. A user's ACME directory that leads to an internal address is refused
// before any connection is made, with a clear message, and never reaches the listener behind it.
#include "api_fixture.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;

class Egress : public api_fixture {
  protected:
    // The terminal row's error_message of the certificate's first issue (waits up to 30 s).
    std::string failure_of(std::string const& key, std::int64_t acct) {
        auto created = call("POST", "/apiv1/me/certificates", key,
                            R"({"domain_name":"e)" + std::to_string(acct) + R"(.example.com","acct_id":)" +
                                std::to_string(acct) + "}");
        EXPECT_EQ(created.status, 200) << created.body;
        auto const c = std::to_string(id_of(created));
        EXPECT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}").status, 200);
        auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < until) {
            if (schema_->query_int(
                    "SELECT COUNT(*) FROM issue_history WHERE status = 'FAILED' AND cert_id = " + c) == 1) {
                auto const doc = call("GET", "/apiv1/me/certificates/" + c + "/issues", key).json();
                return std::string(doc.at("data").at(0).at("error_message").as_string());
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        ADD_FAILURE() << "no FAILED row for certificate " << c;
        return {};
    }
};

std::vector<std::string> const scopes = {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]"};

TEST_F(Egress, AnAcmeDirectoryOnAnInternalAddressIsRefusedBeforeConnecting) {
    asio::io_context io;
    asio::ip::tcp::acceptor listener(io, {asio::ip::make_address("127.0.0.1"), 0});
    listener.non_blocking(true);
    std::string const port = std::to_string(listener.local_endpoint().port());
    start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
                       {"issuance", {{"poll_interval_ms", 100}}},
                       {"egress", {{"allow", json::array{}}}}});
    add_user("ssrf@example.com");
    auto key = key_for("ssrf@example.com", scopes);
    // "localhost" too where this machine resolves it (a minimal root may have no /etc/hosts entry).
    std::vector<std::string> hosts{"127.0.0.1"};
    {
        boost::system::error_code rec;
        asio::ip::tcp::resolver resolver(io);
        auto found = resolver.resolve("localhost", port, rec);
        if (!rec && !found.empty()) {
            hosts.emplace_back("localhost");
        }
    }
    for (std::string const& host : hosts) {
        auto acct = call("POST", "/apiv1/me/acme-accounts", key,
                         R"({"name":"inside","provider":"custom","directory_url":"https://)" + host + ":" +
                             port + R"(/dir"})");
        ASSERT_EQ(acct.status, 200) << acct.body;
        std::string const msg = failure_of(key, id_of(acct));
        EXPECT_NE(msg.find("egress policy"), std::string::npos) << msg;
        EXPECT_NE(msg.find("loopback"), std::string::npos) << msg;
    }
    // The metadata address too (link-local), and nothing was retried.
    auto meta =
        call("POST", "/apiv1/me/acme-accounts", key,
             R"({"name":"meta","provider":"custom","directory_url":"https://169.254.169.254/latest"})");
    ASSERT_EQ(meta.status, 200) << meta.body;
    std::string const msg = failure_of(key, id_of(meta));
    EXPECT_NE(msg.find("link-local"), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("Gave up", 0), std::string::npos) << "a refusal is final, not retried: " << msg;
    boost::system::error_code ec;
    asio::ip::tcp::socket peer(io);
    listener.accept(peer, ec);
    EXPECT_EQ(ec, asio::error::would_block) << "the server connected to the internal listener";
}

TEST_F(Egress, TheServerRefusesABadAllowList) {
    boost::json::object cfg =
        make_config(schema_->db(), {{"egress", {{"allow", json::array{"10.0.0.0/99"}}}}});
    std::ofstream(dir_.path() / "bad.json") << json::serialize(cfg);
    auto r = run_server_command({"serve", "--config", (dir_.path() / "bad.json").string()},
                                {"CERTCTRL_TEST_SERVER_DB_PASSWORD=" + schema_->db().password,
                                 "CERTCTRL_TEST_MASTER_KEY=" + test_master_key_hex()},
                                std::chrono::seconds(20));
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("egress.allow"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace certctrl::test
