#include "certctrl/crypto/password.hpp"

#include "certctrl/crypto/random.hpp"

#include <argon2.h>

#include <stdexcept>

namespace certctrl::crypto {

namespace {

// OWASP's first Argon2id recommendation: 19 MiB, 2 passes, 1 lane.
constexpr std::uint32_t t_cost = 2;
constexpr std::uint32_t m_cost_kib = 19 * 1024;
constexpr std::uint32_t parallelism = 1;
constexpr std::size_t salt_len = 16;
constexpr std::size_t hash_len = 32;

}  // namespace

std::string hash_password(std::string_view password) {
    std::string const salt = random_bytes(salt_len);
    std::size_t const encoded_len =
        argon2_encodedlen(t_cost, m_cost_kib, parallelism, salt_len, hash_len, Argon2_id);
    std::string encoded(encoded_len, '\0');
    int rc = argon2id_hash_encoded(t_cost, m_cost_kib, parallelism, password.data(), password.size(),
                                   salt.data(), salt.size(), hash_len, encoded.data(), encoded.size());
    if (rc != ARGON2_OK) {
        throw std::runtime_error(std::string("argon2id_hash_encoded: ") + argon2_error_message(rc));
    }
    encoded.resize(encoded.find('\0'));
    return encoded;
}

bool verify_password(std::string const& encoded, std::string_view password) {
    if (encoded.rfind("$argon2id$", 0) != 0) {
        return false;
    }
    return argon2id_verify(encoded.c_str(), password.data(), password.size()) == ARGON2_OK;
}

}  // namespace certctrl::crypto
