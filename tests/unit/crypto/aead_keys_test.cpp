#include "certctrl/crypto/aead.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/random.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace certctrl::crypto {
namespace {

TEST(Aes256Gcm, RoundTripAndTamperDetection) {
    std::string const key = random_bytes(32);
    auto box = aes256gcm_encrypt(key, "private key bytes");
    EXPECT_EQ(box.nonce.size(), 12u);
    EXPECT_EQ(box.tag.size(), 16u);
    EXPECT_EQ(box.ciphertext.size(), 17u);
    EXPECT_NE(box.ciphertext, "private key bytes");
    EXPECT_EQ(aes256gcm_decrypt(key, box).value(), "private key bytes");
    EXPECT_NE(aes256gcm_encrypt(key, "x").nonce, aes256gcm_encrypt(key, "x").nonce);

    auto tampered = box;
    tampered.ciphertext[0] ^= 1;
    EXPECT_FALSE(aes256gcm_decrypt(key, tampered));
    auto bad_tag = box;
    bad_tag.tag[15] ^= 1;
    EXPECT_FALSE(aes256gcm_decrypt(key, bad_tag));
    EXPECT_FALSE(aes256gcm_decrypt(random_bytes(32), box));
    auto with_aad = aes256gcm_encrypt(key, "secret", "row-1");
    EXPECT_TRUE(aes256gcm_decrypt(key, with_aad, "row-1"));
    EXPECT_FALSE(aes256gcm_decrypt(key, with_aad, "row-2"));
    EXPECT_EQ(aes256gcm_decrypt(key, aes256gcm_encrypt(key, "")).value(), "");
    EXPECT_THROW(aes256gcm_encrypt("short", "x"), std::invalid_argument);
}

TEST(Keyring, SealsUnderTheCurrentVersionAndOpensOlderOnes) {
    keyring ring;
    EXPECT_THROW((void)ring.seal("x", "ctx"), std::logic_error);
    ring.add(1, std::string(32, '\x01'));
    auto v1_blob = ring.seal("tsig-secret", "dns_providers.7");
    EXPECT_EQ(keyring::version_of(v1_blob), 1u);
    EXPECT_EQ(v1_blob.find("tsig-secret"), std::string::npos);
    ring.add(2, std::string(32, '\x02'));  // rotation: new secrets use version 2
    EXPECT_EQ(ring.current_version(), 2u);
    auto v2_blob = ring.seal("tsig-secret", "dns_providers.7");
    EXPECT_EQ(keyring::version_of(v2_blob), 2u);
    EXPECT_EQ(ring.open(v1_blob, "dns_providers.7").value(), "tsig-secret");
    EXPECT_EQ(ring.open(v2_blob, "dns_providers.7").value(), "tsig-secret");
    EXPECT_FALSE(ring.open(v2_blob, "dns_providers.8"));  // bound to its row
    keyring other;
    other.add(1, std::string(32, '\x09'));
    EXPECT_FALSE(other.open(v1_blob, "dns_providers.7"));  // wrong master key
    EXPECT_FALSE(other.open(v2_blob, "dns_providers.7"));  // version not configured
    EXPECT_FALSE(ring.open("not a blob", "x"));
    EXPECT_FALSE(ring.open("", "x"));
    std::string cut = v2_blob.substr(0, 20);
    EXPECT_FALSE(ring.open(cut, "dns_providers.7"));
    EXPECT_THROW(ring.add(0, std::string(32, 'x')), std::invalid_argument);
    EXPECT_THROW(ring.add(3, "short"), std::invalid_argument);
}

TEST(Keys, AlgorithmNamesFromBothDocuments) {
    EXPECT_EQ(parse_key_algorithm("ECDSA"), key_algorithm::ecdsa_p256);
    EXPECT_EQ(parse_key_algorithm("ecdsa"), key_algorithm::ecdsa_p256);
    EXPECT_EQ(parse_key_algorithm("P-384"), key_algorithm::ecdsa_p384);
    EXPECT_EQ(parse_key_algorithm("RSA"), key_algorithm::rsa_2048);
    EXPECT_EQ(parse_key_algorithm("rsa_4096"), key_algorithm::rsa_4096);
    EXPECT_FALSE(parse_key_algorithm("DSA"));
    EXPECT_FALSE(parse_key_algorithm("RSA_1024"));
    EXPECT_FALSE(parse_key_algorithm(""));
    EXPECT_EQ(to_string(key_algorithm::rsa_3072), "RSA_3072");
}

TEST(Keys, GeneratesPkcs8KeysOfTheAskedAlgorithm) {
    for (auto a : {key_algorithm::ecdsa_p256, key_algorithm::ecdsa_p384, key_algorithm::rsa_2048}) {
        auto pem = generate_private_key_pem(a);
        EXPECT_EQ(pem.rfind("-----BEGIN PRIVATE KEY-----", 0), 0u) << to_string(a);
        EXPECT_EQ(algorithm_of_pem(pem), a) << to_string(a);
        EXPECT_NE(generate_private_key_pem(a), pem);
    }
    EXPECT_FALSE(algorithm_of_pem("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"));
    EXPECT_FALSE(algorithm_of_pem(""));
}

// EC keys are written without OpenSSL's encoder (it costs more than making the key); the bytes must be the
// ones OpenSSL writes, and read back as the same key.
TEST(Keys, Pkcs8DerIsWhatOpenSslWritesForEveryAlgorithm) {
    for (auto a : {key_algorithm::ecdsa_p256, key_algorithm::ecdsa_p384, key_algorithm::rsa_2048}) {
        for (int i = 0; i < (a == key_algorithm::rsa_2048 ? 2 : 50); ++i) {
            auto key = generate_private_key(a);
            std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)> p8(
                EVP_PKEY2PKCS8(key.get()), PKCS8_PRIV_KEY_INFO_free);
            ASSERT_TRUE(p8);
            unsigned char* raw = nullptr;
            int const len = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &raw);
            ASSERT_GT(len, 0);
            std::string const openssl(reinterpret_cast<char*>(raw), static_cast<std::size_t>(len));
            OPENSSL_free(raw);
            std::string const ours = private_key_der(key.get());
            ASSERT_EQ(ours, openssl) << to_string(a) << " key " << i;
            auto const* p = reinterpret_cast<unsigned char const*>(ours.data());
            std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> back(
                d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(ours.size())), EVP_PKEY_free);
            ASSERT_TRUE(back);
            EXPECT_EQ(EVP_PKEY_eq(back.get(), key.get()), 1);
        }
    }
}

}  // namespace
}  // namespace certctrl::crypto
