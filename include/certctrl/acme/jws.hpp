#pragma once

// JSON Web Signature for the ACME client: base64url (RFC 7515 §2), public JWKs (RFC 7517/7518), JWK
// thumbprints (RFC 7638), flattened JWS requests (RFC 8555 §6.2), external account binding (RFC 8555
// §7.3.4), key authorizations (§8.1) and DNS-01 TXT values (§8.4).

#include <openssl/types.h>
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace certctrl::acme {

/// base64url without padding (RFC 7515 §2).
std::string base64url(std::string_view bytes);

/// Decodes base64url without padding. nullopt for anything else: a character outside [A-Za-z0-9_-]
/// (including '=' and the standard alphabet's '+' '/'), a length of 1 modulo 4, or non-zero unused bits in
/// the last character (non-canonical encodings are rejected).
std::optional<std::string> base64url_decode(std::string_view text);

/// The public JWK of a PKCS#8 (or traditional) PEM private key, members in lexicographic order:
/// EC P-256/P-384 {"crv","kty":"EC","x","y"} (x, y are fixed-length big-endian coordinates, 32 or 48 bytes),
/// RSA {"e","kty":"RSA","n"} (minimal big-endian, no leading zero byte).
/// Throws std::invalid_argument for another key type or curve, or an unparsable PEM.
boost::json::object public_jwk(std::string const& key_pem);

/// RFC 7638 thumbprint: base64url(SHA-256(the JWK's required members, lexicographic order, no whitespace)).
/// Throws like public_jwk.
std::string jwk_thumbprint(std::string const& key_pem);

/// "ES256" (P-256), "ES384" (P-384) or "RS256" (RSA). Throws like public_jwk.
std::string jws_algorithm(std::string const& key_pem);

/// A flattened JWS JSON serialization {"protected","payload","signature"} for an ACME POST. The protected
/// header is {"alg", "jwk" | "kid", "nonce", "url"} in that order: "jwk" (the public JWK of the key) when
/// `kid` is empty, "kid" otherwise. `payload` is the JSON text to sign, or "" for POST-as-GET (then the
/// "payload" member is ""). ECDSA signatures are the raw r||s concatenation (RFC 7518 §3.4), each half fixed
/// length (32 or 48 bytes); RSA is PKCS#1 v1.5 with SHA-256.
/// Throws std::invalid_argument for an unusable key, std::runtime_error when OpenSSL fails to sign.
std::string sign(std::string const& key_pem, std::string const& url, std::string const& nonce,
                 std::string const& kid, std::string const& payload);

/// The externalAccountBinding object for newAccount (RFC 8555 §7.3.4): a flattened JWS with protected header
/// {"alg":"HS256","kid":eab_kid,"url":new_account_url}, payload = the account's public JWK, signed with
/// HMAC-SHA256 under `hmac_key` (raw bytes, already decoded from base64url by the caller).
/// Throws std::invalid_argument for an unusable account key or an empty `hmac_key`.
boost::json::object external_account_binding(std::string const& account_key_pem, std::string const& eab_kid,
                                             std::string const& hmac_key, std::string const& new_account_url);

/// RFC 8555 §8.1 key authorization: token "." thumbprint of the account key.
std::string key_authorization(std::string const& token, std::string const& account_key_pem);

/// RFC 8555 §8.4 DNS-01 TXT record value: base64url(SHA-256(key authorization)), 43 characters.
std::string dns01_txt_value(std::string const& key_authorization);

namespace detail {

/// RFC 7638 thumbprint of a JWK object. Only the members required for its "kty" are used ("EC": crv, kty,
/// x, y; "RSA": e, kty, n; "oct": k, kty), so member order and extra members do not matter.
/// Throws std::invalid_argument for an unknown "kty" or a required member that is missing or not a string.
std::string jwk_thumbprint(boost::json::object const& jwk);

/// The public JWK of an OpenSSL key (public or private; EC P-256/P-384 or RSA), as public_jwk.
/// Throws std::invalid_argument for another key type or curve.
boost::json::object public_jwk(EVP_PKEY const* key);

}  // namespace detail

}  // namespace certctrl::acme
