#pragma once

#include "certctrl/core/error.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace certctrl::domain {

/// An ACME account (or a SELF_CA issuing profile). The account key and the EAB HMAC key are only ever held
/// sealed (`enc_*`, see crypto::keyring) and never leave the service layer.
struct acme_account {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::string name;
    std::string email;
    std::string provider;               // letsencrypt, letsencrypt-staging, zerossl, google, custom, SELF_CA
    std::string directory_url;          // empty for SELF_CA
    std::optional<std::string> kid;     // account URL once registered with the CA
    std::optional<std::int64_t> ca_id;  // SELF_CA only
    std::string key_algorithm;          // of the account key; empty for SELF_CA
    std::string enc_account_key;        // sealed PKCS#8 PEM
    std::optional<std::string> eab_kid;
    std::string enc_eab_hmac;                       // sealed EAB HMAC key
    std::optional<std::string> leaf_key_algorithm;  // SELF_CA: RSA or ECDSA
    std::optional<std::int64_t> leaf_rsa_bits;
    std::optional<std::string> leaf_ec_curve;
    std::optional<std::int64_t> cert_valid_seconds;
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
};

/// A validated create request. Provider names are canonical; the directory URL is filled in for known
/// providers.
struct acme_account_input {
    std::string name;
    std::string email;
    std::string provider;
    std::string directory_url;
    std::string key_algorithm;  // ECDSA_P256 unless asked; empty for SELF_CA
    std::optional<std::int64_t> ca_id;
    std::optional<std::string> eab_kid;
    std::string eab_hmac_key;  // raw bytes
    std::optional<std::string> leaf_key_algorithm;
    std::optional<std::int64_t> leaf_rsa_bits;
    std::optional<std::string> leaf_ec_curve;
    std::optional<std::int64_t> cert_valid_seconds;
};

/// Parses and validates a create body: {name, email?, provider, directory_url? (custom), key_algorithm?,
/// ca_id + leaf_key_algorithm/leaf_rsa_bits/leaf_ec_curve/cert_valid_seconds (SELF_CA), eab_kid +
/// eab_hmac_key (or eab: {kid, hmac_key})}. Errors: bad_request naming the field.
result<acme_account_input> parse_acme_account_input(boost::json::object const& body);

/// The directory URL of a known provider ("" for custom and SELF_CA; nullopt for an unknown provider).
std::optional<std::string> provider_directory(std::string const& canonical_provider);

}  // namespace certctrl::domain
