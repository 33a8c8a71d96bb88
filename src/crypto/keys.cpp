#include "certctrl/crypto/keys.hpp"

#include "ec_der.hpp"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

namespace certctrl::crypto {

namespace {

using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free)>;

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

}  // namespace

std::optional<key_algorithm> parse_key_algorithm(std::string_view s) {
    std::string const u = upper(s);
    if (u == "ECDSA" || u == "EC" || u == "ECDSA_P256" || u == "P-256" || u == "P256" || u == "PRIME256V1") {
        return key_algorithm::ecdsa_p256;
    }
    if (u == "ECDSA_P384" || u == "P-384" || u == "P384" || u == "SECP384R1") {
        return key_algorithm::ecdsa_p384;
    }
    if (u == "RSA" || u == "RSA_2048" || u == "RSA2048") {
        return key_algorithm::rsa_2048;
    }
    if (u == "RSA_3072" || u == "RSA3072") {
        return key_algorithm::rsa_3072;
    }
    if (u == "RSA_4096" || u == "RSA4096") {
        return key_algorithm::rsa_4096;
    }
    return std::nullopt;
}

std::string_view to_string(key_algorithm a) {
    switch (a) {
        case key_algorithm::ecdsa_p256:
            return "ECDSA_P256";
        case key_algorithm::ecdsa_p384:
            return "ECDSA_P384";
        case key_algorithm::rsa_2048:
            return "RSA_2048";
        case key_algorithm::rsa_3072:
            return "RSA_3072";
        case key_algorithm::rsa_4096:
            return "RSA_4096";
    }
    return "unknown";
}

void pkey_deleter::operator()(EVP_PKEY* key) const {
    EVP_PKEY_free(key);
}

private_key generate_private_key(key_algorithm a) {
    EVP_PKEY* raw = nullptr;
    switch (a) {
        case key_algorithm::ecdsa_p256:
            raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
            break;
        case key_algorithm::ecdsa_p384:
            raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
            break;
        case key_algorithm::rsa_2048:
            raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
            break;
        case key_algorithm::rsa_3072:
            raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(3072));
            break;
        case key_algorithm::rsa_4096:
            raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(4096));
            break;
    }
    if (raw == nullptr) {
        throw std::runtime_error("private key generation failed");
    }
    return private_key(raw);
}

std::string generate_private_key_pem(key_algorithm a) {
    return private_key_pem(generate_private_key(a).get());
}

std::string private_key_pem(EVP_PKEY const* key) {
    bio_ptr bio(BIO_new(BIO_s_mem()), BIO_free);
    if (key == nullptr || !bio ||
        PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        throw std::runtime_error("private key PEM encoding failed");
    }
    char* data = nullptr;
    long const len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::string private_key_der(EVP_PKEY const* key) {
    // PKCS#8, the form every stored certificate key has.
    if (auto ec = ec_der::pkcs8(key)) {
        return std::move(*ec);
    }
    std::unique_ptr<PKCS8_PRIV_KEY_INFO, decltype(&PKCS8_PRIV_KEY_INFO_free)> p8(
        key == nullptr ? nullptr : EVP_PKEY2PKCS8(key), PKCS8_PRIV_KEY_INFO_free);
    int const len = p8 ? i2d_PKCS8_PRIV_KEY_INFO(p8.get(), nullptr) : -1;
    if (len <= 0) {
        throw std::runtime_error("private key DER encoding failed");
    }
    std::string out(static_cast<std::size_t>(len), '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    if (i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &p) != len) {
        throw std::runtime_error("private key DER encoding failed");
    }
    return out;
}

std::optional<key_algorithm> algorithm_of_key(EVP_PKEY const* key) {
    if (key == nullptr) {
        return std::nullopt;
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) != 1) {
            return std::nullopt;
        }
        std::string_view const g(group, len);
        if (g == "prime256v1" || g == "P-256")
            return key_algorithm::ecdsa_p256;
        if (g == "secp384r1" || g == "P-384")
            return key_algorithm::ecdsa_p384;
        return std::nullopt;
    }
    if (EVP_PKEY_is_a(key, "RSA")) {
        switch (EVP_PKEY_get_bits(key)) {
            case 2048:
                return key_algorithm::rsa_2048;
            case 3072:
                return key_algorithm::rsa_3072;
            case 4096:
                return key_algorithm::rsa_4096;
            default:
                return std::nullopt;
        }
    }
    return std::nullopt;
}

std::optional<key_algorithm> algorithm_of_pem(std::string const& pem) {
    bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
    pkey_ptr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr,
                 EVP_PKEY_free);
    return algorithm_of_key(key.get());
}

}  // namespace certctrl::crypto
