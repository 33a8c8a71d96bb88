#pragma once

#include "certctrl/crypto/keys.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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
/// The self-signed validation certificate of an ACME TLS-ALPN-01 challenge (RFC 8737): a fresh P-256 key, the
/// one dNSName `identifier`, and the critical id-pe-acmeIdentifier extension holding SHA-256 of
/// `key_authorization`. Valid for a day. Throws std::runtime_error when OpenSSL fails.
root_ca tls_alpn_certificate(std::string const& identifier, std::string const& key_authorization);

std::optional<certificate_info> inspect_certificate_pem(std::string const& pem);

/// A leaf certificate signed by a CA this server holds (SELF_CA issuance).
struct leaf_request {
    std::string ca_cert_pem;  // issuer certificate
    std::string ca_key_pem;   // issuer private key (PKCS#8 PEM)
    std::string key_pem;      // the leaf's private key (PKCS#8 PEM); its public key goes into the cert
    /// SANs (DNS); the first one is also the subject CN (left out when longer than the 64 characters a CN
    /// may have); may include "*.x.y". Each 1 to 253 printable ASCII characters without spaces.
    std::vector<std::string> dns_names;
    x509_subject subject;  // optional O/OU/C/ST/L (common_name ignored: the first dns name is used)
    std::int64_t valid_seconds = 90 * 86400;
    bool client_auth = false;
    std::vector<std::string> ip_addresses;  // extra IP SANs (test servers on 127.0.0.1); not for issued
                                            // leaves  // EKU clientAuth besides serverAuth
};

struct issued_leaf {
    std::string cert_pem;  // the leaf only
    certificate_info info;
};

/// X.509 v3 leaf: random positive 128-bit serial, notBefore = now - 60 s, notAfter = min(now + valid_seconds,
/// issuer's notAfter), subjectAltName (DNS names; critical when the subject is empty), basicConstraints
/// critical CA:FALSE, keyUsage critical digitalSignature (+ keyEncipherment for RSA keys), extendedKeyUsage
/// serverAuth (+ clientAuth), SKI (hash), AKI (keyid of the issuer), issuer name = CA subject. Signed with
/// SHA-256 (SHA-384 when the CA key is P-384). Throws std::invalid_argument (no or malformed dns names,
/// valid_seconds < 1, key/cert unparsable, CA key does not match the CA certificate, CA certificate expired),
/// std::runtime_error on OpenSSL failure (including a subject field OpenSSL rejects).
issued_leaf issue_leaf(leaf_request const& req);

/// A CA's certificate and key parsed and checked once (the key matches the certificate), to sign many leaves.
/// issue() may run on several threads at once.
class leaf_issuer {
  public:
    /// Throws std::invalid_argument when either does not parse or the key is not the certificate's.
    leaf_issuer(std::string const& ca_cert_pem, std::string const& ca_key_pem);
    ~leaf_issuer();
    leaf_issuer(leaf_issuer&&) noexcept;
    leaf_issuer(leaf_issuer const&) = delete;
    leaf_issuer& operator=(leaf_issuer const&) = delete;

    /// The leaf of issue_leaf() for `key` (its public key goes into the certificate); the CA and key fields
    /// of `req` are not used. Throws like issue_leaf (an expired CA included).
    issued_leaf issue(EVP_PKEY* key, leaf_request const& req) const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// A PKCS#10 CSR (DER) for an ACME finalize: subject CN = first name (empty subject when it is longer than
/// 64 characters), SAN extension with all `dns_names`, signed with `key_pem` (SHA-256; SHA-384 for P-384).
/// Throws like issue_leaf.
std::string make_csr_der(std::string const& key_pem, std::vector<std::string> const& dns_names);

/// PEM <-> DER helpers. private_key_der: PKCS#8 DER of a PEM private key; private_key_pem_from_der: the
/// reverse (PKCS#8 PEM; traditional RSA/EC DER is accepted too). certificate_der: DER of the FIRST
/// certificate in a PEM text. Throw std::invalid_argument when the input does not parse.
std::string private_key_der(std::string const& pem);
std::string private_key_pem_from_der(std::string const& der);
std::string certificate_der(std::string const& pem);

/// Splits a PEM text into its "-----BEGIN CERTIFICATE-----" blocks (each returned with BEGIN/END lines and a
/// trailing newline), in order; other blocks and text are skipped, as is a BEGIN line without an END line.
std::vector<std::string> split_certificates(std::string const& pem);

/// True when the private key (PEM) is the key of the first certificate in `cert_pem`; false as well when
/// either does not parse.
bool key_matches_certificate(std::string const& key_pem, std::string const& cert_pem);

/// PKCS#12 (DER) of the key and the chain (leaf first; the rest as CA certs), protected by `password`, with
/// `friendly_name` (none when empty): key and certificates encrypted with PBES2/AES-256-CBC (default
/// iteration count), HMAC-SHA-256 MAC. Throws std::runtime_error on any failure, including a key or chain
/// that does not parse, a key that is not the leaf's, or a password containing a NUL character.
std::string make_pkcs12(std::string const& key_pem, std::string const& chain_pem, std::string const& password,
                        std::string const& friendly_name);

/// Result of verifying a chain the way `openssl verify -CAfile root -untrusted intermediates leaf` does:
/// "" when `leaf_and_chain_pem` (leaf first, then intermediates) verifies against `trusted_root_pem` (one or
/// more roots), else OpenSSL's reason text (or a short text of ours when a certificate does not parse).
/// Purpose sslserver, X509_V_FLAG_X509_STRICT not set.
std::string verify_chain(std::string const& leaf_and_chain_pem, std::string const& trusted_root_pem);

}  // namespace certctrl::crypto
