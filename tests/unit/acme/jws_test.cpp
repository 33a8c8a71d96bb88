#include "certctrl/acme/jws.hpp"
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/random.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace certctrl::acme {
namespace {

using crypto::key_algorithm;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using bn_ptr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
using pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)>;
using bld_ptr = std::unique_ptr<OSSL_PARAM_BLD, decltype(&OSSL_PARAM_BLD_free)>;
using params_ptr = std::unique_ptr<OSSL_PARAM, decltype(&OSSL_PARAM_free)>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)>;

// RFC 7638 §3.1 example key (also RFC 7517 Appendix A.1).
constexpr char const* rfc7638_n =
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
    "BJECPebWKRXjBZCiFV4n3o"
    "knjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
    "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHz"
    "u6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-"
    "csFCur-kEgU8"
    "awapJzKnqDKgw";
constexpr char const* rfc7638_thumbprint = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/// Keys are generated once per test binary (RSA generation is slow).
std::string const& key_pem(key_algorithm a) {
    static std::map<key_algorithm, std::string> cache;
    auto it = cache.find(a);
    if (it == cache.end()) {
        it = cache.emplace(a, crypto::generate_private_key_pem(a)).first;
    }
    return it->second;
}

pkey_ptr load_private(std::string const& pem) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    if (!key) {
        throw std::runtime_error("test: cannot load key");
    }
    return key;
}

std::string decode(std::string const& text) {
    auto bytes = base64url_decode(text);
    if (!bytes) {
        throw std::runtime_error("test: bad base64url " + text);
    }
    return *bytes;
}

/// base64url computed independently of the code under test: standard base64, translated and unpadded.
std::string reference_base64url(std::string_view bytes) {
    std::string s = base64_encode(bytes);
    while (!s.empty() && s.back() == '=') {
        s.pop_back();
    }
    for (char& c : s) {
        if (c == '+')
            c = '-';
        else if (c == '/')
            c = '_';
    }
    return s;
}

bn_ptr to_bn(std::string const& bytes) {
    return bn_ptr(BN_bin2bn(reinterpret_cast<unsigned char const*>(bytes.data()),
                            static_cast<int>(bytes.size()), nullptr),
                  BN_free);
}

/// An OpenSSL public key built from a JWK with EVP_PKEY_fromdata (independent of the code under test).
pkey_ptr key_from_jwk(boost::json::object const& jwk) {
    bld_ptr bld(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
    std::string const kty(jwk.at("kty").as_string());
    char const* type = nullptr;
    bn_ptr n(nullptr, BN_free);
    bn_ptr e(nullptr, BN_free);
    std::string point;
    if (kty == "EC") {
        type = "EC";
        std::string const crv(jwk.at("crv").as_string());
        char const* group = crv == "P-256" ? "prime256v1" : crv == "P-384" ? "secp384r1" : "";
        point = std::string(1, '\x04') + decode(std::string(jwk.at("x").as_string())) +
                decode(std::string(jwk.at("y").as_string()));
        if (OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
            OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                             point.size()) != 1) {
            throw std::runtime_error("test: param build failed");
        }
    } else if (kty == "RSA") {
        type = "RSA";
        n = to_bn(decode(std::string(jwk.at("n").as_string())));
        e = to_bn(decode(std::string(jwk.at("e").as_string())));
        if (OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
            OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1) {
            throw std::runtime_error("test: param build failed");
        }
    } else {
        throw std::runtime_error("test: unknown kty");
    }
    params_ptr params(OSSL_PARAM_BLD_to_param(bld.get()), OSSL_PARAM_free);
    pkey_ctx_ptr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
        throw std::runtime_error("test: EVP_PKEY_fromdata failed");
    }
    return pkey_ptr(raw, EVP_PKEY_free);
}

/// Verifies a JWS signature (RFC 7518 form) over `input` with OpenSSL.
bool verify(EVP_PKEY* key, std::string const& alg, std::string const& input, std::string const& signature) {
    std::string der = signature;
    EVP_MD const* md = EVP_sha256();
    if (alg == "ES256" || alg == "ES384") {
        std::size_t const half = alg == "ES256" ? 32 : 48;
        if (alg == "ES384") {
            md = EVP_sha384();
        }
        if (signature.size() != 2 * half) {
            return false;
        }
        ecdsa_sig_ptr sig(ECDSA_SIG_new(), ECDSA_SIG_free);
        bn_ptr r = to_bn(signature.substr(0, half));
        bn_ptr s = to_bn(signature.substr(half));
        if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
            return false;
        }
        r.release();  // owned by sig now
        s.release();
        unsigned char* out = nullptr;
        int const len = i2d_ECDSA_SIG(sig.get(), &out);
        if (len <= 0) {
            return false;
        }
        der.assign(reinterpret_cast<char*>(out), static_cast<std::size_t>(len));
        OPENSSL_free(out);
    } else if (alg != "RS256") {
        return false;
    }
    md_ctx_ptr ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;
    if (EVP_DigestVerifyInit(ctx.get(), &pctx, md, nullptr, key) != 1) {
        return false;
    }
    if (alg == "RS256" && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
        return false;
    }
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<unsigned char const*>(der.data()), der.size(),
                            reinterpret_cast<unsigned char const*>(input.data()), input.size()) == 1;
}

std::vector<std::string> member_names(boost::json::object const& o) {
    std::vector<std::string> names;
    for (auto const& kv : o) {
        names.emplace_back(kv.key());
    }
    return names;
}

// ---------------------------------------------------------------------------------------------------------------

TEST(JwsBase64url, KnownVectors) {
    EXPECT_EQ(base64url(""), "");
    EXPECT_EQ(base64url("f"), "Zg");
    EXPECT_EQ(base64url("fo"), "Zm8");
    EXPECT_EQ(base64url("foo"), "Zm9v");
    EXPECT_EQ(base64url("foob"), "Zm9vYg");
    EXPECT_EQ(base64url("fooba"), "Zm9vYmE");
    EXPECT_EQ(base64url("foobar"), "Zm9vYmFy");
    // RFC 7515 Appendix C.
    EXPECT_EQ(base64url(std::string("\x03\xec\xff\xe0\xc1", 5)), "A-z_4ME");
    EXPECT_EQ(base64url_decode("A-z_4ME"), std::string("\x03\xec\xff\xe0\xc1", 5));
}

TEST(JwsBase64url, RoundTripRandomLengths) {
    for (std::size_t len = 0; len <= 40; ++len) {
        for (int round = 0; round < 8; ++round) {
            std::string const bytes = crypto::random_bytes(len);
            std::string const text = base64url(bytes);
            EXPECT_EQ(text.find_first_of("=+/"), std::string::npos) << text;
            EXPECT_EQ(text.size(), (len * 4 + 2) / 3) << len;
            EXPECT_EQ(text, reference_base64url(bytes)) << len;
            auto back = base64url_decode(text);
            ASSERT_TRUE(back.has_value()) << text;
            EXPECT_EQ(*back, bytes) << len;
        }
    }
    // Every byte value, so every alphabet symbol appears.
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all += static_cast<char>(i);
    }
    EXPECT_EQ(base64url(all), reference_base64url(all));
    EXPECT_EQ(base64url_decode(base64url(all)), all);
}

TEST(JwsBase64url, DecodeRejectsBadInput) {
    EXPECT_FALSE(base64url_decode("a*b").has_value());
    EXPECT_FALSE(base64url_decode("a").has_value());
    EXPECT_FALSE(base64url_decode("Zm9vY").has_value());  // length 1 mod 4
    EXPECT_FALSE(base64url_decode("Zg==").has_value());   // padding
    EXPECT_FALSE(base64url_decode("Zg=").has_value());
    EXPECT_FALSE(base64url_decode("ab+/").has_value());  // standard alphabet
    EXPECT_FALSE(base64url_decode("Zm 9v").has_value());
    EXPECT_FALSE(base64url_decode("Zh").has_value());   // non-zero unused bits ("Zg" is canonical)
    EXPECT_FALSE(base64url_decode("Zm9").has_value());  // ditto ("Zm8")
    EXPECT_EQ(base64url_decode(""), std::string());
    EXPECT_EQ(base64url_decode("Zg"), "f");
    EXPECT_EQ(base64url_decode("Zm8"), "fo");
    EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff", 2));
}

TEST(JwsThumbprint, Rfc7638Example) {
    // The RFC's JWK includes "alg" and "kid", which are not part of the thumbprint input.
    boost::json::object jwk;
    jwk["kty"] = "RSA";
    jwk["n"] = rfc7638_n;
    jwk["e"] = "AQAB";
    jwk["alg"] = "RS256";
    jwk["kid"] = "2011-04-29";
    EXPECT_EQ(detail::jwk_thumbprint(jwk), rfc7638_thumbprint);

    boost::json::object reordered;
    reordered["e"] = "AQAB";
    reordered["n"] = rfc7638_n;
    reordered["kty"] = "RSA";
    EXPECT_EQ(detail::jwk_thumbprint(reordered), rfc7638_thumbprint);

    reordered["e"] = "AQAC";
    EXPECT_NE(detail::jwk_thumbprint(reordered), rfc7638_thumbprint);
}

TEST(JwsThumbprint, Rfc7638ExampleThroughOpenSslKey) {
    std::string const n_bytes = decode(rfc7638_n);
    ASSERT_EQ(n_bytes.size(), 256u);
    boost::json::object spec;
    spec["kty"] = "RSA";
    spec["n"] = rfc7638_n;
    spec["e"] = "AQAB";
    pkey_ptr const key = key_from_jwk(spec);

    boost::json::object const jwk = detail::public_jwk(key.get());
    EXPECT_EQ(member_names(jwk), (std::vector<std::string>{"e", "kty", "n"}));
    EXPECT_EQ(jwk.at("e").as_string(), "AQAB");
    EXPECT_EQ(jwk.at("kty").as_string(), "RSA");
    EXPECT_EQ(jwk.at("n").as_string(), rfc7638_n);
    EXPECT_EQ(detail::jwk_thumbprint(jwk), rfc7638_thumbprint);
}

TEST(JwsThumbprint, RejectsIncompleteJwk) {
    boost::json::object jwk;
    EXPECT_THROW(detail::jwk_thumbprint(jwk), std::invalid_argument);
    jwk["kty"] = "OKP";
    jwk["crv"] = "Ed25519";
    jwk["x"] = "AAAA";
    EXPECT_THROW(detail::jwk_thumbprint(jwk), std::invalid_argument);
    jwk["kty"] = "EC";  // no "y"
    EXPECT_THROW(detail::jwk_thumbprint(jwk), std::invalid_argument);
    jwk["y"] = 5;
    EXPECT_THROW(detail::jwk_thumbprint(jwk), std::invalid_argument);
    jwk["y"] = "AAAA";
    EXPECT_NO_THROW(detail::jwk_thumbprint(jwk));
}

TEST(JwsThumbprint, OfPemIsCanonicalJwkHash) {
    for (auto a : {key_algorithm::ecdsa_p256, key_algorithm::ecdsa_p384, key_algorithm::rsa_2048}) {
        std::string const& pem = key_pem(a);
        boost::json::object const jwk = public_jwk(pem);
        std::string canonical;
        if (jwk.at("kty").as_string() == "EC") {
            canonical = R"({"crv":")" + std::string(jwk.at("crv").as_string()) + R"(","kty":"EC","x":")" +
                        std::string(jwk.at("x").as_string()) + R"(","y":")" +
                        std::string(jwk.at("y").as_string()) + R"("})";
        } else {
            canonical = R"({"e":")" + std::string(jwk.at("e").as_string()) + R"(","kty":"RSA","n":")" +
                        std::string(jwk.at("n").as_string()) + R"("})";
        }
        std::string const expected = reference_base64url(crypto::sha256(canonical));
        EXPECT_EQ(jwk_thumbprint(pem), expected) << crypto::to_string(a);
        EXPECT_EQ(jwk_thumbprint(pem).size(), 43u);
        EXPECT_EQ(detail::jwk_thumbprint(jwk), expected);
    }
    EXPECT_NE(jwk_thumbprint(key_pem(key_algorithm::ecdsa_p256)),
              jwk_thumbprint(key_pem(key_algorithm::ecdsa_p384)));
}

void check_ec_jwk(key_algorithm a, char const* crv, std::size_t size) {
    std::string const& pem = key_pem(a);
    boost::json::object const jwk = public_jwk(pem);
    EXPECT_EQ(member_names(jwk), (std::vector<std::string>{"crv", "kty", "x", "y"}));
    EXPECT_EQ(jwk.at("crv").as_string(), crv);
    EXPECT_EQ(jwk.at("kty").as_string(), "EC");
    EXPECT_EQ(decode(std::string(jwk.at("x").as_string())).size(), size);
    EXPECT_EQ(decode(std::string(jwk.at("y").as_string())).size(), size);

    pkey_ptr const priv = load_private(pem);
    pkey_ptr const pub = key_from_jwk(jwk);
    EXPECT_EQ(EVP_PKEY_eq(pub.get(), priv.get()), 1);
    pkey_ptr const other = load_private(crypto::generate_private_key_pem(a));
    EXPECT_NE(EVP_PKEY_eq(pub.get(), other.get()), 1);
}

TEST(JwsPublicJwk, EcP256) {
    check_ec_jwk(key_algorithm::ecdsa_p256, "P-256", 32);
}

TEST(JwsPublicJwk, EcP384) {
    check_ec_jwk(key_algorithm::ecdsa_p384, "P-384", 48);
}

TEST(JwsPublicJwk, EcCoordinatesKeepLeadingZeros) {
    // About 1 in 128 keys has a coordinate with a leading zero byte; 300 keys make missing padding show up.
    for (int i = 0; i < 300; ++i) {
        boost::json::object const jwk =
            public_jwk(crypto::generate_private_key_pem(key_algorithm::ecdsa_p256));
        ASSERT_EQ(jwk.at("x").as_string().size(), 43u);
        ASSERT_EQ(jwk.at("y").as_string().size(), 43u);
    }
}

TEST(JwsPublicJwk, Rsa2048) {
    std::string const& pem = key_pem(key_algorithm::rsa_2048);
    boost::json::object const jwk = public_jwk(pem);
    EXPECT_EQ(member_names(jwk), (std::vector<std::string>{"e", "kty", "n"}));
    EXPECT_EQ(jwk.at("e").as_string(), "AQAB");
    EXPECT_EQ(jwk.at("kty").as_string(), "RSA");
    std::string const n = decode(std::string(jwk.at("n").as_string()));
    EXPECT_EQ(n.size(), 256u);
    EXPECT_NE(n[0], '\0');

    pkey_ptr const priv = load_private(pem);
    pkey_ptr const pub = key_from_jwk(jwk);
    EXPECT_EQ(EVP_PKEY_eq(pub.get(), priv.get()), 1);
}

TEST(JwsPublicJwk, RejectsOtherKeys) {
    pkey_ptr const ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free);
    pkey_ptr const p521(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-521"), EVP_PKEY_free);
    ASSERT_TRUE(ed && p521);
    std::vector<std::string> pems;
    for (EVP_PKEY* k : {ed.get(), p521.get()}) {
        bio_ptr bio(BIO_new(BIO_s_mem()), BIO_free);
        ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), k, nullptr, nullptr, 0, nullptr, nullptr), 1);
        char* data = nullptr;
        long const len = BIO_get_mem_data(bio.get(), &data);
        pems.emplace_back(data, static_cast<std::size_t>(len));
    }
    pems.emplace_back("");
    pems.emplace_back("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    for (auto const& pem : pems) {
        EXPECT_THROW(public_jwk(pem), std::invalid_argument) << pem;
        EXPECT_THROW(jwk_thumbprint(pem), std::invalid_argument) << pem;
        EXPECT_THROW(jws_algorithm(pem), std::invalid_argument) << pem;
        EXPECT_THROW(sign(pem, "https://ca/x", "n", "", "{}"), std::invalid_argument) << pem;
        EXPECT_THROW(key_authorization("tok", pem), std::invalid_argument) << pem;
    }
    EXPECT_THROW(detail::public_jwk(ed.get()), std::invalid_argument);
    EXPECT_THROW(detail::public_jwk(nullptr), std::invalid_argument);
}

TEST(JwsAlgorithm, Names) {
    EXPECT_EQ(jws_algorithm(key_pem(key_algorithm::ecdsa_p256)), "ES256");
    EXPECT_EQ(jws_algorithm(key_pem(key_algorithm::ecdsa_p384)), "ES384");
    EXPECT_EQ(jws_algorithm(key_pem(key_algorithm::rsa_2048)), "RS256");
}

// ---------------------------------------------------------------------------------------------------------------

struct parsed_jws {
    boost::json::object header;
    std::string header_text;
    std::string payload_b64;
    std::string signature;
    std::string input;  // ASCII(protected "." payload)
};

parsed_jws parse_jws(boost::json::object const& jws) {
    EXPECT_EQ(member_names(jws), (std::vector<std::string>{"protected", "payload", "signature"}));
    parsed_jws p;
    std::string const protected_b64(jws.at("protected").as_string());
    p.payload_b64 = std::string(jws.at("payload").as_string());
    p.header_text = decode(protected_b64);
    p.header = boost::json::parse(p.header_text).as_object();
    p.signature = decode(std::string(jws.at("signature").as_string()));
    p.input = protected_b64 + "." + p.payload_b64;
    return p;
}

struct sign_case {
    key_algorithm key;
    char const* alg;
    std::size_t signature_size;
};

class JwsSign : public ::testing::TestWithParam<sign_case> {};

TEST_P(JwsSign, JwkHeaderWithPayload) {
    auto const& c = GetParam();
    std::string const& pem = key_pem(c.key);
    std::string const payload = R"({"termsOfServiceAgreed":true,"contact":["mailto:a@example.com"]})";
    std::string const text = sign(pem, "https://ca.example/acme/new-account", "nonce-1", "", payload);

    parsed_jws const p = parse_jws(boost::json::parse(text).as_object());
    EXPECT_EQ(member_names(p.header), (std::vector<std::string>{"alg", "jwk", "nonce", "url"}));
    EXPECT_EQ(p.header.at("alg").as_string(), c.alg);
    EXPECT_EQ(p.header.at("nonce").as_string(), "nonce-1");
    EXPECT_EQ(p.header.at("url").as_string(), "https://ca.example/acme/new-account");
    EXPECT_EQ(p.header.at("jwk").as_object(), public_jwk(pem));
    EXPECT_EQ(p.payload_b64, reference_base64url(payload));
    EXPECT_EQ(decode(p.payload_b64), payload);
    EXPECT_EQ(p.signature.size(), c.signature_size);

    // Verify with the key rebuilt from the embedded JWK, and with the private key's public part.
    pkey_ptr const from_jwk = key_from_jwk(p.header.at("jwk").as_object());
    pkey_ptr const priv = load_private(pem);
    EXPECT_TRUE(verify(from_jwk.get(), c.alg, p.input, p.signature));
    EXPECT_TRUE(verify(priv.get(), c.alg, p.input, p.signature));
}

TEST_P(JwsSign, KidHeaderPostAsGet) {
    auto const& c = GetParam();
    std::string const& pem = key_pem(c.key);
    std::string const kid = "https://ca.example/acme/acct/42";
    std::string const text = sign(pem, "https://ca.example/acme/order/7", "nonce-2", kid, "");

    boost::json::object const jws = boost::json::parse(text).as_object();
    EXPECT_EQ(jws.at("payload").as_string(), "");
    parsed_jws const p = parse_jws(jws);
    EXPECT_EQ(member_names(p.header), (std::vector<std::string>{"alg", "kid", "nonce", "url"}));
    EXPECT_EQ(p.header.at("alg").as_string(), c.alg);
    EXPECT_EQ(p.header.at("kid").as_string(), kid);
    EXPECT_EQ(p.header.at("nonce").as_string(), "nonce-2");
    EXPECT_EQ(p.header.at("url").as_string(), "https://ca.example/acme/order/7");
    EXPECT_FALSE(p.header.contains("jwk"));
    EXPECT_EQ(p.input.back(), '.');
    EXPECT_EQ(p.signature.size(), c.signature_size);

    pkey_ptr const priv = load_private(pem);
    EXPECT_TRUE(verify(priv.get(), c.alg, p.input, p.signature));
}

TEST_P(JwsSign, TamperingFailsVerification) {
    auto const& c = GetParam();
    std::string const& pem = key_pem(c.key);
    parsed_jws const p = parse_jws(
        boost::json::parse(sign(pem, "https://ca.example/acme/x", "n3", "kid-1", R"({"a":1})")).as_object());
    pkey_ptr const priv = load_private(pem);
    ASSERT_TRUE(verify(priv.get(), c.alg, p.input, p.signature));

    for (std::size_t pos : {std::size_t{0}, p.signature.size() / 2 - 1, p.signature.size() - 1}) {
        std::string flipped = p.signature;
        flipped[pos] = static_cast<char>(flipped[pos] ^ 0x01);
        EXPECT_FALSE(verify(priv.get(), c.alg, p.input, flipped)) << pos;
    }
    std::string tampered_input = p.input;
    tampered_input.back() = tampered_input.back() == 'A' ? 'B' : 'A';
    EXPECT_FALSE(verify(priv.get(), c.alg, tampered_input, p.signature));

    // A signature from another key of the same kind does not verify.
    pkey_ptr const other = load_private(crypto::generate_private_key_pem(c.key));
    EXPECT_FALSE(verify(other.get(), c.alg, p.input, p.signature));
}

INSTANTIATE_TEST_SUITE_P(JwsKeys, JwsSign,
                         ::testing::Values(sign_case{key_algorithm::ecdsa_p256, "ES256", 64},
                                           sign_case{key_algorithm::ecdsa_p384, "ES384", 96},
                                           sign_case{key_algorithm::rsa_2048, "RS256", 256}),
                         [](auto const& case_info) { return std::string(case_info.param.alg); });

TEST(JwsSignEcdsa, ManySignaturesVerify) {
    // r or s with a leading zero byte (about 1 in 128 per half) must still be padded to full length.
    std::string const& pem = key_pem(key_algorithm::ecdsa_p256);
    pkey_ptr const priv = load_private(pem);
    for (int i = 0; i < 200; ++i) {
        parsed_jws const p = parse_jws(
            boost::json::parse(sign(pem, "https://ca.example/x", std::to_string(i), "k", "{}")).as_object());
        ASSERT_EQ(p.signature.size(), 64u);
        ASSERT_TRUE(verify(priv.get(), "ES256", p.input, p.signature)) << i;
    }
}

// ---------------------------------------------------------------------------------------------------------------

std::string reference_hmac_sha256(std::string const& key, std::string const& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
             reinterpret_cast<unsigned char const*>(data.data()), data.size(), out, &len) == nullptr) {
        throw std::runtime_error("test: HMAC failed");
    }
    return std::string(reinterpret_cast<char*>(out), len);
}

TEST(JwsExternalAccountBinding, MatchesIndependentHmac) {
    for (auto a : {key_algorithm::ecdsa_p256, key_algorithm::rsa_2048}) {
        std::string const& pem = key_pem(a);
        std::string const hmac_key = crypto::random_bytes(32);
        std::string const url = "https://ca.example/acme/new-account";
        boost::json::object const eab = external_account_binding(pem, "eab-kid-1", hmac_key, url);

        parsed_jws const p = parse_jws(eab);
        EXPECT_EQ(member_names(p.header), (std::vector<std::string>{"alg", "kid", "url"}));
        EXPECT_EQ(p.header.at("alg").as_string(), "HS256");
        EXPECT_EQ(p.header.at("kid").as_string(), "eab-kid-1");
        EXPECT_EQ(p.header.at("url").as_string(), url);

        std::string const payload = decode(p.payload_b64);
        EXPECT_EQ(boost::json::parse(payload).as_object(), public_jwk(pem));
        EXPECT_EQ(payload, boost::json::serialize(public_jwk(pem)));

        EXPECT_EQ(p.signature.size(), 32u);
        EXPECT_EQ(p.signature, reference_hmac_sha256(hmac_key, p.input));
        EXPECT_NE(p.signature, reference_hmac_sha256(crypto::random_bytes(32), p.input));

        // Deterministic: same inputs, same object.
        EXPECT_EQ(external_account_binding(pem, "eab-kid-1", hmac_key, url), eab);
    }
}

TEST(JwsExternalAccountBinding, RejectsEmptyKeyAndBadAccountKey) {
    EXPECT_THROW(
        external_account_binding(key_pem(key_algorithm::ecdsa_p256), "k", "", "https://ca/new-account"),
        std::invalid_argument);
    EXPECT_THROW(external_account_binding("not a key", "k", "secret", "https://ca/new-account"),
                 std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------------------------

std::string reference_sha256(std::string const& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("test: digest failed");
    }
    return std::string(reinterpret_cast<char*>(out), len);
}

TEST(JwsKeyAuthorization, TokenDotThumbprint) {
    std::string const token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
    for (auto a : {key_algorithm::ecdsa_p256, key_algorithm::ecdsa_p384, key_algorithm::rsa_2048}) {
        std::string const& pem = key_pem(a);
        std::string const ka = key_authorization(token, pem);
        EXPECT_EQ(ka, token + "." + jwk_thumbprint(pem));
        EXPECT_EQ(ka.size(), token.size() + 1 + 43);
    }
}

TEST(JwsDns01, TxtValue) {
    std::string const ka =
        key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", key_pem(key_algorithm::ecdsa_p256));
    std::string const txt = dns01_txt_value(ka);
    EXPECT_EQ(txt.size(), 43u);
    EXPECT_EQ(txt, reference_base64url(reference_sha256(ka)));
    EXPECT_EQ(txt.find_first_of("=+/"), std::string::npos);
    // Fixed vector: SHA-256("abc") = ba7816bf...15ad.
    EXPECT_EQ(
        dns01_txt_value("abc"),
        reference_base64url(*hex_decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")));
    EXPECT_EQ(dns01_txt_value("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
}

}  // namespace
}  // namespace certctrl::acme
