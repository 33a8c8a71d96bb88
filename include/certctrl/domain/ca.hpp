#pragma once

#include "certctrl/core/error.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>

namespace certctrl::domain {

/// The subject fields of a certificate or CA.
struct subject_fields {
    std::string common_name;
    std::string organization;
    std::string organizational_unit;
    std::string country;  // ISO 3166 two letters, upper case, or ""
    std::string state;
    std::string locality;
};

/// A self-managed root CA of a user. The private key is only ever held sealed (`enc_private_key`).
struct ca {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::string name;
    std::string key_algorithm;  // ECDSA_P256, ECDSA_P384, RSA_2048, RSA_3072, RSA_4096
    subject_fields subject;
    std::string subject_line;  // RFC 2253 one-line form of the certificate's subject
    std::string cert_pem;
    std::string enc_private_key;
    int key_version = 1;
    std::string serial_number;  // colon hex
    int path_length = -1;       // -1: no constraint
    std::int64_t valid_days = 0;
    std::string key_usage;
    std::string status = "ACTIVE";
    std::int64_t issued_cert_count = 0;
    std::int64_t last_used_at = 0;
    std::int64_t not_before = 0;
    std::int64_t not_after = 0;
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
};

/// A validated create request.
struct ca_input {
    std::string name;
    std::string key_algorithm;  // canonical
    subject_fields subject;
    std::int64_t valid_days = 3650;
    int path_length = -1;
    std::string key_usage;  // canonical, comma-separated
};

/// Parses `{name?, algorithm: "ECDSA"|"RSA"|"ECDSA_P384"..., key_size?, curve_name?, common_name,
/// organization?, organizational_unit?, country?, state?, locality?, valid_days?, max_path_length? (or
/// path_length), key_usage?}`. Errors: bad_request naming the field.
result<ca_input> parse_ca_input(boost::json::object const& body);

/// "ECDSA"/"RSA", the key size in bits and the curve name ("" for RSA) of a canonical algorithm name.
struct algorithm_parts {
    std::string family;
    int key_size = 0;
    std::string curve_name;
};
algorithm_parts split_algorithm(std::string const& canonical);

}  // namespace certctrl::domain
