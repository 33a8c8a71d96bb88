#include "certctrl/crypto/sodium.hpp"

#include <sodium.h>

#include <stdexcept>

namespace certctrl::crypto {

namespace {

void ensure_init() {
    static int const rc = sodium_init();  // thread-safe once; 1 means "already initialised"
    if (rc < 0) {
        throw std::runtime_error("libsodium cannot be initialised");
    }
}

unsigned char const* bytes(std::string_view s) {
    return reinterpret_cast<unsigned char const*>(s.data());
}

}  // namespace

std::string blake2b_256(std::string_view data) {
    ensure_init();
    std::string out(32, '\0');
    crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(), bytes(data), data.size(),
                       nullptr, 0);
    return out;
}

bool x25519_public_key_usable(std::string_view public_key) {
    ensure_init();
    if (public_key.size() != crypto_box_PUBLICKEYBYTES) {
        return false;
    }
    unsigned char sk[crypto_scalarmult_SCALARBYTES];
    unsigned char shared[crypto_scalarmult_BYTES];
    randombytes_buf(sk, sizeof sk);
    // crypto_scalarmult fails when the product is the all-zero point, which a low-order key gives for every
    // secret key.
    bool const ok = crypto_scalarmult(shared, sk, bytes(public_key)) == 0;
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(shared, sizeof shared);
    return ok;
}

std::string seal_to(std::string_view plaintext, std::string_view public_key) {
    ensure_init();
    if (public_key.size() != crypto_box_PUBLICKEYBYTES) {
        throw std::invalid_argument("an X25519 public key is 32 bytes");
    }
    std::string out(plaintext.size() + crypto_box_SEALBYTES, '\0');
    if (crypto_box_seal(reinterpret_cast<unsigned char*>(out.data()), bytes(plaintext), plaintext.size(),
                        bytes(public_key)) != 0) {
        throw std::runtime_error("crypto_box_seal failed");
    }
    return out;
}

std::optional<std::string> open_sealed(std::string_view sealed, std::string_view public_key,
                                       std::string_view secret_key) {
    ensure_init();
    if (sealed.size() < crypto_box_SEALBYTES || public_key.size() != crypto_box_PUBLICKEYBYTES ||
        secret_key.size() != crypto_box_SECRETKEYBYTES) {
        return std::nullopt;
    }
    std::string out(sealed.size() - crypto_box_SEALBYTES, '\0');
    if (crypto_box_seal_open(reinterpret_cast<unsigned char*>(out.data()), bytes(sealed), sealed.size(),
                             bytes(public_key), bytes(secret_key)) != 0) {
        return std::nullopt;
    }
    return out;
}

std::pair<std::string, std::string> x25519_keypair() {
    ensure_init();
    std::string pk(crypto_box_PUBLICKEYBYTES, '\0');
    std::string sk(crypto_box_SECRETKEYBYTES, '\0');
    crypto_box_keypair(reinterpret_cast<unsigned char*>(pk.data()),
                       reinterpret_cast<unsigned char*>(sk.data()));
    return {std::move(pk), std::move(sk)};
}

}  // namespace certctrl::crypto
