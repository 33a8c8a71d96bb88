#include "certctrl/crypto/x509.hpp"

#include "certctrl/crypto/random.hpp"

#include "ec_der.hpp"
#include "ossl.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <climits>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace certctrl::crypto {

using namespace ossl;

namespace {
/// SHA-384 for P-384 keys, none for EdDSA (which hashes itself), SHA-256 otherwise.
EVP_MD const* digest_for(EVP_PKEY const* key) {
    if (EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448")) {
        return nullptr;
    }
    bool const p384 = algorithm_of_key(key) == key_algorithm::ecdsa_p384;
    ERR_clear_error();
    return p384 ? EVP_sha384() : EVP_sha256();
}

/// 128 random bits, top bit cleared so the DER INTEGER is positive; never zero.
void set_random_serial(X509* cert) {
    std::string serial = random_bytes(16);
    serial[0] = static_cast<char>(static_cast<unsigned char>(serial[0]) & 0x7f);
    if (serial.find_first_not_of('\0') == std::string::npos) {
        serial.back() = '\x01';
    }
    bn_ptr bn(BN_bin2bn(reinterpret_cast<unsigned char const*>(serial.data()),
                        static_cast<int>(serial.size()), nullptr),
              BN_free);
    if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
        fail("serial");
    }
}

/// SAN DNS names are IA5 strings; the caller validates the names themselves.
void check_dns_names(std::vector<std::string> const& names) {
    if (names.empty()) {
        throw std::invalid_argument("at least one DNS name is required");
    }
    for (std::string const& name : names) {
        if (name.empty() || name.size() > 253) {
            throw std::invalid_argument("DNS name length must be 1 to 253 characters");
        }
        for (char const c : name) {
            auto const u = static_cast<unsigned char>(c);
            if (u <= 0x20 || u >= 0x7f) {
                throw std::invalid_argument("DNS name \"" + name +
                                            "\" has a character outside printable ASCII");
            }
        }
    }
}

/// The longest commonName X.509 allows (ub-common-name).
constexpr std::size_t max_common_name = 64;

void add_name_entry(X509_NAME* name, char const* field, std::string const& value) {
    if (value.empty()) {
        return;
    }
    if (value.size() > static_cast<std::size_t>(INT_MAX) ||
        X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                   reinterpret_cast<unsigned char const*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
        fail((std::string("subject field ") + field + " rejected").c_str());
    }
}

/// Adds one extension described in OpenSSL's configuration syntax (e.g. "critical,CA:TRUE").
void add_extension(X509* cert, X509V3_CTX* ctx, int nid, std::string const& value) {
    ext_ptr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()), X509_EXTENSION_free);
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
        fail((std::string("extension ") + OBJ_nid2sn(nid)).c_str());
    }
}

/// C, ST, L, O, OU, CN: most significant first; the RFC 2253 rendering shows them reversed (CN first).
name_ptr subject_name(x509_subject const& subject, std::string const& common_name) {
    name_ptr name(X509_NAME_new(), X509_NAME_free);
    if (!name) {
        fail("allocation");
    }
    add_name_entry(name.get(), "C", subject.country);
    add_name_entry(name.get(), "ST", subject.state);
    add_name_entry(name.get(), "L", subject.locality);
    add_name_entry(name.get(), "O", subject.organization);
    add_name_entry(name.get(), "OU", subject.organizational_unit);
    add_name_entry(name.get(), "CN", common_name);
    return name;
}

/// The CN of a leaf or CSR: its first DNS name when that fits into a commonName, else none.
std::string common_name_for(std::vector<std::string> const& dns_names) {
    return dns_names.front().size() <= max_common_name ? dns_names.front() : std::string();
}

/// A subjectAltName extension with the DNS names, critical when the subject is empty (RFC 5280 4.2.1.6).
ext_ptr san_extension(std::vector<std::string> const& dns_names, bool critical,
                      std::vector<std::string> const& ip_addresses = {}) {
    gens_ptr gens(GENERAL_NAMES_new(), GENERAL_NAMES_free);
    if (!gens) {
        fail("allocation");
    }
    for (std::string const& ip : ip_addresses) {
        ASN1_OCTET_STRING* addr = a2i_IPADDRESS(ip.c_str());
        GENERAL_NAME* gen = addr != nullptr ? GENERAL_NAME_new() : nullptr;
        if (gen == nullptr) {
            ASN1_OCTET_STRING_free(addr);
            throw std::invalid_argument("not an IP address: " + ip);
        }
        GENERAL_NAME_set0_value(gen, GEN_IPADD, addr);
        if (sk_GENERAL_NAME_push(gens.get(), gen) <= 0) {
            GENERAL_NAME_free(gen);
            fail("subjectAltName");
        }
    }
    for (std::string const& name : dns_names) {
        ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
        if (ia5 == nullptr || ASN1_STRING_set(ia5, name.data(), static_cast<int>(name.size())) != 1) {
            ASN1_IA5STRING_free(ia5);
            fail("subjectAltName");
        }
        GENERAL_NAME* gen = GENERAL_NAME_new();
        if (gen == nullptr) {
            ASN1_IA5STRING_free(ia5);
            fail("allocation");
        }
        GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
        if (sk_GENERAL_NAME_push(gens.get(), gen) <= 0) {
            GENERAL_NAME_free(gen);
            fail("subjectAltName");
        }
    }
    ext_ptr ext(X509V3_EXT_i2d(NID_subject_alt_name, critical ? 1 : 0, gens.get()), X509_EXTENSION_free);
    if (!ext) {
        fail("subjectAltName");
    }
    return ext;
}

std::string serial_hex_of(ASN1_INTEGER const* serial) {
    bn_ptr bn(serial ? ASN1_INTEGER_to_BN(serial, nullptr) : nullptr, BN_free);
    if (!bn) {
        ERR_clear_error();
        return {};
    }
    std::string bytes(static_cast<std::size_t>(BN_num_bytes(bn.get())), '\0');
    BN_bn2bin(bn.get(), reinterpret_cast<unsigned char*>(bytes.data()));
    if (bytes.empty()) {
        bytes.assign(1, '\0');
    }
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out = BN_is_negative(bn.get()) ? "-" : "";
    out.reserve(out.size() + bytes.size() * 3);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        auto const b = static_cast<unsigned char>(bytes[i]);
        if (i != 0) {
            out += ':';
        }
        out += digits[b >> 4];
        out += digits[b & 0x0f];
    }
    return out;
}

std::string name_text(X509_NAME const* name) {
    bio_ptr bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!bio || name == nullptr) {
        return {};
    }
    // RFC 2253 order and escaping, but UTF-8 passed through instead of \XX-escaped.
    unsigned long const flags = XN_FLAG_RFC2253 & ~static_cast<unsigned long>(ASN1_STRFLGS_ESC_MSB);
    if (X509_NAME_print_ex(bio.get(), name, 0, flags) < 0) {
        ERR_clear_error();
        return {};
    }
    return bio_text(bio.get());
}

/// Epoch seconds of an ASN.1 UTCTime/GeneralizedTime (UTC), computed without the process time zone.
std::int64_t epoch_of(ASN1_TIME const* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
        ERR_clear_error();
        return 0;
    }
    using namespace std::chrono;
    sys_days const day = year{tm.tm_year + 1900} / month{static_cast<unsigned>(tm.tm_mon + 1)} /
                         std::chrono::day{static_cast<unsigned>(tm.tm_mday)};
    return static_cast<std::int64_t>(day.time_since_epoch().count()) * 86400 + tm.tm_hour * 3600 +
           tm.tm_min * 60 + tm.tm_sec;
}

// `subject_key`: the certificate's key when the caller has it (reading it back from the certificate would
// decode it).
certificate_info info_of(X509* cert, EVP_PKEY const* subject_key = nullptr) {
    certificate_info info;
    info.serial_hex = serial_hex_of(X509_get0_serialNumber(cert));
    info.subject = name_text(X509_get_subject_name(cert));
    info.issuer = name_text(X509_get_issuer_name(cert));
    info.not_before = epoch_of(X509_get0_notBefore(cert));
    info.not_after = epoch_of(X509_get0_notAfter(cert));
    if (auto const alg = algorithm_of_key(subject_key != nullptr ? subject_key : X509_get0_pubkey(cert))) {
        info.key_algorithm = std::string(to_string(*alg));
    }
    ERR_clear_error();  // X509_get0_pubkey leaves an error behind for unsupported key types
    int critical = 0;
    bc_ptr bc(
        static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, &critical, nullptr)),
        BASIC_CONSTRAINTS_free);
    if (bc) {
        info.is_ca = bc->ca != 0;
        if (info.is_ca && bc->pathlen != nullptr) {
            long const n = ASN1_INTEGER_get(bc->pathlen);
            info.path_length = n < 0 ? -1 : (n > INT_MAX ? INT_MAX : static_cast<int>(n));
        }
    }
    ERR_clear_error();
    return info;
}

}  // namespace

root_ca create_root_ca(root_ca_request const& req) {
    if (req.subject.common_name.empty()) {
        throw std::invalid_argument("root CA needs a common name");
    }
    if (req.valid_days < 1 || req.valid_days > INT_MAX) {
        throw std::invalid_argument("root CA validity out of range");
    }
    if (req.path_length < -1) {
        throw std::invalid_argument("root CA path length must be -1 or more");
    }

    root_ca out;
    out.key_pem = generate_private_key_pem(req.algorithm);
    bio_ptr key_bio = read_bio(out.key_pem);
    pkey_ptr key(key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr) : nullptr,
                 EVP_PKEY_free);
    x509_ptr cert(X509_new(), X509_free);
    if (!key || !cert) {
        fail("allocation");
    }
    if (X509_set_version(cert.get(), X509_VERSION_3) != 1) {
        fail("version");
    }

    set_random_serial(cert.get());

    std::time_t const now = std::time(nullptr);
    if (ASN1_TIME_adj(X509_getm_notBefore(cert.get()), now, 0, -60) == nullptr ||
        ASN1_TIME_adj(X509_getm_notAfter(cert.get()), now, static_cast<int>(req.valid_days), 0) == nullptr) {
        fail("validity");
    }

    name_ptr name = subject_name(req.subject, req.subject.common_name);
    if (X509_set_subject_name(cert.get(), name.get()) != 1 ||
        X509_set_issuer_name(cert.get(), name.get()) != 1) {
        fail("names");
    }
    if (X509_set_pubkey(cert.get(), key.get()) != 1) {
        fail("public key");
    }

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    add_extension(cert.get(), &ctx, NID_basic_constraints,
                  req.path_length >= 0 ? "critical,CA:TRUE,pathlen:" + std::to_string(req.path_length)
                                       : std::string("critical,CA:TRUE"));
    std::string usage = "critical,keyCertSign";
    for (char const* bit : {"cRLSign", "digitalSignature"}) {
        if (req.key_usage.find(bit) != std::string::npos) {
            usage += std::string(",") + bit;
        }
    }
    add_extension(cert.get(), &ctx, NID_key_usage, usage.c_str());
    add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    // "always": OpenSSL leaves the AKID out of self-signed certificates otherwise. It takes the keyid from
    // the subjectKeyIdentifier added just above (issuer == subject).
    add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");

    EVP_MD const* md = req.algorithm == key_algorithm::ecdsa_p384 ? EVP_sha384() : EVP_sha256();
    if (X509_sign(cert.get(), key.get(), md) <= 0) {
        fail("signature");
    }

    out.cert_pem = pem_of(cert.get());
    out.info = info_of(cert.get());
    return out;
}

root_ca tls_alpn_certificate(std::string const& identifier, std::string const& key_authorization) {
    root_ca out;
    out.key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    bio_ptr key_bio = read_bio(out.key_pem);
    pkey_ptr key(key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr) : nullptr,
                 EVP_PKEY_free);
    x509_ptr cert(X509_new(), X509_free);
    if (!key || !cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
        fail("allocation");
    }
    set_random_serial(cert.get());
    std::time_t const now = std::time(nullptr);
    if (ASN1_TIME_adj(X509_getm_notBefore(cert.get()), now, 0, -60) == nullptr ||
        ASN1_TIME_adj(X509_getm_notAfter(cert.get()), now, 1, 0) == nullptr) {
        fail("validity");
    }
    name_ptr name(X509_NAME_new(), X509_NAME_free);
    if (!name ||
        X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<unsigned char const*>(identifier.c_str()), -1, -1,
                                   0) != 1 ||
        X509_set_subject_name(cert.get(), name.get()) != 1 ||
        X509_set_issuer_name(cert.get(), name.get()) != 1 || X509_set_pubkey(cert.get(), key.get()) != 1) {
        fail("names");
    }
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    add_extension(cert.get(), &ctx, NID_subject_alt_name, "DNS:" + identifier);
    // id-pe-acmeIdentifier: extnValue is the DER of an OCTET STRING holding the 32-byte digest.
    std::string const digest = sha256(key_authorization);
    std::string der;
    der.push_back(static_cast<char>(0x04));
    der.push_back(static_cast<char>(digest.size()));
    der += digest;
    std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> value(ASN1_OCTET_STRING_new(),
                                                                                ASN1_OCTET_STRING_free);
    std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> oid(OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1),
                                                                  ASN1_OBJECT_free);
    if (!value || !oid ||
        ASN1_OCTET_STRING_set(value.get(), reinterpret_cast<unsigned char const*>(der.data()),
                              static_cast<int>(der.size())) != 1) {
        fail("acmeIdentifier");
    }
    std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)> ext(
        X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get()), X509_EXTENSION_free);
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) {
        fail("acmeIdentifier");
    }
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
        fail("signature");
    }
    out.cert_pem = pem_of(cert.get());
    out.info = info_of(cert.get());
    return out;
}

std::optional<certificate_info> inspect_certificate_pem(std::string const& pem) {
    bio_ptr bio = read_bio(pem);
    x509_ptr cert(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
    if (!cert) {
        ERR_clear_error();
        return std::nullopt;
    }
    return info_of(cert.get());
}

struct leaf_issuer::impl {
    x509_ptr ca{nullptr, X509_free};
    pkey_ptr ca_key{nullptr, EVP_PKEY_free};
    std::int64_t ca_not_after = 0;
    EVP_MD const* md = nullptr;
};

leaf_issuer::leaf_issuer(std::string const& ca_cert_pem, std::string const& ca_key_pem)
    : impl_(std::make_unique<impl>()) {
    impl_->ca = read_certificate(ca_cert_pem);
    if (!impl_->ca) {
        throw std::invalid_argument("CA certificate does not parse");
    }
    impl_->ca_key = read_private_key(ca_key_pem);
    if (!impl_->ca_key) {
        throw std::invalid_argument("CA private key does not parse");
    }
    EVP_PKEY const* ca_public = X509_get0_pubkey(impl_->ca.get());
    bool const ca_key_matches = ca_public != nullptr && EVP_PKEY_eq(ca_public, impl_->ca_key.get()) == 1;
    ERR_clear_error();
    if (!ca_key_matches) {
        throw std::invalid_argument("CA private key does not match the CA certificate");
    }
    impl_->ca_not_after = epoch_of(X509_get0_notAfter(impl_->ca.get()));
    impl_->md = digest_for(impl_->ca_key.get());
    // Fills the certificate's cached extensions now, so concurrent issue() calls only read it.
    X509_check_purpose(impl_->ca.get(), -1, 0);
    ERR_clear_error();
}

leaf_issuer::~leaf_issuer() = default;
leaf_issuer::leaf_issuer(leaf_issuer&&) noexcept = default;

issued_leaf leaf_issuer::issue(EVP_PKEY* key, leaf_request const& req) const {
    check_dns_names(req.dns_names);
    if (req.valid_seconds < 1) {
        throw std::invalid_argument("leaf validity must be at least one second");
    }
    if (key == nullptr) {
        throw std::invalid_argument("leaf private key does not parse");
    }
    X509* const ca = impl_->ca.get();
    std::time_t const now = std::time(nullptr);
    if (impl_->ca_not_after <= now) {
        throw std::invalid_argument("CA certificate has expired");
    }

    x509_ptr cert(X509_new(), X509_free);
    if (!cert) {
        fail("allocation");
    }
    if (X509_set_version(cert.get(), X509_VERSION_3) != 1) {
        fail("version");
    }
    set_random_serial(cert.get());

    if (ASN1_TIME_adj(X509_getm_notBefore(cert.get()), now, 0, -60) == nullptr) {
        fail("validity");
    }
    // Compared as a difference so that a huge valid_seconds cannot overflow.
    if (req.valid_seconds >= impl_->ca_not_after - static_cast<std::int64_t>(now)) {
        if (X509_set1_notAfter(cert.get(), X509_get0_notAfter(ca)) != 1) {
            fail("validity");
        }
    } else if (ASN1_TIME_adj(X509_getm_notAfter(cert.get()), now, 0, static_cast<long>(req.valid_seconds)) ==
               nullptr) {
        fail("validity");
    }

    name_ptr name = subject_name(req.subject, common_name_for(req.dns_names));
    if (X509_set_subject_name(cert.get(), name.get()) != 1 ||
        X509_set_issuer_name(cert.get(), X509_get_subject_name(ca)) != 1) {
        fail("names");
    }
    if (!ec_der::set_public_key(cert.get(), key) && X509_set_pubkey(cert.get(), key) != 1) {
        fail("public key");
    }

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, cert.get(), nullptr, nullptr, 0);
    add_extension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), &ctx, NID_key_usage,
                  EVP_PKEY_is_a(key, "RSA") ? "critical,digitalSignature,keyEncipherment"
                                            : "critical,digitalSignature");
    add_extension(cert.get(), &ctx, NID_ext_key_usage,
                  req.client_auth ? "serverAuth,clientAuth" : "serverAuth");
    ext_ptr san = san_extension(req.dns_names, X509_NAME_entry_count(name.get()) == 0, req.ip_addresses);
    if (X509_add_ext(cert.get(), san.get(), -1) != 1) {
        fail("extension subjectAltName");
    }
    add_extension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
    // From the issuer's subjectKeyIdentifier; left out when the issuer has none.
    add_extension(cert.get(), &ctx, NID_authority_key_identifier, "keyid");

    if (X509_sign(cert.get(), impl_->ca_key.get(), impl_->md) <= 0) {
        fail("signature");
    }
    issued_leaf out;
    out.cert_pem = pem_of(cert.get());
    out.info = info_of(cert.get(), key);
    return out;
}

issued_leaf issue_leaf(leaf_request const& req) {
    leaf_issuer const issuer(req.ca_cert_pem, req.ca_key_pem);
    pkey_ptr key = read_private_key(req.key_pem);
    if (!key) {
        throw std::invalid_argument("leaf private key does not parse");
    }
    return issuer.issue(key.get(), req);
}

std::string make_csr_der(std::string const& key_pem, std::vector<std::string> const& dns_names) {
    check_dns_names(dns_names);
    pkey_ptr key = read_private_key(key_pem);
    if (!key) {
        throw std::invalid_argument("CSR private key does not parse");
    }
    req_ptr req(X509_REQ_new(), X509_REQ_free);
    if (!req) {
        fail("allocation");
    }
    name_ptr name = subject_name(x509_subject{}, common_name_for(dns_names));
    if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req.get(), name.get()) != 1 ||
        X509_REQ_set_pubkey(req.get(), key.get()) != 1) {
        fail("CSR fields");
    }
    ext_stack_ptr exts(sk_X509_EXTENSION_new_null(), free_extension_stack);
    if (!exts) {
        fail("allocation");
    }
    ext_ptr san = san_extension(dns_names, X509_NAME_entry_count(name.get()) == 0);
    if (sk_X509_EXTENSION_push(exts.get(), san.get()) <= 0) {
        fail("CSR extensions");
    }
    san.release();  // owned by the stack now
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
        fail("CSR extensions");
    }
    if (X509_REQ_sign(req.get(), key.get(), digest_for(key.get())) <= 0) {
        fail("CSR signature");
    }
    return der_of<X509_REQ>(req.get(), i2d_X509_REQ, "CSR encoding");
}

}  // namespace certctrl::crypto
