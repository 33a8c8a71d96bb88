#include "certctrl/crypto/x509.hpp"
#include "certctrl/crypto/keys.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/pkcs7.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <climits>
#include <cstdint>
#include <ctime>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace certctrl::crypto {
namespace {

using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using bc_ptr = std::unique_ptr<BASIC_CONSTRAINTS, decltype(&BASIC_CONSTRAINTS_free)>;
using store_ptr = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;
using store_ctx_ptr = std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)>;

x509_ptr parse_cert(std::string const& pem) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    return x509_ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
}

pkey_ptr parse_key(std::string const& pem) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    return pkey_ptr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
}

std::string to_pem(X509* cert) {
    bio_ptr bio(BIO_new(BIO_s_mem()), BIO_free);
    EXPECT_EQ(PEM_write_bio_X509(bio.get(), cert), 1);
    char* data = nullptr;
    long const len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

/// The serial as BN_bn2hex prints it (upper case, whole bytes), with a colon between bytes.
std::string expected_serial_hex(X509 const* cert) {
    std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr),
                                                   BN_free);
    char* hex = BN_bn2hex(bn.get());
    std::string const plain(hex);
    OPENSSL_free(hex);
    std::string out;
    for (std::size_t i = 0; i < plain.size(); i += 2) {
        if (i != 0) {
            out += ':';
        }
        out += plain.substr(i, 2);
    }
    return out;
}

std::string entry_text(X509_NAME const* name, int nid, int* type = nullptr) {
    int const i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0) {
        return "<absent>";
    }
    ASN1_STRING const* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    if (type != nullptr) {
        *type = ASN1_STRING_type(s);
    }
    return std::string(reinterpret_cast<char const*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
}

void expect_same_info(certificate_info const& a, certificate_info const& b) {
    EXPECT_EQ(a.serial_hex, b.serial_hex);
    EXPECT_EQ(a.subject, b.subject);
    EXPECT_EQ(a.issuer, b.issuer);
    EXPECT_EQ(a.not_before, b.not_before);
    EXPECT_EQ(a.not_after, b.not_after);
    EXPECT_EQ(a.key_algorithm, b.key_algorithm);
    EXPECT_EQ(a.is_ca, b.is_ca);
    EXPECT_EQ(a.path_length, b.path_length);
}

bool is_colon_hex(std::string const& s) {
    static std::regex const re("^[0-9A-F]{2}(:[0-9A-F]{2})*$");
    return std::regex_match(s, re);
}

/// Everything a root must get right, for one key algorithm.
void expect_valid_root(key_algorithm alg, int path_length, int signature_nid) {
    SCOPED_TRACE(std::string(to_string(alg)));
    root_ca_request req;
    req.algorithm = alg;
    req.subject.common_name = "Test Root " + std::string(to_string(alg));
    req.subject.organization = "Example";
    req.subject.country = "DE";
    req.valid_days = 825;
    req.path_length = path_length;

    std::int64_t const before = std::time(nullptr);
    root_ca const ca = create_root_ca(req);
    std::int64_t const after = std::time(nullptr);

    x509_ptr cert = parse_cert(ca.cert_pem);
    pkey_ptr key = parse_key(ca.key_pem);
    ASSERT_TRUE(cert);
    ASSERT_TRUE(key);
    EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);

    // Self-signed with the returned key, and that key is the certificate's.
    EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(cert.get())), 1);
    EXPECT_EQ(X509_verify(cert.get(), key.get()), 1);
    EXPECT_EQ(X509_check_private_key(cert.get(), key.get()), 1);
    pkey_ptr other = parse_key(generate_private_key_pem(alg));
    EXPECT_EQ(X509_check_private_key(cert.get(), other.get()), 0);
    EXPECT_NE(X509_verify(cert.get(), other.get()), 1);
    ERR_clear_error();
    EXPECT_EQ(algorithm_of_pem(ca.key_pem), alg);
    EXPECT_EQ(X509_get_signature_nid(cert.get()), signature_nid);

    // Names.
    std::string const expected_subject = "CN=" + req.subject.common_name + ",O=Example,C=DE";
    EXPECT_EQ(ca.info.subject, expected_subject);
    EXPECT_EQ(ca.info.issuer, expected_subject);
    EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())), 0);
    EXPECT_EQ(X509_check_issued(cert.get(), cert.get()), X509_V_OK);

    // basicConstraints: critical, CA, pathlen as asked.
    int critical = -1;
    bc_ptr bc(static_cast<BASIC_CONSTRAINTS*>(
                  X509_get_ext_d2i(cert.get(), NID_basic_constraints, &critical, nullptr)),
              BASIC_CONSTRAINTS_free);
    ASSERT_TRUE(bc);
    EXPECT_EQ(critical, 1);
    EXPECT_NE(bc->ca, 0);
    if (path_length < 0) {
        EXPECT_EQ(bc->pathlen, nullptr);
    } else {
        ASSERT_NE(bc->pathlen, nullptr);
        EXPECT_EQ(ASN1_INTEGER_get(bc->pathlen), path_length);
    }
    EXPECT_EQ(X509_get_pathlen(cert.get()), path_length);
    EXPECT_EQ(X509_check_ca(cert.get()), 1);
    EXPECT_TRUE(ca.info.is_ca);
    EXPECT_EQ(ca.info.path_length, path_length);

    // keyUsage: critical, exactly keyCertSign + cRLSign + digitalSignature.
    ASSERT_NE(X509_get_extension_flags(cert.get()) & EXFLAG_KUSAGE, 0u);
    EXPECT_EQ(X509_get_key_usage(cert.get()),
              static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN | KU_DIGITAL_SIGNATURE));
    int const ku = X509_get_ext_by_NID(cert.get(), NID_key_usage, -1);
    ASSERT_GE(ku, 0);
    EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(cert.get(), ku)), 1);

    // subjectKeyIdentifier = SHA-1 of the public key bits; authorityKeyIdentifier points at it.
    ASN1_OCTET_STRING const* skid = X509_get0_subject_key_id(cert.get());
    ASN1_OCTET_STRING const* akid = X509_get0_authority_key_id(cert.get());
    ASSERT_NE(skid, nullptr);
    ASSERT_NE(akid, nullptr);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    ASSERT_EQ(X509_pubkey_digest(cert.get(), EVP_sha1(), digest, &digest_len), 1);
    EXPECT_EQ(std::string(reinterpret_cast<char const*>(ASN1_STRING_get0_data(skid)),
                          static_cast<std::size_t>(ASN1_STRING_length(skid))),
              std::string(reinterpret_cast<char const*>(digest), digest_len));
    EXPECT_EQ(ASN1_OCTET_STRING_cmp(skid, akid), 0);

    // OpenSSL accepts it as a trust anchor under strict RFC 5280 checks.
    store_ptr store(X509_STORE_new(), X509_STORE_free);
    store_ctx_ptr ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
    ASSERT_EQ(X509_STORE_add_cert(store.get(), cert.get()), 1);
    ASSERT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr), 1);
    X509_STORE_CTX_set_flags(ctx.get(), X509_V_FLAG_X509_STRICT);
    EXPECT_EQ(X509_verify_cert(ctx.get()), 1)
        << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));

    // Validity: notBefore = now - 60 s, notAfter = now + valid_days.
    EXPECT_GE(ca.info.not_before, before - 60);
    EXPECT_LE(ca.info.not_before, after - 60);
    EXPECT_GE(ca.info.not_after, before + req.valid_days * 86400);
    EXPECT_LE(ca.info.not_after, after + req.valid_days * 86400);
    EXPECT_EQ(ca.info.not_after - ca.info.not_before, req.valid_days * 86400 + 60);
    int days = 0, secs = 0;
    ASSERT_EQ(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())),
              1);
    EXPECT_EQ(std::int64_t{days} * 86400 + secs, ca.info.not_after - ca.info.not_before);

    // Serial: positive, non-zero, at most 127 bits, reported as colon hex.
    std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
        ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr), BN_free);
    ASSERT_TRUE(serial);
    EXPECT_FALSE(BN_is_negative(serial.get()));
    EXPECT_FALSE(BN_is_zero(serial.get()));
    EXPECT_LE(BN_num_bits(serial.get()), 127);
    EXPECT_TRUE(is_colon_hex(ca.info.serial_hex)) << ca.info.serial_hex;
    EXPECT_EQ(ca.info.serial_hex, expected_serial_hex(cert.get()));

    EXPECT_EQ(ca.info.key_algorithm, to_string(alg));

    // Inspecting the PEM gives the same facts.
    auto const inspected = inspect_certificate_pem(ca.cert_pem);
    ASSERT_TRUE(inspected);
    expect_same_info(*inspected, ca.info);
}

TEST(X509RootCa, EcdsaP256IsAValidSelfSignedRootWithoutPathLength) {
    expect_valid_root(key_algorithm::ecdsa_p256, -1, NID_ecdsa_with_SHA256);
}

TEST(X509RootCa, EcdsaP384IsSignedWithSha384AndKeepsPathLengthZero) {
    expect_valid_root(key_algorithm::ecdsa_p384, 0, NID_ecdsa_with_SHA384);
}

TEST(X509RootCa, Rsa2048IsAValidSelfSignedRoot) {
    expect_valid_root(key_algorithm::rsa_2048, 2, NID_sha256WithRSAEncryption);
}

TEST(X509RootCa, SubjectFieldsRoundTripIncludingUtf8) {
    root_ca_request req;
    req.subject = {
        "Zertifizierungsstelle Ä", "Müller & Söhne GmbH", "IT-Sicherheit", "DE", "Bayern", "München"};
    root_ca const ca = create_root_ca(req);
    x509_ptr cert = parse_cert(ca.cert_pem);
    ASSERT_TRUE(cert);
    X509_NAME const* name = X509_get_subject_name(cert.get());
    EXPECT_EQ(X509_NAME_entry_count(name), 6);
    int type = 0;
    EXPECT_EQ(entry_text(name, NID_commonName), "Zertifizierungsstelle Ä");
    EXPECT_EQ(entry_text(name, NID_organizationName, &type), "Müller & Söhne GmbH");
    EXPECT_EQ(type, V_ASN1_UTF8STRING);
    EXPECT_EQ(entry_text(name, NID_organizationalUnitName), "IT-Sicherheit");
    EXPECT_EQ(entry_text(name, NID_countryName, &type), "DE");
    EXPECT_EQ(type, V_ASN1_PRINTABLESTRING);
    EXPECT_EQ(entry_text(name, NID_stateOrProvinceName), "Bayern");
    EXPECT_EQ(entry_text(name, NID_localityName), "München");
    // Most significant first in the certificate (C), shown reversed in the RFC 2253 line.
    EXPECT_EQ(OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(name, 0))), NID_countryName);
    EXPECT_EQ(ca.info.subject,
              "CN=Zertifizierungsstelle Ä,OU=IT-Sicherheit,O=Müller & Söhne GmbH,L=München,ST=Bayern,C=DE");
    EXPECT_EQ(ca.info.issuer, ca.info.subject);
    EXPECT_EQ(X509_NAME_cmp(name, X509_get_issuer_name(cert.get())), 0);
}

TEST(X509RootCa, EmptySubjectFieldsAreOmittedAndSpecialCharactersEscaped) {
    root_ca_request req;
    req.subject.common_name = "Only CN";
    root_ca const only_cn = create_root_ca(req);
    x509_ptr cert = parse_cert(only_cn.cert_pem);
    ASSERT_TRUE(cert);
    EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(cert.get())), 1);
    EXPECT_EQ(entry_text(X509_get_subject_name(cert.get()), NID_organizationName), "<absent>");
    EXPECT_EQ(only_cn.info.subject, "CN=Only CN");
    EXPECT_EQ(only_cn.info.issuer, "CN=Only CN");

    req.subject.organization = "Example, Inc.";
    req.subject.locality = "Berlin";
    root_ca const escaped = create_root_ca(req);
    EXPECT_EQ(escaped.info.subject, "CN=Only CN,O=Example\\, Inc.,L=Berlin");
    x509_ptr cert2 = parse_cert(escaped.cert_pem);
    ASSERT_TRUE(cert2);
    EXPECT_EQ(entry_text(X509_get_subject_name(cert2.get()), NID_organizationName), "Example, Inc.");
}

TEST(X509RootCa, SerialsAreUniqueAndColonHex) {
    root_ca_request req;
    req.subject.common_name = "Serial test";
    root_ca const a = create_root_ca(req);
    root_ca const b = create_root_ca(req);
    EXPECT_TRUE(is_colon_hex(a.info.serial_hex)) << a.info.serial_hex;
    EXPECT_TRUE(is_colon_hex(b.info.serial_hex)) << b.info.serial_hex;
    EXPECT_NE(a.info.serial_hex, b.info.serial_hex);
    EXPECT_NE(a.key_pem, b.key_pem);
    // 128 random bits with the top one cleared: at most 16 bytes, and almost always more than 8.
    EXPECT_LE(a.info.serial_hex.size(), 16u * 3 - 1);
    EXPECT_GT(a.info.serial_hex.size(), 8u * 3 - 1);
}

TEST(X509RootCa, ValidityFollowsValidDaysBeyond2050) {
    for (std::int64_t const days :
         {std::int64_t{1}, std::int64_t{30}, std::int64_t{3650}, std::int64_t{36500}}) {
        SCOPED_TRACE(days);
        root_ca_request req;
        req.subject.common_name = "Validity";
        req.valid_days = days;
        std::int64_t const before = std::time(nullptr);
        root_ca const ca = create_root_ca(req);
        std::int64_t const after = std::time(nullptr);
        EXPECT_GE(ca.info.not_before, before - 60);
        EXPECT_LE(ca.info.not_before, after - 60);
        EXPECT_GE(ca.info.not_after, before + days * 86400);
        EXPECT_LE(ca.info.not_after, after + days * 86400);
        x509_ptr cert = parse_cert(ca.cert_pem);
        ASSERT_TRUE(cert);
        // OpenSSL agrees the certificate is valid right now.
        EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(cert.get())), 0);
        EXPECT_GT(X509_cmp_current_time(X509_get0_notAfter(cert.get())), 0);
    }
}

TEST(X509RootCa, RejectsInvalidRequests) {
    root_ca_request req;
    req.subject.common_name = "Bad";
    auto with = [&](auto change) {
        root_ca_request r = req;
        change(r);
        return r;
    };
    EXPECT_THROW(create_root_ca(with([](root_ca_request& r) { r.subject.common_name.clear(); })),
                 std::invalid_argument);
    EXPECT_THROW(create_root_ca(with([](root_ca_request& r) { r.valid_days = 0; })), std::invalid_argument);
    EXPECT_THROW(create_root_ca(with([](root_ca_request& r) { r.valid_days = std::int64_t{INT_MAX} + 1; })),
                 std::invalid_argument);
    EXPECT_THROW(create_root_ca(with([](root_ca_request& r) { r.path_length = -2; })), std::invalid_argument);
    // OpenSSL's own limits: countryName is exactly two characters, commonName at most 64.
    EXPECT_THROW(create_root_ca(with([](root_ca_request& r) { r.subject.country = "DEU"; })),
                 std::runtime_error);
    EXPECT_THROW(
        create_root_ca(with([](root_ca_request& r) { r.subject.common_name = std::string(65, 'x'); })),
        std::runtime_error);
    EXPECT_EQ(ERR_peek_error(), 0u);
}

/// A certificate built by hand with fixed times, an Ed25519 key and optionally basicConstraints CA:FALSE.
std::string hand_made_cert(bool with_ca_false) {
    pkey_ptr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), EVP_PKEY_free);
    x509_ptr cert(X509_new(), X509_free);
    EXPECT_TRUE(key && cert);
    EXPECT_EQ(X509_set_version(cert.get(), X509_VERSION_3), 1);
    EXPECT_EQ(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 0x0a1b2c), 1);
    EXPECT_EQ(
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<unsigned char const*>("leaf, with comma"), -1, -1, 0),
        1);
    EXPECT_EQ(X509_NAME_add_entry_by_txt(X509_get_issuer_name(cert.get()), "CN", MBSTRING_UTF8,
                                         reinterpret_cast<unsigned char const*>("Issuer"), -1, -1, 0),
              1);
    // UTCTime and GeneralizedTime: 2030-01-01T00:00:00Z and 2060-06-15T12:34:56Z.
    EXPECT_EQ(ASN1_TIME_set_string(X509_getm_notBefore(cert.get()), "300101000000Z"), 1);
    EXPECT_EQ(ASN1_TIME_set_string(X509_getm_notAfter(cert.get()), "20600615123456Z"), 1);
    EXPECT_EQ(X509_set_pubkey(cert.get(), key.get()), 1);
    if (with_ca_false) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:FALSE");
        EXPECT_NE(ext, nullptr);
        EXPECT_EQ(X509_add_ext(cert.get(), ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    EXPECT_GT(X509_sign(cert.get(), key.get(), nullptr), 0);
    return to_pem(cert.get());
}

TEST(X509Inspect, ReportsFixedTimesOtherKeysAndNonCaCertificates) {
    for (bool const with_ca_false : {false, true}) {
        SCOPED_TRACE(with_ca_false);
        auto const info = inspect_certificate_pem(hand_made_cert(with_ca_false));
        ASSERT_TRUE(info);
        EXPECT_EQ(info->serial_hex, "0A:1B:2C");
        EXPECT_EQ(info->subject, "CN=leaf\\, with comma");
        EXPECT_EQ(info->issuer, "CN=Issuer");
        EXPECT_EQ(info->not_before, 1893456000);
        EXPECT_EQ(info->not_after, 2854528496);
        EXPECT_EQ(info->key_algorithm, "");
        EXPECT_FALSE(info->is_ca);
        EXPECT_EQ(info->path_length, -1);
    }
}

TEST(X509Inspect, GarbageAndEmptyGiveNullopt) {
    root_ca_request req;
    req.subject.common_name = "Truncated";
    root_ca const ca = create_root_ca(req);
    std::string const truncated =
        ca.cert_pem.substr(0, ca.cert_pem.size() / 2) + "\n-----END CERTIFICATE-----\n";
    for (std::string const& text : {std::string(), std::string("garbage"), std::string(1000, '\0'),
                                    std::string("-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END "
                                                "CERTIFICATE-----\n"),
                                    std::string("-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END "
                                                "CERTIFICATE-----\n"),
                                    truncated, ca.key_pem}) {
        SCOPED_TRACE(text);
        EXPECT_FALSE(inspect_certificate_pem(text));
        EXPECT_EQ(ERR_peek_error(), 0u);
    }
}

TEST(X509Inspect, ReturnsTheFirstOfSeveralCertificates) {
    root_ca_request req;
    req.subject.common_name = "First";
    root_ca const first = create_root_ca(req);
    req.subject.common_name = "Second";
    req.algorithm = key_algorithm::ecdsa_p384;
    req.path_length = 0;
    root_ca const second = create_root_ca(req);

    auto const a = inspect_certificate_pem(first.cert_pem + second.cert_pem);
    ASSERT_TRUE(a);
    expect_same_info(*a, first.info);
    EXPECT_EQ(a->subject, "CN=First");

    auto const b = inspect_certificate_pem(second.cert_pem + first.cert_pem);
    ASSERT_TRUE(b);
    expect_same_info(*b, second.info);
    EXPECT_EQ(b->key_algorithm, "ECDSA_P384");
    EXPECT_EQ(b->path_length, 0);

    // Text and other PEM blocks before the certificate are skipped.
    auto const c = inspect_certificate_pem("bundle:\n" + first.key_pem + second.cert_pem);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->serial_hex, second.info.serial_hex);
}

// ---------------------------------------------------------------------------------------------------------
// Leaf issuance, CSRs, conversions, PKCS#12 and chain verification.

using req_ptr = std::unique_ptr<X509_REQ, decltype(&X509_REQ_free)>;
using gens_ptr = std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)>;
using p12_ptr = std::unique_ptr<PKCS12, decltype(&PKCS12_free)>;

std::string octets(ASN1_OCTET_STRING const* s) {
    if (s == nullptr) {
        return "<absent>";
    }
    return std::string(reinterpret_cast<char const*>(ASN1_STRING_get0_data(s)),
                       static_cast<std::size_t>(ASN1_STRING_length(s)));
}

std::vector<std::string> dns_names_of(GENERAL_NAMES const* gens) {
    std::vector<std::string> out;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); ++i) {
        GENERAL_NAME const* gen = sk_GENERAL_NAME_value(gens, i);
        int type = 0;
        auto const* value = static_cast<ASN1_STRING const*>(GENERAL_NAME_get0_value(gen, &type));
        EXPECT_EQ(type, GEN_DNS);
        out.emplace_back(reinterpret_cast<char const*>(ASN1_STRING_get0_data(value)),
                         static_cast<std::size_t>(ASN1_STRING_length(value)));
    }
    return out;
}

std::vector<std::string> cert_dns_names(X509* cert) {
    gens_ptr gens(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)),
                  GENERAL_NAMES_free);
    if (!gens) {
        return {"<no SAN>"};
    }
    return dns_names_of(gens.get());
}

bool ext_critical(X509* cert, int nid) {
    int const i = X509_get_ext_by_NID(cert, nid, -1);
    EXPECT_GE(i, 0) << OBJ_nid2sn(nid);
    return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, i)) == 1;
}

root_ca make_root(key_algorithm alg, std::int64_t valid_days = 3650) {
    root_ca_request req;
    req.algorithm = alg;
    req.subject.common_name = "Leaf Test Root " + std::string(to_string(alg));
    req.subject.organization = "Example";
    req.valid_days = valid_days;
    return create_root_ca(req);
}

/// An intermediate CA (P-256, pathlen 0) signed by `root`, built by hand.
root_ca make_intermediate(root_ca const& root) {
    root_ca out;
    out.key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    pkey_ptr key = parse_key(out.key_pem);
    pkey_ptr root_key = parse_key(root.key_pem);
    x509_ptr root_cert = parse_cert(root.cert_pem);
    x509_ptr cert(X509_new(), X509_free);
    EXPECT_TRUE(key && root_key && root_cert && cert);
    EXPECT_EQ(X509_set_version(cert.get(), X509_VERSION_3), 1);
    EXPECT_EQ(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 4242), 1);
    EXPECT_NE(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600), nullptr);
    EXPECT_NE(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 86400), nullptr);
    EXPECT_EQ(
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<unsigned char const*>("Test Intermediate"), -1, -1, 0),
        1);
    EXPECT_EQ(X509_set_issuer_name(cert.get(), X509_get_subject_name(root_cert.get())), 1);
    EXPECT_EQ(X509_set_pubkey(cert.get(), key.get()), 1);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, root_cert.get(), cert.get(), nullptr, nullptr, 0);
    for (auto const& [nid, value] :
         {std::pair<int, char const*>{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
          {NID_key_usage, "critical,keyCertSign,cRLSign"},
          {NID_subject_key_identifier, "hash"},
          {NID_authority_key_identifier, "keyid"}}) {
        X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value);
        EXPECT_NE(ext, nullptr);
        EXPECT_EQ(X509_add_ext(cert.get(), ext, -1), 1);
        X509_EXTENSION_free(ext);
    }
    EXPECT_GT(X509_sign(cert.get(), root_key.get(), EVP_sha256()), 0);
    out.cert_pem = to_pem(cert.get());
    return out;
}

/// Everything a leaf must get right, for one CA/leaf key pairing.
void expect_valid_leaf(key_algorithm ca_alg, key_algorithm leaf_alg, bool client_auth, int signature_nid) {
    SCOPED_TRACE(std::string(to_string(ca_alg)) + " CA, " + std::string(to_string(leaf_alg)) + " leaf");
    root_ca const ca = make_root(ca_alg);
    leaf_request req;
    req.ca_cert_pem = ca.cert_pem;
    req.ca_key_pem = ca.key_pem;
    req.key_pem = generate_private_key_pem(leaf_alg);
    req.dns_names = {"www.example.com", "*.apps.example.com", "example.com"};
    req.subject.common_name = "ignored";
    req.subject.organization = "Example";
    req.subject.country = "DE";
    req.valid_seconds = 7 * 86400;
    req.client_auth = client_auth;

    std::int64_t const before = std::time(nullptr);
    issued_leaf const leaf = issue_leaf(req);
    std::int64_t const after = std::time(nullptr);
    EXPECT_EQ(ERR_peek_error(), 0u);

    // Exactly one certificate, and OpenSSL verifies it against the root for TLS servers.
    EXPECT_EQ(split_certificates(leaf.cert_pem).size(), 1u);
    EXPECT_EQ(verify_chain(leaf.cert_pem, ca.cert_pem), "");
    x509_ptr cert = parse_cert(leaf.cert_pem);
    x509_ptr root = parse_cert(ca.cert_pem);
    ASSERT_TRUE(cert);
    ASSERT_TRUE(root);
    EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);
    EXPECT_EQ(X509_get_signature_nid(cert.get()), signature_nid);
    EXPECT_EQ(X509_check_issued(root.get(), cert.get()), X509_V_OK);
    EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(root.get())), 0);
    EXPECT_EQ(leaf.info.issuer, ca.info.subject);

    // Names: SANs as given, CN = first name, O and C from the request.
    EXPECT_EQ(cert_dns_names(cert.get()), req.dns_names);
    EXPECT_EQ(entry_text(X509_get_subject_name(cert.get()), NID_commonName), "www.example.com");
    EXPECT_EQ(leaf.info.subject, "CN=www.example.com,O=Example,C=DE");
    EXPECT_FALSE(ext_critical(cert.get(), NID_subject_alt_name));
    EXPECT_EQ(X509_check_host(cert.get(), "foo.apps.example.com", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_host(cert.get(), "example.com", 0, 0, nullptr), 1);
    EXPECT_NE(X509_check_host(cert.get(), "other.example.com", 0, 0, nullptr), 1);

    // basicConstraints critical CA:FALSE.
    int critical = -1;
    bc_ptr bc(static_cast<BASIC_CONSTRAINTS*>(
                  X509_get_ext_d2i(cert.get(), NID_basic_constraints, &critical, nullptr)),
              BASIC_CONSTRAINTS_free);
    ASSERT_TRUE(bc);
    EXPECT_EQ(critical, 1);
    EXPECT_EQ(bc->ca, 0);
    EXPECT_EQ(X509_check_ca(cert.get()), 0);
    EXPECT_FALSE(leaf.info.is_ca);
    EXPECT_EQ(leaf.info.path_length, -1);

    // keyUsage (critical): keyEncipherment only for RSA keys. EKU: serverAuth, clientAuth when asked.
    bool const rsa = leaf_alg == key_algorithm::rsa_2048;
    EXPECT_EQ(X509_get_key_usage(cert.get()),
              static_cast<std::uint32_t>(KU_DIGITAL_SIGNATURE | (rsa ? KU_KEY_ENCIPHERMENT : 0)));
    EXPECT_TRUE(ext_critical(cert.get(), NID_key_usage));
    EXPECT_EQ(X509_get_extended_key_usage(cert.get()),
              static_cast<std::uint32_t>(XKU_SSL_SERVER | (client_auth ? XKU_SSL_CLIENT : 0)));
    EXPECT_FALSE(ext_critical(cert.get(), NID_ext_key_usage));
    EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
    EXPECT_EQ(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0) == 1, client_auth);

    // SKI = SHA-1 of the leaf key; AKI = the root's SKI.
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    ASSERT_EQ(X509_pubkey_digest(cert.get(), EVP_sha1(), digest, &digest_len), 1);
    EXPECT_EQ(octets(X509_get0_subject_key_id(cert.get())),
              std::string(reinterpret_cast<char const*>(digest), digest_len));
    ASSERT_NE(X509_get0_authority_key_id(cert.get()), nullptr);
    EXPECT_EQ(octets(X509_get0_authority_key_id(cert.get())), octets(X509_get0_subject_key_id(root.get())));
    EXPECT_NE(octets(X509_get0_subject_key_id(cert.get())), octets(X509_get0_subject_key_id(root.get())));

    // The leaf key is in the certificate; another key, the CA's key and the CA certificate do not match.
    EXPECT_TRUE(key_matches_certificate(req.key_pem, leaf.cert_pem));
    EXPECT_FALSE(key_matches_certificate(generate_private_key_pem(leaf_alg), leaf.cert_pem));
    EXPECT_FALSE(key_matches_certificate(ca.key_pem, leaf.cert_pem));
    EXPECT_FALSE(key_matches_certificate(req.key_pem, ca.cert_pem));
    EXPECT_EQ(leaf.info.key_algorithm, to_string(leaf_alg));

    // Validity: now - 60 s to now + valid_seconds (shorter than the CA's).
    EXPECT_GE(leaf.info.not_before, before - 60);
    EXPECT_LE(leaf.info.not_before, after - 60);
    EXPECT_GE(leaf.info.not_after, before + req.valid_seconds);
    EXPECT_LE(leaf.info.not_after, after + req.valid_seconds);
    EXPECT_EQ(leaf.info.not_after - leaf.info.not_before, req.valid_seconds + 60);

    // Serial: positive, 128-bit at most, differs from another leaf's.
    std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(
        ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr), BN_free);
    ASSERT_TRUE(serial);
    EXPECT_FALSE(BN_is_negative(serial.get()));
    EXPECT_FALSE(BN_is_zero(serial.get()));
    EXPECT_LE(BN_num_bits(serial.get()), 127);
    EXPECT_EQ(leaf.info.serial_hex, expected_serial_hex(cert.get()));
    issued_leaf const second = issue_leaf(req);
    EXPECT_NE(second.info.serial_hex, leaf.info.serial_hex);
    EXPECT_NE(second.cert_pem, leaf.cert_pem);

    auto const inspected = inspect_certificate_pem(leaf.cert_pem);
    ASSERT_TRUE(inspected);
    expect_same_info(*inspected, leaf.info);
}

TEST(X509Leaf, EcdsaP256RootAndKeyGiveAVerifiableServerCertificate) {
    expect_valid_leaf(key_algorithm::ecdsa_p256, key_algorithm::ecdsa_p256, false, NID_ecdsa_with_SHA256);
}

TEST(X509Leaf, Rsa2048RootAndKeyAddKeyEnciphermentAndClientAuth) {
    expect_valid_leaf(key_algorithm::rsa_2048, key_algorithm::rsa_2048, true, NID_sha256WithRSAEncryption);
}

TEST(X509Leaf, EcdsaP384RootSignsWithSha384) {
    expect_valid_leaf(key_algorithm::ecdsa_p384, key_algorithm::ecdsa_p256, true, NID_ecdsa_with_SHA384);
}

TEST(X509Leaf, EcdsaP384LeafKeyUnderAP256Root) {
    expect_valid_leaf(key_algorithm::ecdsa_p256, key_algorithm::ecdsa_p384, false, NID_ecdsa_with_SHA256);
}

// The leaf's SubjectPublicKeyInfo (written without OpenSSL's encoder for EC keys) is the one OpenSSL writes
// for the key, and reads back as the key.
TEST(X509Leaf, SubjectPublicKeyInfoIsWhatOpenSslWritesForTheKey) {
    root_ca const ca = make_root(key_algorithm::ecdsa_p256);
    leaf_issuer const issuer(ca.cert_pem, ca.key_pem);
    for (auto a : {key_algorithm::ecdsa_p256, key_algorithm::ecdsa_p384, key_algorithm::rsa_2048}) {
        auto key = generate_private_key(a);
        leaf_request req;
        req.dns_names = {"spki.example.com"};
        req.valid_seconds = 3600;
        auto const leaf = issuer.issue(key.get(), req);
        x509_ptr cert = parse_cert(leaf.cert_pem);
        ASSERT_TRUE(cert) << to_string(a);
        unsigned char* in_cert = nullptr;
        int const n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert.get()), &in_cert);
        unsigned char* of_key = nullptr;
        int const m = i2d_PUBKEY(key.get(), &of_key);
        ASSERT_GT(n, 0);
        EXPECT_EQ(std::string(reinterpret_cast<char*>(in_cert), static_cast<std::size_t>(n)),
                  std::string(reinterpret_cast<char*>(of_key), static_cast<std::size_t>(m)))
            << to_string(a);
        OPENSSL_free(in_cert);
        OPENSSL_free(of_key);
        EXPECT_EQ(EVP_PKEY_eq(X509_get0_pubkey(cert.get()), key.get()), 1) << to_string(a);
        EXPECT_EQ(leaf.info.key_algorithm, to_string(a));
        EXPECT_EQ(verify_chain(leaf.cert_pem, ca.cert_pem), "") << to_string(a);
    }
}

TEST(X509Leaf, NotAfterIsCappedAtTheCaNotAfter) {
    root_ca const ca = make_root(key_algorithm::ecdsa_p256, 30);
    leaf_request req;
    req.ca_cert_pem = ca.cert_pem;
    req.ca_key_pem = ca.key_pem;
    req.key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    req.dns_names = {"capped.example.com"};
    for (std::int64_t const seconds :
         {std::int64_t{90} * 86400, std::int64_t{30} * 86400 + 3600, std::int64_t{1} << 40, INT64_MAX}) {
        SCOPED_TRACE(seconds);
        req.valid_seconds = seconds;
        issued_leaf const leaf = issue_leaf(req);
        EXPECT_EQ(leaf.info.not_after, ca.info.not_after);
        EXPECT_EQ(verify_chain(leaf.cert_pem, ca.cert_pem), "");
    }
    // Just under the CA's remaining time: not capped.
    req.valid_seconds = 29 * 86400;
    std::int64_t const before = std::time(nullptr);
    issued_leaf const shorter = issue_leaf(req);
    EXPECT_GE(shorter.info.not_after, before + req.valid_seconds);
    EXPECT_LT(shorter.info.not_after, ca.info.not_after);
}

TEST(X509Leaf, LongFirstNameLeavesTheSubjectEmptyAndTheSanCritical) {
    root_ca const ca = make_root(key_algorithm::ecdsa_p256);
    leaf_request req;
    req.ca_cert_pem = ca.cert_pem;
    req.ca_key_pem = ca.key_pem;
    req.key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    std::string const long_name = std::string(60, 'a') + ".example.com";  // 72 characters
    req.dns_names = {long_name, "short.example.com"};
    issued_leaf const leaf = issue_leaf(req);
    x509_ptr cert = parse_cert(leaf.cert_pem);
    ASSERT_TRUE(cert);
    EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(cert.get())), 0);
    EXPECT_TRUE(ext_critical(cert.get(), NID_subject_alt_name));
    EXPECT_EQ(cert_dns_names(cert.get()), req.dns_names);
    EXPECT_EQ(verify_chain(leaf.cert_pem, ca.cert_pem), "");
}

TEST(X509Leaf, RejectsInvalidRequests) {
    root_ca const ca = make_root(key_algorithm::ecdsa_p256);
    root_ca const other = make_root(key_algorithm::ecdsa_p256);
    leaf_request good;
    good.ca_cert_pem = ca.cert_pem;
    good.ca_key_pem = ca.key_pem;
    good.key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    good.dns_names = {"ok.example.com"};
    ASSERT_NO_THROW(issue_leaf(good));
    auto with = [&](auto change) {
        leaf_request r = good;
        change(r);
        return r;
    };
    // The CA key of another CA, or the CA certificate with the leaf's key.
    EXPECT_THROW(issue_leaf(with([&](leaf_request& r) { r.ca_key_pem = other.key_pem; })),
                 std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([&](leaf_request& r) { r.ca_key_pem = r.key_pem; })), std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) { r.dns_names.clear(); })), std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) {
                     r.dns_names = {"a.example.com", ""};
                 })),
                 std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) { r.dns_names = {"bad name.example.com"}; })),
                 std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) { r.dns_names = {"m\xc3\xbcller.example"}; })),
                 std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) { r.valid_seconds = 0; })), std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) { r.valid_seconds = -5; })), std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) { r.ca_cert_pem = "garbage"; })), std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) { r.ca_key_pem = r.ca_cert_pem; })),
                 std::invalid_argument);
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) { r.key_pem.clear(); })), std::invalid_argument);
    // A subject field OpenSSL rejects is an OpenSSL failure.
    EXPECT_THROW(issue_leaf(with([](leaf_request& r) { r.subject.country = "DEU"; })), std::runtime_error);
    EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(X509VerifyChain, UnrelatedRootFailsWithOpenSslsReason) {
    root_ca const ca = make_root(key_algorithm::ecdsa_p256);
    root_ca const unrelated = make_root(key_algorithm::ecdsa_p256);
    leaf_request req;
    req.ca_cert_pem = ca.cert_pem;
    req.ca_key_pem = ca.key_pem;
    req.key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    req.dns_names = {"www.example.com"};
    issued_leaf const leaf = issue_leaf(req);

    EXPECT_EQ(verify_chain(leaf.cert_pem, ca.cert_pem), "");
    EXPECT_EQ(verify_chain(leaf.cert_pem, unrelated.cert_pem),
              X509_verify_cert_error_string(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));
    // One of several roots is enough.
    EXPECT_EQ(verify_chain(leaf.cert_pem, unrelated.cert_pem + ca.cert_pem), "");
    EXPECT_NE(verify_chain(leaf.cert_pem, ""), "");
    EXPECT_NE(verify_chain("", ca.cert_pem), "");
    EXPECT_NE(verify_chain("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", ca.cert_pem),
              "");
    EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(X509VerifyChain, IntermediatesAreUsedAsUntrusted) {
    root_ca const root = make_root(key_algorithm::ecdsa_p256);
    root_ca const intermediate = make_intermediate(root);
    ASSERT_EQ(verify_chain(intermediate.cert_pem, root.cert_pem),
              X509_verify_cert_error_string(X509_V_ERR_INVALID_PURPOSE))
        << "an intermediate is no TLS server certificate, yet its signature and issuer are right";
    leaf_request req;
    req.ca_cert_pem = intermediate.cert_pem;
    req.ca_key_pem = intermediate.key_pem;
    req.key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    req.dns_names = {"chain.example.com"};
    issued_leaf const leaf = issue_leaf(req);
    EXPECT_EQ(leaf.info.issuer, "CN=Test Intermediate");

    EXPECT_EQ(verify_chain(leaf.cert_pem + intermediate.cert_pem, root.cert_pem), "");
    EXPECT_EQ(verify_chain(leaf.cert_pem + intermediate.cert_pem + root.cert_pem, root.cert_pem), "");
    EXPECT_EQ(verify_chain(leaf.cert_pem, root.cert_pem),
              X509_verify_cert_error_string(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY));
    // The intermediate alone is no trust anchor without partial-chain verification.
    EXPECT_NE(verify_chain(leaf.cert_pem, intermediate.cert_pem), "");
}

TEST(X509Csr, CarriesTheNamesAndVerifiesWithItsOwnKey) {
    for (key_algorithm const alg :
         {key_algorithm::ecdsa_p256, key_algorithm::ecdsa_p384, key_algorithm::rsa_2048}) {
        SCOPED_TRACE(std::string(to_string(alg)));
        std::string const key_pem = generate_private_key_pem(alg);
        std::vector<std::string> const names = {"acme.example.com", "*.acme.example.com", "www.example.org"};
        std::string const der = make_csr_der(key_pem, names);
        EXPECT_EQ(ERR_peek_error(), 0u);

        auto const* p = reinterpret_cast<unsigned char const*>(der.data());
        req_ptr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())), X509_REQ_free);
        ASSERT_TRUE(req);
        EXPECT_EQ(p, reinterpret_cast<unsigned char const*>(der.data()) + der.size());
        EXPECT_EQ(X509_REQ_get_version(req.get()), X509_REQ_VERSION_1);

        pkey_ptr key = parse_key(key_pem);
        ASSERT_TRUE(key);
        EXPECT_EQ(X509_REQ_verify(req.get(), key.get()), 1);
        EXPECT_EQ(EVP_PKEY_eq(X509_REQ_get0_pubkey(req.get()), key.get()), 1);
        pkey_ptr other = parse_key(generate_private_key_pem(alg));
        EXPECT_NE(X509_REQ_verify(req.get(), other.get()), 1);
        ERR_clear_error();
        EXPECT_EQ(X509_REQ_get_signature_nid(req.get()),
                  alg == key_algorithm::ecdsa_p384 ? NID_ecdsa_with_SHA384
                  : alg == key_algorithm::rsa_2048 ? NID_sha256WithRSAEncryption
                                                   : NID_ecdsa_with_SHA256);

        X509_NAME const* subject = X509_REQ_get_subject_name(req.get());
        EXPECT_EQ(X509_NAME_entry_count(subject), 1);
        EXPECT_EQ(entry_text(subject, NID_commonName), "acme.example.com");

        STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
        ASSERT_NE(exts, nullptr);
        std::vector<std::string> sans;
        for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
            X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
            if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) == NID_subject_alt_name) {
                gens_ptr gens(static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext)), GENERAL_NAMES_free);
                ASSERT_TRUE(gens);
                sans = dns_names_of(gens.get());
            }
        }
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        EXPECT_EQ(sans, names);
    }
}

TEST(X509Csr, RejectsMissingNamesAndBadKeys) {
    std::string const key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    EXPECT_THROW(make_csr_der(key_pem, {}), std::invalid_argument);
    EXPECT_THROW(make_csr_der(key_pem, {"ok.example.com", "tab\there"}), std::invalid_argument);
    EXPECT_THROW(make_csr_der("", {"ok.example.com"}), std::invalid_argument);
    EXPECT_THROW(
        make_csr_der("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", {"a.example"}),
        std::invalid_argument);
    EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(X509Der, KeyAndCertificateConversionsRoundTrip) {
    for (key_algorithm const alg : {key_algorithm::ecdsa_p256, key_algorithm::rsa_2048}) {
        SCOPED_TRACE(std::string(to_string(alg)));
        root_ca const ca = make_root(alg);

        std::string const key_der = private_key_der(ca.key_pem);
        // DER = the base64 body of the PKCS#8 PEM, so converting back gives the same text.
        auto const* p = reinterpret_cast<unsigned char const*>(key_der.data());
        pkey_ptr parsed(d2i_PrivateKey(alg == key_algorithm::rsa_2048 ? EVP_PKEY_RSA : EVP_PKEY_EC, nullptr,
                                       &p, static_cast<long>(key_der.size())),
                        EVP_PKEY_free);
        ASSERT_TRUE(parsed);
        pkey_ptr original = parse_key(ca.key_pem);
        EXPECT_EQ(EVP_PKEY_eq(parsed.get(), original.get()), 1);
        std::string const back = private_key_pem_from_der(key_der);
        EXPECT_EQ(back, ca.key_pem);
        EXPECT_EQ(back.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
        EXPECT_TRUE(key_matches_certificate(back, ca.cert_pem));
        EXPECT_EQ(private_key_der(back), key_der);

        std::string const cert_der = certificate_der("text before\n" + ca.key_pem + ca.cert_pem);
        auto const* q = reinterpret_cast<unsigned char const*>(cert_der.data());
        x509_ptr cert(d2i_X509(nullptr, &q, static_cast<long>(cert_der.size())), X509_free);
        ASSERT_TRUE(cert);
        EXPECT_EQ(q, reinterpret_cast<unsigned char const*>(cert_der.data()) + cert_der.size());
        x509_ptr from_pem = parse_cert(ca.cert_pem);
        EXPECT_EQ(X509_cmp(cert.get(), from_pem.get()), 0);
    }
}

TEST(X509Der, FirstCertificateIsConvertedAndGarbageIsRejected) {
    root_ca const a = make_root(key_algorithm::ecdsa_p256);
    root_ca const b = make_root(key_algorithm::ecdsa_p256);
    EXPECT_EQ(certificate_der(a.cert_pem + b.cert_pem), certificate_der(a.cert_pem));
    EXPECT_NE(certificate_der(a.cert_pem), certificate_der(b.cert_pem));

    EXPECT_THROW(certificate_der(""), std::invalid_argument);
    EXPECT_THROW(certificate_der(a.key_pem), std::invalid_argument);
    EXPECT_THROW(private_key_der(a.cert_pem), std::invalid_argument);
    EXPECT_THROW(private_key_der("garbage"), std::invalid_argument);
    EXPECT_THROW(private_key_pem_from_der(""), std::invalid_argument);
    EXPECT_THROW(private_key_pem_from_der("not DER at all"), std::invalid_argument);
    EXPECT_THROW(private_key_pem_from_der(certificate_der(a.cert_pem)), std::invalid_argument);
    EXPECT_THROW(private_key_pem_from_der(private_key_der(a.key_pem) + "x"), std::invalid_argument);
    EXPECT_FALSE(key_matches_certificate("garbage", a.cert_pem));
    EXPECT_FALSE(key_matches_certificate(a.key_pem, "garbage"));
    EXPECT_EQ(ERR_peek_error(), 0u);
}

TEST(X509Split, ReturnsTheCertificateBlocksInOrder) {
    root_ca const ca = make_root(key_algorithm::ecdsa_p256);
    leaf_request req;
    req.ca_cert_pem = ca.cert_pem;
    req.ca_key_pem = ca.key_pem;
    req.key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    req.dns_names = {"split.example.com"};
    issued_leaf const leaf = issue_leaf(req);

    std::string const text =
        "subject=leaf\n" + leaf.cert_pem + "junk between\n" + req.key_pem +
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n" +
        ca.cert_pem.substr(0, ca.cert_pem.size() - 1) + "trailing text";
    std::vector<std::string> const blocks = split_certificates(text);
    ASSERT_EQ(blocks.size(), 2u);
    EXPECT_EQ(blocks[0], leaf.cert_pem);
    EXPECT_EQ(blocks[1], ca.cert_pem);

    EXPECT_TRUE(split_certificates("").empty());
    EXPECT_TRUE(split_certificates(req.key_pem).empty());
    // A BEGIN without END is skipped, both at the end and before a complete block.
    EXPECT_TRUE(split_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n").empty());
    std::vector<std::string> const after_broken =
        split_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n" + ca.cert_pem);
    ASSERT_EQ(after_broken.size(), 1u);
    EXPECT_EQ(after_broken[0], ca.cert_pem);
}

void expect_pkcs12(std::string const& der, std::string const& password, std::string const& key_pem,
                   std::vector<std::string> const& chain, std::string const& friendly_name) {
    auto const* p = reinterpret_cast<unsigned char const*>(der.data());
    p12_ptr p12(d2i_PKCS12(nullptr, &p, static_cast<long>(der.size())), PKCS12_free);
    ASSERT_TRUE(p12);

    // HMAC-SHA-256 MAC with the password.
    ASN1_OCTET_STRING const* mac = nullptr;
    X509_ALGOR const* mac_alg = nullptr;
    ASN1_OCTET_STRING const* salt = nullptr;
    ASN1_INTEGER const* iterations = nullptr;
    PKCS12_get0_mac(&mac, &mac_alg, &salt, &iterations, p12.get());
    ASSERT_NE(mac_alg, nullptr);
    ASN1_OBJECT const* mac_md = nullptr;
    X509_ALGOR_get0(&mac_md, nullptr, nullptr, mac_alg);
    EXPECT_EQ(OBJ_obj2nid(mac_md), NID_sha256);
    EXPECT_EQ(PKCS12_verify_mac(p12.get(), password.c_str(), -1), 1);

    // Certificates encrypted with PBES2 (AES-256-CBC), not the legacy RC2/3DES schemes.
    STACK_OF(PKCS7)* safes = PKCS12_unpack_authsafes(p12.get());
    ASSERT_NE(safes, nullptr);
    int encrypted = 0;
    for (int i = 0; i < sk_PKCS7_num(safes); ++i) {
        PKCS7* safe = sk_PKCS7_value(safes, i);
        if (PKCS7_type_is_encrypted(safe)) {
            ++encrypted;
            EXPECT_EQ(OBJ_obj2nid(safe->d.encrypted->enc_data->algorithm->algorithm), NID_pbes2);
        }
    }
    sk_PKCS7_pop_free(safes, PKCS7_free);
    EXPECT_EQ(encrypted, 1);

    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    STACK_OF(X509)* cas = nullptr;
    ASSERT_EQ(PKCS12_parse(p12.get(), password.c_str(), &key, &cert, &cas), 1);
    pkey_ptr key_owner(key, EVP_PKEY_free);
    x509_ptr cert_owner(cert, X509_free);
    pkey_ptr expected_key = parse_key(key_pem);
    ASSERT_NE(key, nullptr);
    ASSERT_NE(cert, nullptr);
    EXPECT_EQ(EVP_PKEY_eq(key, expected_key.get()), 1);
    x509_ptr expected_leaf = parse_cert(chain.front());
    EXPECT_EQ(X509_cmp(cert, expected_leaf.get()), 0);
    int name_len = 0;
    unsigned char const* name = X509_alias_get0(cert, &name_len);
    EXPECT_EQ(name == nullptr
                  ? std::string("<none>")
                  : std::string(reinterpret_cast<char const*>(name), static_cast<std::size_t>(name_len)),
              friendly_name.empty() ? std::string("<none>") : friendly_name);
    int const ca_count = cas == nullptr ? 0 : sk_X509_num(cas);
    EXPECT_EQ(ca_count, static_cast<int>(chain.size()) - 1);
    for (int i = 0; i < ca_count && i + 1 < static_cast<int>(chain.size()); ++i) {
        x509_ptr expected = parse_cert(chain[static_cast<std::size_t>(i) + 1]);
        EXPECT_EQ(X509_cmp(sk_X509_value(cas, i), expected.get()), 0);
    }
    sk_X509_pop_free(cas, X509_free);

    // A wrong password fails the MAC check and the parse.
    EXPECT_NE(PKCS12_verify_mac(p12.get(), (password + "x").c_str(), -1), 1);
    EVP_PKEY* wrong_key = nullptr;
    X509* wrong_cert = nullptr;
    EXPECT_EQ(PKCS12_parse(p12.get(), (password + "x").c_str(), &wrong_key, &wrong_cert, nullptr), 0);
    EVP_PKEY_free(wrong_key);
    X509_free(wrong_cert);
    ERR_clear_error();
}

TEST(X509Pkcs12, HoldsTheKeyTheLeafAndTheChain) {
    root_ca const ca = make_root(key_algorithm::rsa_2048);
    leaf_request req;
    req.ca_cert_pem = ca.cert_pem;
    req.ca_key_pem = ca.key_pem;
    req.key_pem = generate_private_key_pem(key_algorithm::ecdsa_p256);
    req.dns_names = {"p12.example.com"};
    issued_leaf const leaf = issue_leaf(req);

    {
        SCOPED_TRACE("leaf + root");
        std::string const der =
            make_pkcs12(req.key_pem, leaf.cert_pem + "\n" + ca.cert_pem, "s3cret pass", "My Cert");
        EXPECT_EQ(ERR_peek_error(), 0u);
        expect_pkcs12(der, "s3cret pass", req.key_pem, {leaf.cert_pem, ca.cert_pem}, "My Cert");
    }
    {
        SCOPED_TRACE("leaf only, no friendly name");
        std::string const der = make_pkcs12(req.key_pem, leaf.cert_pem, "pw", "");
        expect_pkcs12(der, "pw", req.key_pem, {leaf.cert_pem}, "");
    }
    {
        SCOPED_TRACE("RSA key");
        std::string const der = make_pkcs12(ca.key_pem, ca.cert_pem, "rsa-pass", "Root");
        expect_pkcs12(der, "rsa-pass", ca.key_pem, {ca.cert_pem}, "Root");
    }
}

TEST(X509Pkcs12, FailuresThrowRuntimeError) {
    root_ca const ca = make_root(key_algorithm::ecdsa_p256);
    std::string const other_key = generate_private_key_pem(key_algorithm::ecdsa_p256);
    EXPECT_THROW(make_pkcs12(other_key, ca.cert_pem, "pw", "x"), std::runtime_error);
    EXPECT_THROW(make_pkcs12("garbage", ca.cert_pem, "pw", "x"), std::runtime_error);
    EXPECT_THROW(make_pkcs12(ca.key_pem, "", "pw", "x"), std::runtime_error);
    EXPECT_THROW(make_pkcs12(ca.key_pem,
                             ca.cert_pem + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                             "pw", "x"),
                 std::runtime_error);
    EXPECT_THROW(make_pkcs12(ca.key_pem, ca.cert_pem, std::string("p\0w", 3), "x"), std::runtime_error);
    EXPECT_EQ(ERR_peek_error(), 0u);
}

}  // namespace
}  // namespace certctrl::crypto

namespace certctrl::crypto {
namespace {

// RFC 8737 3: a self-signed certificate for the one name, with the critical id-pe-acmeIdentifier extension
// whose value is the DER OCTET STRING of SHA-256(key authorization). Read back with OpenSSL alone.
TEST(TlsAlpn, ValidationCertificateCarriesTheCriticalAcmeIdentifier) {
    std::string const ka = "token-abc.thumbprint-xyz";
    auto vc = tls_alpn_certificate("alpn.example.com", ka);
    BIO* bio = BIO_new_mem_buf(vc.cert_pem.data(), static_cast<int>(vc.cert_pem.size()));
    X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    ASSERT_NE(cert, nullptr);
    ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
    int const at = X509_get_ext_by_OBJ(cert, oid, -1);
    ASSERT_GE(at, 0) << "no acmeIdentifier extension";
    X509_EXTENSION* ext = X509_get_ext(cert, at);
    EXPECT_EQ(X509_EXTENSION_get_critical(ext), 1);
    ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(ext);
    std::string const value(reinterpret_cast<char const*>(ASN1_STRING_get0_data(data)),
                            static_cast<std::size_t>(ASN1_STRING_length(data)));
    unsigned char digest[32];
    SHA256(reinterpret_cast<unsigned char const*>(ka.data()), ka.size(), digest);
    EXPECT_EQ(value, std::string("\x04\x20", 2) + std::string(reinterpret_cast<char const*>(digest), 32));
    EXPECT_EQ(X509_check_host(cert, "alpn.example.com", 0, 0, nullptr), 1);
    EXPECT_EQ(X509_check_host(cert, "other.example.com", 0, 0, nullptr), 0);
    EXPECT_TRUE(key_matches_certificate(vc.key_pem, vc.cert_pem));
    ASN1_OBJECT_free(oid);
    X509_free(cert);
}

}  // namespace
}  // namespace certctrl::crypto
