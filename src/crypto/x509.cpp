#include "certctrl/crypto/x509.hpp"

#include "certctrl/crypto/random.hpp"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <climits>
#include <ctime>
#include <memory>
#include <stdexcept>
#include <string_view>

namespace certctrl::crypto {

namespace {

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using name_ptr = std::unique_ptr<X509_NAME, decltype(&X509_NAME_free)>;
using ext_ptr = std::unique_ptr<X509_EXTENSION, decltype(&X509_EXTENSION_free)>;
using bn_ptr = std::unique_ptr<BIGNUM, decltype(&BN_free)>;
using bc_ptr = std::unique_ptr<BASIC_CONSTRAINTS, decltype(&BASIC_CONSTRAINTS_free)>;

[[noreturn]] void fail(char const* what) {
    ERR_clear_error();
    throw std::runtime_error(std::string("root CA creation failed: ") + what);
}

bio_ptr read_bio(std::string const& text) {
    if (text.size() > static_cast<std::size_t>(INT_MAX)) {
        return bio_ptr(nullptr, BIO_free);
    }
    return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), BIO_free);
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long const len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || data == nullptr) {
        return {};
    }
    return std::string(data, static_cast<std::size_t>(len));
}

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

certificate_info info_of(X509* cert) {
    certificate_info info;
    info.serial_hex = serial_hex_of(X509_get0_serialNumber(cert));
    info.subject = name_text(X509_get_subject_name(cert));
    info.issuer = name_text(X509_get_issuer_name(cert));
    info.not_before = epoch_of(X509_get0_notBefore(cert));
    info.not_after = epoch_of(X509_get0_notAfter(cert));
    if (auto const alg = algorithm_of_key(X509_get0_pubkey(cert))) {
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

    // 128 random bits, top bit cleared so the DER INTEGER is positive; never zero.
    std::string serial = random_bytes(16);
    serial[0] = static_cast<char>(static_cast<unsigned char>(serial[0]) & 0x7f);
    if (serial.find_first_not_of('\0') == std::string::npos) {
        serial.back() = '\x01';
    }
    bn_ptr bn(BN_bin2bn(reinterpret_cast<unsigned char const*>(serial.data()),
                        static_cast<int>(serial.size()), nullptr),
              BN_free);
    if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
        fail("serial");
    }

    std::time_t const now = std::time(nullptr);
    if (ASN1_TIME_adj(X509_getm_notBefore(cert.get()), now, 0, -60) == nullptr ||
        ASN1_TIME_adj(X509_getm_notAfter(cert.get()), now, static_cast<int>(req.valid_days), 0) == nullptr) {
        fail("validity");
    }

    name_ptr name(X509_NAME_new(), X509_NAME_free);
    if (!name) {
        fail("allocation");
    }
    // Most significant first; the RFC 2253 rendering shows them reversed (CN first).
    add_name_entry(name.get(), "C", req.subject.country);
    add_name_entry(name.get(), "ST", req.subject.state);
    add_name_entry(name.get(), "L", req.subject.locality);
    add_name_entry(name.get(), "O", req.subject.organization);
    add_name_entry(name.get(), "OU", req.subject.organizational_unit);
    add_name_entry(name.get(), "CN", req.subject.common_name);
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

    bio_ptr pem(BIO_new(BIO_s_mem()), BIO_free);
    if (!pem || PEM_write_bio_X509(pem.get(), cert.get()) != 1) {
        fail("PEM encoding");
    }
    out.cert_pem = bio_text(pem.get());
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

}  // namespace certctrl::crypto
