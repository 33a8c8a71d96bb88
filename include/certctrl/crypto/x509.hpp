#pragma once

#include "certctrl/crypto/keys.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace certctrl::crypto {

/// Distinguished-name fields of a certificate subject (UTF-8). Empty fields are left out of the name.
struct x509_subject {
    std::string common_name, organization, organizational_unit, country, state, locality;
};

struct root_ca_request {
    key_algorithm algorithm = key_algorithm::ecdsa_p256;
    x509_subject subject;  // common_name required (caller validates); empty fields are omitted
    std::int64_t valid_days = 3650;
    int path_length = -1;  // -1 = no pathLenConstraint
    /// Which of cRLSign and digitalSignature to set besides keyCertSign (always set), by name.
    std::string key_usage = "keyCertSign,cRLSign,digitalSignature";
};

/// What a certificate says about itself, as the API shows it.
struct certificate_info {
    std::string serial_hex;  // upper-case colon-separated hex of the serial's magnitude, e.g. "4F:0A:..."
    std::string subject;  // one line, RFC 2253 style (e.g. "CN=My CA,O=Example,C=DE"), UTF-8 left unescaped
    std::string issuer;
    std::int64_t not_before = 0, not_after = 0;  // epoch seconds
    std::string key_algorithm;  // ECDSA_P256, ECDSA_P384, RSA_2048, RSA_3072, RSA_4096 ("" when other)
    bool is_ca = false;
    int path_length = -1;  // -1 when absent
};

struct root_ca {
    std::string cert_pem;
    std::string key_pem;  // PKCS#8
    certificate_info info;
};

/// A new self-signed root: X.509 v3, random positive 128-bit serial (top bit cleared, non-zero),
/// notBefore = now - 60 s, notAfter = now + valid_days, basicConstraints critical CA:TRUE (+ pathlen when
/// >= 0), keyUsage critical keyCertSign plus what key_usage names; subjectKeyIdentifier (hash) and
/// authorityKeyIdentifier (keyid). Signed with SHA-256 (SHA-384 for P-384). CPU-heavy for RSA: run it with
/// async_compute. Throws std::invalid_argument when common_name is empty, valid_days < 1 or
/// path_length < -1, and std::runtime_error when OpenSSL fails (including a field OpenSSL rejects, such as
/// a country that is not two letters or a common name longer than 64 characters).
root_ca create_root_ca(root_ca_request const& req);

/// Facts of the first certificate in a PEM text; nullopt when it does not parse.
std::optional<certificate_info> inspect_certificate_pem(std::string const& pem);

}  // namespace certctrl::crypto
