#pragma once
// DER of EC keys on the named curves we make (P-256, P-384), written from the key's parameters. OpenSSL 3.0
// builds an encoder (and for X509_set_pubkey also a decoder) context for every key it encodes, which costs
// several times more than generating the key; these helpers write the same bytes (tests compare them with
// OpenSSL's) without one. Internal to certctrl_crypto.

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <optional>
#include <string>

namespace certctrl::crypto::ec_der {

/// PKCS#8 PrivateKeyInfo of `key`, byte for byte what i2d_PKCS8_PRIV_KEY_INFO(EVP_PKEY2PKCS8(key)) writes;
/// nothing when `key` is not an EC key on P-256 or P-384 with an uncompressed public point.
std::optional<std::string> pkcs8(EVP_PKEY const* key);

/// Sets the SubjectPublicKeyInfo of `cert` to `key`'s, as X509_set_pubkey() does; false (and nothing set)
/// when `key` is not an EC key on P-256 or P-384.
bool set_public_key(X509* cert, EVP_PKEY const* key);

}  // namespace certctrl::crypto::ec_der
