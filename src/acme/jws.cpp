#include "certctrl/acme/jws.hpp"

#include "certctrl/core/hex.hpp"

#include "certctrl/crypto/random.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <array>
#include <memory>
#include <span>
#include <stdexcept>
#include <string_view>

namespace certctrl::acme {

namespace {

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using bn_ptr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;
using ecdsa_sig_ptr = std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)>;

/// What a key signs with, which fixes the JWS "alg", the digest and (for ECDSA) the coordinate length.
enum class key_kind { es256, es384, rs256 };

/// The kind of a key; throws std::invalid_argument for anything this module does not sign with.
key_kind kind_of(EVP_PKEY const* key) {
    if (key == nullptr) {
        throw std::invalid_argument("no key");
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) {
            ERR_clear_error();
            throw std::invalid_argument("EC key without a named curve");
        }
        std::string_view const g(group, len);
        if (g == "prime256v1" || g == "P-256" || g == "secp256r1")
            return key_kind::es256;
        if (g == "secp384r1" || g == "P-384")
            return key_kind::es384;
        throw std::invalid_argument("unsupported EC curve " + std::string(g));
    }
    // EVP_PKEY_is_a(key, "RSA") is false for RSA-PSS keys, which cannot produce PKCS#1 v1.5 signatures.
    if (EVP_PKEY_is_a(key, "RSA")) {
        return key_kind::rs256;
    }
    throw std::invalid_argument("unsupported key type (need EC P-256/P-384 or RSA)");
}

std::size_t coordinate_size(key_kind k) {
    return k == key_kind::es384 ? 48 : 32;
}

EVP_MD const* digest_of(key_kind k) {
    return k == key_kind::es384 ? EVP_sha384() : EVP_sha256();
}

char const* alg_name(key_kind k) {
    switch (k) {
        case key_kind::es256:
            return "ES256";
        case key_kind::es384:
            return "ES384";
        case key_kind::rs256:
            return "RS256";
    }
    return "";
}

pkey_ptr load_private_key(std::string const& pem) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    if (!bio) {
        throw std::runtime_error("BIO_new_mem_buf failed");
    }
    pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    if (!key) {
        ERR_clear_error();
        throw std::invalid_argument("cannot parse the PEM private key");
    }
    return key;
}

bn_ptr get_bn(EVP_PKEY const* key, char const* name) {
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(key, name, &raw) != 1 || raw == nullptr) {
        BN_free(raw);
        ERR_clear_error();
        throw std::invalid_argument(std::string("key has no ") + name);
    }
    return bn_ptr(raw, BN_free);
}

/// Big-endian bytes of `bn`, left-padded with zeros to `size` (or minimal when `size` is 0).
std::string bn_bytes(BIGNUM const* bn, std::size_t size) {
    if (size == 0) {
        std::string out(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
        BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
        return out;
    }
    std::string out(size, '\0');
    if (BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(size)) !=
        static_cast<int>(size)) {
        throw std::runtime_error("number does not fit its fixed length");
    }
    return out;
}

std::string signing_input(boost::json::object const& protected_header, std::string_view payload,
                          std::string& protected_b64, std::string& payload_b64) {
    protected_b64 = base64url(boost::json::serialize(protected_header));
    payload_b64 = base64url(payload);
    std::string input;
    input.reserve(protected_b64.size() + 1 + payload_b64.size());
    input += protected_b64;
    input += '.';
    input += payload_b64;
    return input;
}

/// The JWS signature (RFC 7518 §3.3/§3.4 form) of `input` under `key`.
std::string sign_bytes(EVP_PKEY* key, key_kind kind, std::string_view input) {
    md_ctx_ptr ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
    if (!ctx || EVP_DigestSignInit(ctx.get(), &pctx, digest_of(kind), nullptr, key) != 1) {
        throw std::runtime_error("EVP_DigestSignInit failed");
    }
    if (kind == key_kind::rs256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0) {
        throw std::runtime_error("cannot select PKCS#1 v1.5 padding");
    }
    auto const* in = reinterpret_cast<unsigned char const*>(input.data());
    std::size_t len = 0;
    if (EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1) {
        throw std::runtime_error("EVP_DigestSign failed");
    }
    std::string der(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len, in, input.size()) !=
        1) {
        throw std::runtime_error("EVP_DigestSign failed");
    }
    der.resize(len);
    if (kind == key_kind::rs256) {
        return der;  // PKCS#1 v1.5: already the modulus-length octet string JWS wants
    }
    // ECDSA: OpenSSL emits DER Ecdsa-Sig-Value; JWS wants the fixed-length r || s.
    auto const* p = reinterpret_cast<unsigned char const*>(der.data());
    ecdsa_sig_ptr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
    if (!sig) {
        throw std::runtime_error("cannot decode the ECDSA signature");
    }
    BIGNUM const* r = nullptr;
    BIGNUM const* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    std::size_t const n = coordinate_size(kind);
    return bn_bytes(r, n) + bn_bytes(s, n);
}

}  // namespace

std::string base64url(std::string_view bytes) {
    std::string out = base64_encode(bytes);
    while (!out.empty() && out.back() == '=') {
        out.pop_back();
    }
    for (char& c : out) {
        c = c == '+' ? '-' : (c == '/' ? '_' : c);
    }
    return out;
}

std::optional<std::string> base64url_decode(std::string_view text) {
    std::string standard(text);
    for (char& c : standard) {
        if (c == '-') {
            c = '+';
        } else if (c == '_') {
            c = '/';
        } else if (c == '+' || c == '/' || c == '=') {
            return std::nullopt;  // not of the URL alphabet, and no padding
        }
    }
    auto out = base64_decode(standard);
    // Canonical only: the bits left over from a partial final group must be zero.
    if (!out || base64url(*out) != text) {
        return std::nullopt;
    }
    return out;
}

namespace detail {

std::string jwk_thumbprint(boost::json::object const& jwk) {
    auto const* kty = jwk.if_contains("kty");
    if (kty == nullptr || !kty->is_string()) {
        throw std::invalid_argument("JWK without a string \"kty\"");
    }
    static constexpr std::array<char const*, 4> ec_members = {"crv", "kty", "x", "y"};
    static constexpr std::array<char const*, 3> rsa_members = {"e", "kty", "n"};
    static constexpr std::array<char const*, 2> oct_members = {"k", "kty"};
    std::span<char const* const> members;
    if (kty->get_string() == "EC") {
        members = ec_members;
    } else if (kty->get_string() == "RSA") {
        members = rsa_members;
    } else if (kty->get_string() == "oct") {
        members = oct_members;
    } else {
        throw std::invalid_argument("unsupported JWK kty " + std::string(kty->get_string()));
    }
    // The member lists above are in lexicographic order, and boost::json::object keeps insertion order and
    // serializes without whitespace, which is exactly the RFC 7638 §3 canonical form.
    boost::json::object required;
    for (char const* name : members) {
        auto const* v = jwk.if_contains(name);
        if (v == nullptr || !v->is_string()) {
            throw std::invalid_argument(std::string("JWK member \"") + name + "\" missing or not a string");
        }
        required[name] = v->get_string();
    }
    return base64url(crypto::sha256(boost::json::serialize(required)));
}

boost::json::object public_jwk(EVP_PKEY const* key) {
    key_kind const kind = kind_of(key);
    boost::json::object jwk;
    if (kind == key_kind::rs256) {
        bn_ptr const n = get_bn(key, OSSL_PKEY_PARAM_RSA_N);
        bn_ptr const e = get_bn(key, OSSL_PKEY_PARAM_RSA_E);
        jwk["e"] = base64url(bn_bytes(e.get(), 0));
        jwk["kty"] = "RSA";
        jwk["n"] = base64url(bn_bytes(n.get(), 0));
        return jwk;
    }
    bn_ptr const x = get_bn(key, OSSL_PKEY_PARAM_EC_PUB_X);
    bn_ptr const y = get_bn(key, OSSL_PKEY_PARAM_EC_PUB_Y);
    std::size_t const size = coordinate_size(kind);
    jwk["crv"] = kind == key_kind::es384 ? "P-384" : "P-256";
    jwk["kty"] = "EC";
    jwk["x"] = base64url(bn_bytes(x.get(), size));
    jwk["y"] = base64url(bn_bytes(y.get(), size));
    return jwk;
}

}  // namespace detail

boost::json::object public_jwk(std::string const& key_pem) {
    pkey_ptr const key = load_private_key(key_pem);
    return detail::public_jwk(key.get());
}

std::string jwk_thumbprint(std::string const& key_pem) {
    return detail::jwk_thumbprint(public_jwk(key_pem));
}

std::string jws_algorithm(std::string const& key_pem) {
    pkey_ptr const key = load_private_key(key_pem);
    return alg_name(kind_of(key.get()));
}

std::string sign(std::string const& key_pem, std::string const& url, std::string const& nonce,
                 std::string const& kid, std::string const& payload) {
    pkey_ptr const key = load_private_key(key_pem);
    key_kind const kind = kind_of(key.get());

    boost::json::object header;
    header["alg"] = alg_name(kind);
    if (kid.empty()) {
        header["jwk"] = detail::public_jwk(key.get());
    } else {
        header["kid"] = kid;
    }
    header["nonce"] = nonce;
    header["url"] = url;

    std::string protected_b64;
    std::string payload_b64;
    std::string const input = signing_input(header, payload, protected_b64, payload_b64);

    boost::json::object jws;
    jws["protected"] = protected_b64;
    jws["payload"] = payload_b64;  // base64url("") is "", the POST-as-GET form
    jws["signature"] = base64url(sign_bytes(key.get(), kind, input));
    return boost::json::serialize(jws);
}

boost::json::object external_account_binding(std::string const& account_key_pem, std::string const& eab_kid,
                                             std::string const& hmac_key,
                                             std::string const& new_account_url) {
    if (hmac_key.empty()) {
        throw std::invalid_argument("empty EAB HMAC key");
    }
    boost::json::object header;
    header["alg"] = "HS256";
    header["kid"] = eab_kid;
    header["url"] = new_account_url;

    std::string protected_b64;
    std::string payload_b64;
    std::string const input = signing_input(header, boost::json::serialize(public_jwk(account_key_pem)),
                                            protected_b64, payload_b64);

    boost::json::object jws;
    jws["protected"] = protected_b64;
    jws["payload"] = payload_b64;
    jws["signature"] = base64url(crypto::hmac_sha256(hmac_key, input));
    return jws;
}

std::string key_authorization(std::string const& token, std::string const& account_key_pem) {
    return token + "." + jwk_thumbprint(account_key_pem);
}

std::string dns01_txt_value(std::string const& key_authorization) {
    return base64url(crypto::sha256(key_authorization));
}

}  // namespace certctrl::acme
