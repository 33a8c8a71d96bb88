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

}  // namespace
}  // namespace certctrl::crypto
