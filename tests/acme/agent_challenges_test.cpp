// End to end against pebble (and knot): the ACME challenges of agent contract 7 that need neither port 80 of
// every name on this server nor DNS credentials from the user.
// - HTTP-01 served by an agent: the worker sends acme.http01.start on the device's feed (here over the
//   WebSocket, the agent's default), waits until the agent received it, asks the CA, then sends .stop; the
//   agent here is a client written from the contract that serves the token on pebble's HTTP-01 port.
// - An agent that never picks the challenge up fails the attempt with a message saying so.
// - DNS-01 through CNAME delegation: the user's _acme-challenge CNAME points into the operator's zone, where
//   the server publishes the TXT records over RFC 2136 (knot).
#include "acme_fixture.hpp"
#include "openssl_cli.hpp"
#include "ws_client.hpp"

#include "certctrl/crypto/sodium.hpp"
#include "certctrl/dns/rfc2136.hpp"

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>

namespace certctrl::test {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;
namespace bh = boost::beast::http;

// A listener on 127.0.0.1:<port> in its own thread: each accepted connection is handed to `serve`, one after
// another, until the listener goes away.
class loopback_listener {
  public:
    loopback_listener(unsigned port, std::function<void(asio::ip::tcp::socket&)> serve) : acceptor_(ioc_) {
        asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
        acceptor_.open(ep.protocol());
        acceptor_.set_option(asio::socket_base::reuse_address(true));
        acceptor_.bind(ep);
        acceptor_.listen();
        thread_ = std::thread([this, serve = std::move(serve)] {
            while (!stop_) {
                asio::ip::tcp::socket s(ioc_);
                boost::system::error_code ec;
                acceptor_.accept(s, ec);
                if (ec || stop_) {
                    break;
                }
                serve(s);
            }
        });
    }
    ~loopback_listener() {
        stop_ = true;
        boost::system::error_code ec;
        asio::ip::tcp::socket poke(ioc_);
        poke.connect(acceptor_.local_endpoint(), ec);  // wakes the blocking accept
        thread_.join();
    }

  private:
    asio::io_context ioc_;
    asio::ip::tcp::acceptor acceptor_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
};

// What an agent serves for acme.http01.start: /.well-known/acme-challenge/<token>.
class token_server {
  public:
    explicit token_server(unsigned port) : listener_(port, [this](asio::ip::tcp::socket& s) { answer(s); }) {}
    void add(std::string token, std::string ka) {
        std::lock_guard lock(mu_);
        tokens_[std::move(token)] = std::move(ka);
    }
    int served() {
        std::lock_guard lock(mu_);
        return served_;
    }

  private:
    void answer(asio::ip::tcp::socket& s) {
        boost::system::error_code ec;
        boost::beast::flat_buffer buf;
        bh::request<bh::string_body> req;
        bh::read(s, buf, req, ec);
        if (ec) {
            return;
        }
        std::string const prefix = "/.well-known/acme-challenge/";
        std::string const target(req.target());
        bh::response<bh::string_body> res{bh::status::not_found, req.version()};
        {
            std::lock_guard lock(mu_);
            if (target.rfind(prefix, 0) == 0 && tokens_.contains(target.substr(prefix.size()))) {
                res.result(bh::status::ok);
                res.body() = tokens_[target.substr(prefix.size())];
                ++served_;
            }
        }
        res.prepare_payload();
        bh::write(s, res, ec);
    }

    std::mutex mu_;
    std::map<std::string, std::string> tokens_;
    int served_ = 0;
    loopback_listener listener_;  // last: it stops (joins) before the state above goes away
};

// What an agent serves for acme.tlsalpn01.start: TLS with the server-made validation certificate, for ALPN
// "acme-tls/1" only (RFC 8737). OpenSSL directly.
class alpn_server {
  public:
    alpn_server(unsigned port, std::string const& cert_pem, std::string const& key_pem)
        : ctx_(SSL_CTX_new(TLS_server_method())) {
        BIO* cb = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
        X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
        BIO* kb = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
        EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
        loaded_ = cert != nullptr && key != nullptr && SSL_CTX_use_certificate(ctx_, cert) == 1 &&
                  SSL_CTX_use_PrivateKey(ctx_, key) == 1;
        X509_free(cert);
        EVP_PKEY_free(key);
        BIO_free(cb);
        BIO_free(kb);
        SSL_CTX_set_alpn_select_cb(
            ctx_,
            [](SSL*, unsigned char const** out, unsigned char* outlen, unsigned char const* in,
               unsigned int inlen, void* self) -> int {
                static unsigned char const want[] = {10, 'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1'};
                if (SSL_select_next_proto(const_cast<unsigned char**>(out), outlen, want, sizeof want, in,
                                          inlen) != OPENSSL_NPN_NEGOTIATED) {
                    return SSL_TLSEXT_ERR_ALERT_FATAL;
                }
                ++static_cast<alpn_server*>(self)->handshakes_;
                return SSL_TLSEXT_ERR_OK;
            },
            this);
        listener_.emplace(port, [this](asio::ip::tcp::socket& s) {
            SSL* ssl = SSL_new(ctx_);
            SSL_set_fd(ssl, s.native_handle());
            if (SSL_accept(ssl) == 1) {
                SSL_shutdown(ssl);
            }
            SSL_free(ssl);
        });
    }
    ~alpn_server() {
        listener_.reset();  // stopped before the context goes
        SSL_CTX_free(ctx_);
    }
    bool loaded() const { return loaded_; }
    int handshakes() const { return handshakes_; }

  private:
    SSL_CTX* ctx_ = nullptr;
    bool loaded_ = false;
    std::atomic<int> handshakes_{0};
    std::optional<loopback_listener> listener_;
};

class AgentChallenges : public acme_fixture {
  protected:
    json::object config(json::object issuance_extra) {
        auto c = config_overrides();
        auto& iss = c["issuance"].as_object();
        iss.erase("http01_port");  // the server listens for nothing: the agents (or DNS) answer
        iss["max_attempts"] = 1;
        for (auto const& kv : issuance_extra) {
            iss[kv.key()] = kv.value();
        }
        return c;
    }

    // A device registered with a key of its own: its id and access token.
    std::pair<std::int64_t, std::string> device(std::string const& key, std::string const& public_id) {
        auto [pk, sk] = crypto::x25519_keypair();
        (void)sk;
        auto r =
            call("POST", "/apiv1/me/devices", key,
                 R"({"device_public_id":")" + public_id + R"(","dev_pk":")" + base64_encode(pk) + R"("})");
        EXPECT_EQ(r.status, 201) << r.body;
        auto const d = r.json().at("data");
        return {d.at("device").at("id").as_int64(),
                std::string(d.at("session").at("access_token").as_string())};
    }

    std::string agent_cert(std::string const& key, std::int64_t acct, std::string const& domain,
                           std::int64_t device_id) {
        auto created = call("POST", "/apiv1/me/certificates", key,
                            R"({"domain_name":")" + domain + R"(","acct_id":)" + std::to_string(acct) +
                                R"(,"challenge":"http-01-agent"})");
        EXPECT_EQ(created.status, 200) << created.body;
        EXPECT_EQ(created.json().at("data").at("challenge"), "http-01-agent");
        std::string const cert = std::to_string(id_of(created));
        auto assigned = call("POST", "/apiv1/me/devices/" + std::to_string(device_id) + "/certificates", key,
                             R"({"cert_id":)" + cert + "}");
        EXPECT_TRUE(assigned.status == 200 || assigned.status == 202) << assigned.body;
        return cert;
    }
};

std::vector<std::string> const scopes = {"acme_accounts:*[read,write]", "certificates:*[read,write,issue]",
                                         "devices:*[read,write]", "ForDeviceAuthenticate:*[authenticate]"};

TEST_F(AgentChallenges, AnAgentOnItsWebSocketServesTheHttp01Token) {
    start(
        config(json::object{{"agent_http01_port", pebble_.http01_port}, {"agent_challenge_grace_ms", 200}}));
    add_user("agent01@example.com");
    auto key = key_for("agent01@example.com", scopes);
    auto acct = pebble_account(key);
    auto [device_id, token] = device(key, "8d3f9a0b-4c5d-4e67-8f90-a1b2c3d4e5f6");
    std::string const domain = fresh_domain();
    std::string const cert = agent_cert(key, acct, domain, device_id);

    // The agent: WebSocket, hello_ack, then it acts on the challenge signals and acks each one.
    ws_client ws;
    ASSERT_TRUE(ws.connect(server_->port(), "/api/websocket/" + std::to_string(device_id), token))
        << ws.http_status << " " << ws.handshake_body;
    auto hello = ws.next();
    ASSERT_TRUE(hello);
    ws.send(json::object{
        {"type", "event"},
        {"name", "lifecycle.hello_ack"},
        {"payload", {{"connection_id", hello->at("payload").at("connection_id")}, {"resume_token", ""}}}});
    token_server served(pebble_.http01_port);
    std::vector<std::string> seen;
    std::string challenge_id;

    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    ASSERT_EQ(issued.status, 200) << issued.body;
    auto const hid = issued.json().at("data").at("issue_history_id").as_int64();
    bool stopped = false;
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
         !stopped && std::chrono::steady_clock::now() < until;) {
        auto m = ws.next(std::chrono::seconds(1));
        if (!m || (*m)["name"] != "updates.signal") {
            continue;
        }
        auto const& p = m->at("payload").as_object();
        std::string const type(p.at("type").as_string());
        seen.push_back(type);
        auto const& ref = p.at("ref").as_object();
        if (type == "acme.http01.start") {
            EXPECT_EQ(ref.at("domain").as_string(), domain);
            EXPECT_EQ(ref.at("listen").at("http").at("port").as_int64(),
                      static_cast<std::int64_t>(pebble_.http01_port));
            EXPECT_EQ(ref.at("listen").at("https").at("enabled"), false);
            challenge_id = std::string(ref.at("challenge_id").as_string());
            served.add(std::string(ref.at("token").as_string()),
                       std::string(ref.at("key_authorization").as_string()));
        } else if (type == "acme.http01.stop") {
            EXPECT_EQ(ref.at("challenge_id").as_string(), challenge_id);
            stopped = true;
        }
        ws.send(json::object{
            {"type", "event"}, {"name", "updates.ack"}, {"id", m->at("id")}, {"payload", json::object{}}});
    }
    EXPECT_TRUE(stopped) << "no acme.http01.stop";
    auto row = wait_terminal(key, cert, hid);
    ASSERT_EQ(row["status"], "SUCCESS") << json::serialize(row) << "\n" << server_->log();
    EXPECT_GE(served.served(), 1) << "the CA fetched the token from the agent";
    auto result = call("GET", "/apiv1/me/certificates/" + cert + "/issue-result", key);
    auto const verified =
        openssl_verify(std::string(result.json().at("data").at("cert").as_string()), pebble_root());
    EXPECT_NE(verified.find("leaf.pem: OK"), std::string::npos) << verified;
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM acme_http_challenges"), 0)
        << "nothing on the server's listener";
    ws.close();
}

TEST_F(AgentChallenges, AnAgentThatNeverPicksTheChallengeUpFailsTheAttemptSayingSo) {
    start(config(
        json::object{{"agent_http01_port", pebble_.http01_port}, {"agent_challenge_timeout_seconds", 3}}));
    add_user("agent02@example.com");
    auto key = key_for("agent02@example.com", scopes);
    auto acct = pebble_account(key);
    auto [device_id, token] = device(key, "9e4a0b1c-5d6e-4f78-9a01-b2c3d4e5f6a7");
    (void)token;  // the agent is offline: it never polls nor connects
    std::string const cert = agent_cert(key, acct, fresh_domain(), device_id);
    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    auto row = wait_terminal(key, cert, issued.json().at("data").at("issue_history_id").as_int64());
    ASSERT_EQ(row["status"], "FAILED") << json::serialize(row);
    std::string const msg(row["error_message"].as_string());
    EXPECT_NE(msg.find("device " + std::to_string(device_id)), std::string::npos) << msg;
    EXPECT_NE(msg.find("did not pick up the HTTP-01 challenge"), std::string::npos) << msg;

    // Without any device holding it, the message says to assign one.
    auto lonely = call("POST", "/apiv1/me/certificates", key,
                       R"({"domain_name":")" + fresh_domain() + R"(","acct_id":)" + std::to_string(acct) +
                           R"(,"challenge":"http-01-agent"})");
    std::string const c2 = std::to_string(id_of(lonely));
    auto i2 = call("POST", "/apiv1/me/certificates/" + c2 + "/issues", key, "{}");
    auto r2 = wait_terminal(key, c2, i2.json().at("data").at("issue_history_id").as_int64());
    ASSERT_EQ(r2["status"], "FAILED");
    EXPECT_NE(std::string(r2["error_message"].as_string()).find("assign one"), std::string::npos)
        << json::serialize(r2);
}

TEST_F(AgentChallenges, Dns01ThroughACnameDelegatedToTheOperatorsZone) {
    CERTCTRL_REQUIRE_KNOT();
    dns::update_target const knot = *test::knot();
    std::ofstream(dir_.path() / "tsig.secret") << knot.tsig_secret << "\n";
    start(config(json::object{{"dns_propagation_seconds", 0},
                              {"domain_verification_resolver", "127.0.0.1:" + std::to_string(knot.port)},
                              {"delegation",
                               {{"domain", "acme.certctrl.test"},
                                {"server", "127.0.0.1"},
                                {"port", knot.port},
                                {"zone", "certctrl.test"},
                                {"tsig_key_name", knot.tsig_key_name},
                                {"tsig_secret_file", (dir_.path() / "tsig.secret").string()}}}}));
    add_user("delegate@example.com");
    auto key = key_for("delegate@example.com", scopes);
    auto acct = pebble_account(key);
    std::string const base = fresh_domain();
    // A wildcard too: DNS-01 is the only way for it, and the user gives no DNS credentials at all.
    auto created = call("POST", "/apiv1/me/certificates", key,
                        R"({"domain_name":")" + base + R"(","sans":["*.)" + base + R"("],"acct_id":)" +
                            std::to_string(acct) + R"(,"challenge":"dns-01-delegated"})");
    ASSERT_EQ(created.status, 200) << created.body;
    auto const d = created.json().at("data");
    std::string const public_id(d.at("public_id").as_string());
    auto const& cname = d.at("acme_challenge_cname").as_array();
    ASSERT_FALSE(cname.empty());
    EXPECT_EQ(cname.at(0).at("name").as_string(), "_acme-challenge." + base);
    EXPECT_EQ(cname.at(0).at("target").as_string(), public_id + ".acme.certctrl.test");
    // verify_domain (agent contract 3.3) says what is missing, then that all is in place.
    std::string const c_path = "/apiv1/me/certificates/" + std::to_string(d.at("id").as_int64());
    auto before = call("PUT", c_path, key, R"({"action":"verify_domain"})");
    EXPECT_EQ(before.status, 409) << before.body;
    EXPECT_NE(before.body.find("_acme-challenge." + base), std::string::npos) << before.body;
    // The user's one-time record, in their own zone (here the same knot).
    auto added = dns::update_record(knot, "_acme-challenge." + base, "CNAME",
                                    public_id + ".acme.certctrl.test.", true);
    ASSERT_TRUE(added) << added.error().what;
    EXPECT_EQ(call("PUT", c_path, key, R"({"action":"verify_domain"})").status, 204);

    std::string const cert = std::to_string(d.at("id").as_int64());
    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    auto row = wait_terminal(key, cert, issued.json().at("data").at("issue_history_id").as_int64());
    ASSERT_EQ(row["status"], "SUCCESS") << json::serialize(row) << "\n" << server_->log();
    auto result = call("GET", "/apiv1/me/certificates/" + cert + "/issue-result", key);
    std::string const chain(result.json().at("data").at("cert").as_string());
    EXPECT_NE(openssl_sans(chain).find("DNS:*." + base), std::string::npos);
    // The TXT records are gone from the operator's zone afterwards.
    auto left = dns::query_txt("127.0.0.1", knot.port, public_id + ".acme.certctrl.test",
                               std::chrono::seconds(5), false);
    ASSERT_TRUE(left);
    EXPECT_TRUE(left->empty());
    (void)dns::update_record(knot, "_acme-challenge." + base, "CNAME", public_id + ".acme.certctrl.test.",
                             false);
}

TEST_F(AgentChallenges, DelegationMustBeConfiguredToBeChosen) {
    start(config(json::object{}));
    add_user("nodeleg@example.com");
    auto key = key_for("nodeleg@example.com", scopes);
    auto acct = pebble_account(key);
    auto r = call("POST", "/apiv1/me/certificates", key,
                  R"({"domain_name":")" + fresh_domain() + R"(","acct_id":)" + std::to_string(acct) +
                      R"(,"challenge":"dns-01-delegated"})");
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json().at("error").at("params").at("field"), "challenge");
    EXPECT_EQ(call("POST", "/apiv1/me/certificates", key,
                   R"({"domain_name":"x.certctrl.test","acct_id":)" + std::to_string(acct) +
                       R"(,"challenge":"tls"})")
                  .status,
              400);
}

// TLS-ALPN-01 served by the agent (acme.tlsalpn01.start carries the server-made validation certificate),
// against pebble's TLS-ALPN-01 port (5001, scripts/lib/services.sh); the agent polls over HTTP this time.
TEST_F(AgentChallenges, AnAgentPollingOverHttpServesTheTlsAlpn01Certificate) {
    constexpr unsigned pebble_tls_port = 5001;
    start(config(json::object{{"agent_tls_alpn_port", pebble_tls_port}, {"agent_challenge_grace_ms", 200}}));
    add_user("alpn@example.com");
    auto key = key_for("alpn@example.com", scopes);
    auto acct = pebble_account(key);
    auto [device_id, token] = device(key, "af5b1c2d-6e7f-4a89-8b01-c2d3e4f5a6b7");
    std::string const domain = fresh_domain();
    auto created = call("POST", "/apiv1/me/certificates", key,
                        R"({"domain_name":")" + domain + R"(","acct_id":)" + std::to_string(acct) +
                            R"(,"challenge":"tls-alpn-01-agent"})");
    ASSERT_EQ(created.status, 200) << created.body;
    std::string const cert = std::to_string(id_of(created));
    ASSERT_EQ(call("POST", "/apiv1/me/devices/" + std::to_string(device_id) + "/certificates", key,
                   R"({"cert_id":)" + cert + "}")
                  .status,
              200);
    auto issued = call("POST", "/apiv1/me/certificates/" + cert + "/issues", key, "{}");
    auto const hid = issued.json().at("data").at("issue_history_id").as_int64();

    // The agent's poll loop: cursor in If-None-Match, long-poll, act on the challenge signals.
    std::unique_ptr<alpn_server> serving;
    std::string cursor;
    bool stopped = false;
    std::string challenge_cert;
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
         !stopped && std::chrono::steady_clock::now() < until;) {
        headers h = bearer(token);
        if (!cursor.empty()) {
            h["If-None-Match"] = "\"" + cursor + "\"";
        }
        auto r = call("GET", "/apiv1/devices/self/updates?wait=5", h);
        ASSERT_TRUE(r.status == 200 || r.status == 204) << r.status << r.body;
        if (r.status != 200) {
            continue;
        }
        auto const doc = r.json();
        cursor = std::string(doc.at("data").at("cursor").as_string());
        for (auto const& sig : doc.at("data").at("signals").as_array()) {
            std::string const type(sig.at("type").as_string());
            auto const& ref = sig.at("ref").as_object();
            if (type == "acme.tlsalpn01.start") {
                EXPECT_EQ(ref.at("domain").as_string(), domain);
                EXPECT_EQ(ref.at("listen").at("port").as_int64(), static_cast<std::int64_t>(pebble_tls_port));
                challenge_cert = std::string(ref.at("certificate").at("cert_pem").as_string());
                serving = std::make_unique<alpn_server>(
                    pebble_tls_port, challenge_cert,
                    std::string(ref.at("certificate").at("key_pem").as_string()));
                ASSERT_TRUE(serving->loaded());
            } else if (type == "acme.tlsalpn01.stop") {
                stopped = true;
            }
        }
    }
    EXPECT_TRUE(stopped) << "no acme.tlsalpn01.stop";
    auto row = wait_terminal(key, cert, hid);
    ASSERT_EQ(row["status"], "SUCCESS") << json::serialize(row) << "\n" << server_->log();
    ASSERT_TRUE(serving);
    EXPECT_GE(serving->handshakes(), 1) << "the CA completed an acme-tls/1 handshake with the agent";
    // The validation certificate names only the domain and carries the critical acmeIdentifier extension.
    EXPECT_NE(openssl_sans(challenge_cert).find("DNS:" + domain), std::string::npos);
}

}  // namespace
}  // namespace certctrl::test
