// Device tokens (HS256 JWTs), the libsodium primitives of key delivery, and install-config validation.
#include "certctrl/service/devices.hpp"
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/sodium.hpp"
#include "certctrl/domain/device.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace certctrl {
namespace {

namespace json = boost::json;

crypto::keyring keys_with(std::uint32_t version, char fill) {
    crypto::keyring k;
    k.add(version, std::string(32, fill));
    return k;
}

std::string b64url(std::string const& s) {
    std::string out = base64_encode(s);
    for (auto& ch : out)
        ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
    while (!out.empty() && out.back() == '=')
        out.pop_back();
    return out;
}

// A token signed like the server signs, with any header and payload (to test what the verifier refuses).
std::string forge(std::string const& key, std::string const& header, std::string const& payload) {
    std::string const input = b64url(header) + "." + b64url(payload);
    return input + "." + b64url(crypto::hmac_sha256(key, input));
}

service::device_claims claims(std::int64_t exp) {
    service::device_claims c;
    c.user_id = 42;
    c.device_id = 7;
    c.session_id = 3;
    c.issued_at = 1000;
    c.expires_at = exp;
    return c;
}

TEST(DeviceToken, RoundTripsWithSubAsAStringAndDeviceIdAsAnInteger) {
    auto keys = keys_with(2, 'k');
    std::string const t = service::sign_device_token(keys, claims(5000));
    auto payload = json::parse(*base64_decode([&] {
        auto a = t.find('.') + 1;
        std::string s = t.substr(a, t.find('.', a) - a);
        for (auto& ch : s)
            ch = ch == '-' ? '+' : ch == '_' ? '/' : ch;
        while (s.size() % 4)
            s.push_back('=');
        return s;
    }()));
    EXPECT_EQ(payload.at("sub"), "42");
    EXPECT_EQ(payload.at("device_id").as_int64(), 7);
    EXPECT_EQ(payload.at("exp").as_int64(), 5000);
    auto back = service::verify_device_token(keys, t, 4999);
    ASSERT_TRUE(back) << back.error().what;
    EXPECT_EQ(back->user_id, 42);
    EXPECT_EQ(back->device_id, 7);
    EXPECT_EQ(back->session_id, 3);
}

TEST(DeviceToken, RefusesExpiredTamperedForeignAndUnsignedTokens) {
    auto keys = keys_with(1, 'k');
    std::string const t = service::sign_device_token(keys, claims(5000));
    EXPECT_EQ(service::verify_device_token(keys, t, 5000).error().code, errc::unauthenticated);
    std::string tampered = t;
    tampered[t.find('.') + 3] ^= 1;
    EXPECT_EQ(service::verify_device_token(keys, tampered, 10).error().code, errc::unauthenticated);
    EXPECT_EQ(service::verify_device_token(keys_with(1, 'x'), t, 10).error().code, errc::unauthenticated)
        << "another master key";
    EXPECT_EQ(service::verify_device_token(keys_with(3, 'k'), t, 10).error().code, errc::unauthenticated)
        << "an unknown key version";
    std::string const payload = R"({"sub":"42","device_id":7,"sid":3,"exp":5000})";
    EXPECT_FALSE(service::verify_device_token(
        keys, b64url(R"({"alg":"none","kid":"1"})") + "." + b64url(payload) + ".", 10));
    auto key = *keys.derive(1, "device-jwt");
    EXPECT_FALSE(service::verify_device_token(keys, forge(key, R"({"alg":"HS512","kid":"1"})", payload), 10));
    EXPECT_TRUE(service::verify_device_token(keys, forge(key, R"({"alg":"HS256","kid":"1"})", payload), 10))
        << "the forge helper signs as the server does";
    std::string odd = t;
    {
        std::string const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        odd.back() = abc[abc.find(odd.back()) ^ 1];
    }  // flips an unused bit of the last base64url character
    EXPECT_FALSE(service::verify_device_token(keys, odd, 10)) << "only canonical base64url";
    EXPECT_FALSE(service::verify_device_token(keys, "a.b", 10));
    EXPECT_FALSE(service::verify_device_token(keys, "a.b.c.d", 10));
    EXPECT_FALSE(service::verify_device_token(keys, "", 10));
}

TEST(DeviceToken, ClaimsTheContractAllows) {
    auto keys = keys_with(1, 'k');
    auto key = *keys.derive(1, "device-jwt");
    std::string const h = R"({"alg":"HS256","kid":"1"})";
    auto no_device = service::verify_device_token(keys, forge(key, h, R"({"sub":"1","sid":1,"exp":99})"), 10);
    ASSERT_FALSE(no_device);
    EXPECT_EQ(no_device.error().code, errc::bad_request) << "no device_id claim: 400";
    auto as_string = service::verify_device_token(
        keys, forge(key, h, R"({"sub":"1","sid":1,"device_id":"9","exp":99})"), 10);
    ASSERT_TRUE(as_string);
    EXPECT_EQ(as_string->device_id, 9) << "a string device_id is tolerated";
    EXPECT_FALSE(
        service::verify_device_token(keys, forge(key, h, R"({"sub":1,"sid":1,"device_id":9,"exp":99})"), 10))
        << "sub must be a string";
}

TEST(DeviceToken, OlderMasterKeyVersionsStillVerifyAfterARotation) {
    crypto::keyring old_keys = keys_with(1, 'a');
    std::string const t = service::sign_device_token(old_keys, claims(5000));
    crypto::keyring rotated = keys_with(1, 'a');
    rotated.add(2, std::string(32, 'b'));
    EXPECT_TRUE(service::verify_device_token(rotated, t, 10));
    std::string const fresh = service::sign_device_token(rotated, claims(5000));
    EXPECT_NE(fresh.substr(0, fresh.find('.')), t.substr(0, t.find('.'))) << "the header names version 2";
    EXPECT_FALSE(service::verify_device_token(old_keys, fresh, 10));
}

TEST(Sodium, Blake2b256KnownAnswerAndSealedBoxes) {
    EXPECT_EQ(hex_encode(crypto::blake2b_256("")),
              "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
    EXPECT_EQ(hex_encode(crypto::blake2b_256("abc")),
              "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
    auto [pk, sk] = crypto::x25519_keypair();
    std::string const data_key = crypto::random_bytes(32);
    std::string const sealed = crypto::seal_to(data_key, pk);
    EXPECT_EQ(sealed.size(), crypto::sealed_data_key_bytes);
    EXPECT_EQ(crypto::open_sealed(sealed, pk, sk), data_key);
    EXPECT_NE(crypto::seal_to(data_key, pk), sealed) << "an ephemeral key per seal";
    auto [pk2, sk2] = crypto::x25519_keypair();
    EXPECT_FALSE(crypto::open_sealed(sealed, pk2, sk2));
    std::string broken = sealed;
    broken[40] ^= 1;
    EXPECT_FALSE(crypto::open_sealed(broken, pk, sk));
    EXPECT_THROW(crypto::seal_to(data_key, "short"), std::invalid_argument);
}

TEST(Sodium, LowOrderX25519KeysAreNotUsable) {
    EXPECT_TRUE(crypto::x25519_public_key_usable(crypto::x25519_keypair().first));
    for (auto const* hex : {"0000000000000000000000000000000000000000000000000000000000000000",
                            "0100000000000000000000000000000000000000000000000000000000000000",
                            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
                            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"}) {
        EXPECT_FALSE(crypto::x25519_public_key_usable(*hex_decode(hex))) << hex;
    }
    EXPECT_FALSE(crypto::x25519_public_key_usable("short"));
}

TEST(InstallConfig, ItemsAreValidated) {
    auto ok = service::parse_installs(json::parse(
        R"([{"type":"copy","ob_type":"cert","ob_id":5,"from":["private.key"],"to":["/etc/k.pem"]},
            {"type":"exec","cmd":["systemctl","reload","nginx"],"timeout_ms":5000,"enabled":false}])"));
    ASSERT_TRUE(ok) << ok.error().what;
    EXPECT_EQ(ok->at(0).at("enabled"), true) << "enabled defaults to true";
    EXPECT_EQ(ok->at(1).at("enabled"), false);
    for (char const* bad :
         {R"({})", R"([1])", R"([{"type":"rm"}])", R"([{"type":"copy","from":["a"],"to":[]}])",
          R"([{"type":"copy","from":["a"],"to":["relative/path"]}])", R"([{"type":"exec","ob_type":"file"}])",
          R"([{"type":"exec","ob_id":-1}])", R"([{"type":"exec","cmd":5}])", R"([{"type":"exec","env":[]}])",
          R"([{"type":"exec","timeout_ms":"1"}])"}) {
        auto r = service::parse_installs(json::parse(bad));
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, errc::bad_request) << bad;
    }
}

TEST(InstallConfig, TheDefaultItemCopiesTheCertificateFiles) {
    auto item = domain::default_cert_install_item(12, "*.example.com");
    EXPECT_EQ(item.at("ob_type"), "cert");
    EXPECT_EQ(item.at("ob_id").as_int64(), 12);
    EXPECT_EQ(item.at("type"), "copy");
    EXPECT_EQ(item.at("to").as_array().at(0), "/etc/certctrl/certs/_.example.com/private.key");
    EXPECT_TRUE(service::parse_installs(json::array{item})) << "the default item passes validation";
}

}  // namespace
}  // namespace certctrl
