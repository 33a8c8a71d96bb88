#include "certctrl/acme/ari.hpp"
#include "certctrl/acme/jws.hpp"
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/x509.hpp"

#include <gtest/gtest.h>

namespace certctrl::acme {
namespace {

std::string bytes(std::initializer_list<unsigned> v) {
    std::string s;
    for (unsigned b : v)
        s.push_back(static_cast<char>(b));
    return s;
}

TEST(Ari, CertIdOfTheRfcExample) {
    // RFC 9773 §4.1: AKI keyIdentifier 69:88:5B:...:C8:D4 and serial 00:87:65:43:21.
    auto const aki = bytes({0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                            0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4});
    EXPECT_EQ(ari_cert_id(aki, bytes({0x00, 0x87, 0x65, 0x43, 0x21})), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

TEST(Ari, CertIdOfARealCertificateUsesItsAkiAndSerial) {
    crypto::root_ca_request rr;
    rr.subject.common_name = "ARI test root";
    auto root = crypto::create_root_ca(rr);
    crypto::leaf_request lr;
    lr.ca_cert_pem = root.cert_pem;
    lr.ca_key_pem = root.key_pem;
    lr.key_pem = crypto::generate_private_key_pem(crypto::key_algorithm::ecdsa_p256);
    lr.dns_names = {"ari.example.com"};
    auto leaf = crypto::issue_leaf(lr);
    auto id = ari_cert_id_of(leaf.cert_pem);
    ASSERT_TRUE(id);
    auto const dot = id->find('.');
    ASSERT_NE(dot, std::string::npos);
    EXPECT_EQ(dot, 27u) << "a 20-byte key id is 27 base64url characters";
    // The serial half decodes to the serial the certificate reports (colon hex), with a leading 00 when the
    // top bit is set.
    std::string hex;
    for (char c : leaf.info.serial_hex)
        if (c != ':')
            hex += c;
    auto serial = base64url_decode(id->substr(dot + 1));
    ASSERT_TRUE(serial);
    std::string got = hex_encode(*serial);
    for (auto& c : got)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_TRUE(got == hex || got == "00" + hex) << got << " vs " << hex;
    auto other = crypto::issue_leaf(lr);
    EXPECT_NE(*ari_cert_id_of(other.cert_pem), *id) << "serials differ";
    EXPECT_EQ(ari_cert_id_of(other.cert_pem)->substr(0, dot), id->substr(0, dot)) << "same issuer key id";
    EXPECT_FALSE(ari_cert_id_of("not a certificate"));
}

TEST(Ari, RenewalInfoWindows) {
    auto w = parse_renewal_info(
        R"({"suggestedWindow":{"start":"2025-01-02T04:00:00Z","end":"2025-01-03T04:00:00Z"},"explanationURL":"https://x"})");
    ASSERT_TRUE(w);
    EXPECT_EQ(w->start, 1735790400);
    EXPECT_EQ(w->end - w->start, 86400);
    EXPECT_EQ(parse_rfc3339("2025-01-02T05:30:00.123+01:30"), 1735790400);
    EXPECT_FALSE(parse_renewal_info(
        R"({"suggestedWindow":{"start":"2025-01-03T04:00:00Z","end":"2025-01-02T04:00:00Z"}})"));
    EXPECT_FALSE(
        parse_renewal_info(R"({"suggestedWindow":{"start":"yesterday","end":"2025-01-02T04:00:00Z"}})"));
    EXPECT_FALSE(parse_renewal_info("[]"));
    EXPECT_FALSE(parse_rfc3339("2025-02-30T00:00:00Z"));
    EXPECT_FALSE(parse_rfc3339("2025-01-02 04:00:00Z"));
}

}  // namespace
}  // namespace certctrl::acme
