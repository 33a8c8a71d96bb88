#pragma once
// libsodium primitives of the device key delivery (agent contract 5.2): X25519 sealed boxes and the
// BLAKE2b-256 fingerprint of a device key.

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace certctrl::crypto {

/// Size of an X25519 public key, and of a data key sealed to one (32 + crypto_box_SEALBYTES).
inline constexpr std::size_t x25519_key_bytes = 32;
inline constexpr std::size_t sealed_data_key_bytes = 80;

/// BLAKE2b with a 32-byte output and no key (crypto_generichash).
std::string blake2b_256(std::string_view data);

/// False for an X25519 public key of low order (all-zero shared secrets): sealing to it protects nothing, and
/// libsodium refuses it. Such device keys are refused at registration.
bool x25519_public_key_usable(std::string_view public_key);

/// crypto_box_seal of `plaintext` to an X25519 public key. Throws std::invalid_argument for a key that is
/// not 32 bytes, std::runtime_error when libsodium fails.
std::string seal_to(std::string_view plaintext, std::string_view public_key);

/// Opens a sealed box with the recipient's key pair; nothing when it does not open.
std::optional<std::string> open_sealed(std::string_view sealed, std::string_view public_key,
                                       std::string_view secret_key);

/// A fresh X25519 key pair: {public, secret}, 32 bytes each.
std::pair<std::string, std::string> x25519_keypair();

}  // namespace certctrl::crypto
