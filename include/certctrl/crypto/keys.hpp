#pragma once

#include <openssl/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace certctrl::crypto {

/// Private key algorithms the server generates (for ACME accounts, CAs and certificates).
enum class key_algorithm { ecdsa_p256, ecdsa_p384, rsa_2048, rsa_3072, rsa_4096 };

/// Accepts the spellings both product documents use: "ECDSA" (P-256), "ECDSA_P256", "P-256", "ECDSA_P384",
/// "P-384", "RSA" (2048), "RSA_2048", "RSA2048", "RSA_3072", "RSA_4096"; case-insensitive.
std::optional<key_algorithm> parse_key_algorithm(std::string_view s);

/// The canonical name: ECDSA_P256, ECDSA_P384, RSA_2048, RSA_3072, RSA_4096.
std::string_view to_string(key_algorithm a);

/// An owned OpenSSL key.
struct pkey_deleter {
    void operator()(EVP_PKEY* key) const;
};
using private_key = std::unique_ptr<EVP_PKEY, pkey_deleter>;

/// A new private key. CPU-heavy for RSA (up to seconds for 4096): run it with async_compute. Throws
/// std::runtime_error when OpenSSL fails.
private_key generate_private_key(key_algorithm a);
/// generate_private_key() as PKCS#8 PEM.
std::string generate_private_key_pem(key_algorithm a);
/// The PKCS#8 DER and PEM of a private key. Throw std::runtime_error when OpenSSL fails.
std::string private_key_der(EVP_PKEY const* key);
std::string private_key_pem(EVP_PKEY const* key);

/// The algorithm of a key (public or private), or nothing for another kind or size.
std::optional<key_algorithm> algorithm_of_key(EVP_PKEY const* key);

/// The algorithm of a PEM private key, or nothing when it cannot be parsed or is of another kind.
std::optional<key_algorithm> algorithm_of_pem(std::string const& pem);

}  // namespace certctrl::crypto
