#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace certctrl::crypto {

/// `n` bytes from the OpenSSL CSPRNG. Throws std::runtime_error if the generator fails.
std::string random_bytes(std::size_t n);

/// `n` characters of [0-9A-Za-z] from the CSPRNG, without modulo bias.
std::string random_base62(std::size_t n);

/// A random (version 4) UUID in its lower-case 36-character form.
std::string uuid_v4();

/// SHA-256 of `data` (32 raw bytes).
std::string sha256(std::string_view data);

/// HMAC-SHA256 of `data` under `key` (32 raw bytes). Throws std::runtime_error when OpenSSL fails.
std::string hmac_sha256(std::string_view key, std::string_view data);

/// Compares in time independent of where the inputs differ (lengths may leak).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace certctrl::crypto
