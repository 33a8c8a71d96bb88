#include "certctrl/crypto/random.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <array>
#include <memory>

#include <stdexcept>

namespace certctrl::crypto {

std::string random_bytes(std::size_t n) {
    std::string out(n, '\0');
    if (n != 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    return out;
}

std::string random_base62(std::size_t n) {
    static constexpr char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    std::string out;
    out.reserve(n);
    while (out.size() < n) {
        for (unsigned char b : random_bytes(n)) {
            if (b < 248 && out.size() < n) {  // 248 = 4 * 62: reject the rest to avoid bias
                out += alphabet[b % 62];
            }
        }
    }
    return out;
}

std::string sha256(std::string_view data) {
    std::string out(32, '\0');
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len, EVP_sha256(),
                   nullptr) != 1 ||
        len != 32) {
        throw std::runtime_error("SHA-256 failed");
    }
    return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr),
                                                          EVP_MAC_free);
    std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(mac ? EVP_MAC_CTX_new(mac.get()) : nullptr,
                                                                  EVP_MAC_CTX_free);
    if (!ctx) {
        throw std::runtime_error("HMAC is not available");
    }
    char digest_name[] = "SHA256";
    std::array<OSSL_PARAM, 2> params = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
        OSSL_PARAM_construct_end(),
    };
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    std::size_t len = 0;
    if (EVP_MAC_init(ctx.get(), reinterpret_cast<unsigned char const*>(key.data()), key.size(),
                     params.data()) != 1 ||
        EVP_MAC_update(ctx.get(), reinterpret_cast<unsigned char const*>(data.data()), data.size()) != 1 ||
        EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1) {
        throw std::runtime_error("HMAC-SHA256 failed");
    }
    return std::string(reinterpret_cast<char const*>(out.data()), len);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string uuid_v4() {
    std::string b = random_bytes(16);
    b[6] = static_cast<char>((static_cast<unsigned char>(b[6]) & 0x0F) | 0x40);  // version 4
    b[8] = static_cast<char>((static_cast<unsigned char>(b[8]) & 0x3F) | 0x80);  // RFC 4122 variant
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (std::size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out.push_back('-');
        }
        auto const c = static_cast<unsigned char>(b[i]);
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 0x0F]);
    }
    return out;
}

}  // namespace certctrl::crypto
