#include "ec_der.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>

#include <cstring>
#include <memory>
#include <string_view>

namespace certctrl::crypto::ec_der {

namespace {

struct curve {
    int nid;
    std::size_t field_bytes;
    std::string_view oid;  // the DER of the curve's OBJECT IDENTIFIER (tag and length included)
};

constexpr char p256_oid[] = "\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07";
constexpr char p384_oid[] = "\x06\x05\x2b\x81\x04\x00\x22";
constexpr char ec_public_key_oid[] = "\x06\x07\x2a\x86\x48\xce\x3d\x02\x01";

std::optional<curve> curve_of(EVP_PKEY const* key) {
    if (key == nullptr || !EVP_PKEY_is_a(key, "EC")) {
        return std::nullopt;
    }
    char group[64] = {};
    std::size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) {
        return std::nullopt;
    }
    std::string_view const g(group, len);
    if (OBJ_sn2nid(group) == NID_X9_62_prime256v1 || g == "P-256") {
        return curve{NID_X9_62_prime256v1, 32, {p256_oid, sizeof p256_oid - 1}};
    }
    if (OBJ_sn2nid(group) == NID_secp384r1 || g == "P-384") {
        return curve{NID_secp384r1, 48, {p384_oid, sizeof p384_oid - 1}};
    }
    return std::nullopt;
}

// The public point, uncompressed (04 || X || Y); nothing in any other form.
std::optional<std::string> point_of(EVP_PKEY const* key, curve const& c) {
    unsigned char buf[1 + 2 * 66];
    std::size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof buf, &len) !=
            1 ||
        len != 1 + 2 * c.field_bytes || buf[0] != 0x04) {
        return std::nullopt;
    }
    return std::string(reinterpret_cast<char const*>(buf), len);
}

// One DER element: tag, definite length, content.
std::string tlv(unsigned char tag, std::string_view content) {
    std::string out(1, static_cast<char>(tag));
    std::size_t const n = content.size();
    if (n < 0x80) {
        out += static_cast<char>(n);
    } else if (n <= 0xff) {
        out += '\x81';
        out += static_cast<char>(n);
    } else {
        out += '\x82';
        out += static_cast<char>(n >> 8);
        out += static_cast<char>(n & 0xff);
    }
    out.append(content);
    return out;
}

}  // namespace

std::optional<std::string> pkcs8(EVP_PKEY const* key) {
    auto const c = curve_of(key);
    if (!c) {
        return std::nullopt;
    }
    auto const point = point_of(key, *c);
    if (!point) {
        return std::nullopt;
    }
    BIGNUM* raw = nullptr;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &raw) != 1) {
        return std::nullopt;
    }
    std::unique_ptr<BIGNUM, decltype(&BN_clear_free)> priv(raw, BN_clear_free);
    std::string scalar(c->field_bytes, '\0');
    if (BN_bn2binpad(priv.get(), reinterpret_cast<unsigned char*>(scalar.data()),
                     static_cast<int>(scalar.size())) != static_cast<int>(scalar.size())) {
        OPENSSL_cleanse(scalar.data(), scalar.size());
        return std::nullopt;
    }
    // RFC 5915 ECPrivateKey (version 1, the scalar, the public key; the curve is in the algorithm, as OpenSSL
    // writes it) inside RFC 5208 PrivateKeyInfo (version 0, id-ecPublicKey with the named curve).
    std::string ec_private = tlv(0x30, std::string("\x02\x01\x01", 3) + tlv(0x04, scalar) +
                                           tlv(0xa1, tlv(0x03, std::string(1, '\0') + *point)));
    std::string const algorithm =
        tlv(0x30, std::string(ec_public_key_oid, sizeof ec_public_key_oid - 1) + std::string(c->oid));
    std::string out = tlv(0x30, std::string("\x02\x01\x00", 3) + algorithm + tlv(0x04, ec_private));
    OPENSSL_cleanse(scalar.data(), scalar.size());
    OPENSSL_cleanse(ec_private.data(), ec_private.size());
    return out;
}

bool set_public_key(X509* cert, EVP_PKEY const* key) {
    auto const c = curve_of(key);
    if (!c || cert == nullptr) {
        return false;
    }
    auto const point = point_of(key, *c);
    if (!point) {
        return false;
    }
    auto* bits = static_cast<unsigned char*>(OPENSSL_malloc(point->size()));
    if (bits == nullptr) {
        return false;
    }
    std::memcpy(bits, point->data(), point->size());
    // X509_PUBKEY_set0_param takes `bits` (and the static OBJECTs) on success only.
    if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                               V_ASN1_OBJECT, OBJ_nid2obj(c->nid), bits,
                               static_cast<int>(point->size())) != 1) {
        OPENSSL_free(bits);
        return false;
    }
    return true;
}

}  // namespace certctrl::crypto::ec_der
