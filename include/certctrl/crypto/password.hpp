#pragma once

#include <string>
#include <string_view>

namespace certctrl::crypto {

/// Argon2id hash of `password` in the PHC encoded form ($argon2id$v=19$m=...,t=...,p=...$salt$hash),
/// with a fresh 16-byte salt. CPU- and memory-heavy (~19 MiB, tens of ms): never call on an I/O thread.
std::string hash_password(std::string_view password);

/// True when `password` matches the encoded Argon2id hash. Same cost as hash_password().
bool verify_password(std::string const& encoded, std::string_view password);

}  // namespace certctrl::crypto
