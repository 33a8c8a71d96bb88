#include "certctrl/crypto/aead.hpp"

#include "certctrl/crypto/random.hpp"

#include <openssl/evp.h>

#include <memory>
#include <stdexcept>

namespace certctrl::crypto {

namespace {

constexpr std::size_t key_len = 32;
constexpr std::size_t nonce_len = 12;
constexpr std::size_t tag_len = 16;
constexpr char blob_magic = 'C';
constexpr std::size_t blob_header = 1 + 4 + nonce_len + tag_len;

using ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

unsigned char const* bytes(std::string_view s) {
    return reinterpret_cast<unsigned char const*>(s.data());
}
unsigned char* bytes(std::string& s) {
    return reinterpret_cast<unsigned char*>(s.data());
}

app_error crypto_error(std::string what) {
    app_error e = make_error(errc::internal, "Internal server error");
    e.detail = std::move(what);
    return e;
}

}  // namespace

gcm_box aes256gcm_encrypt(std::string_view key, std::string_view plaintext, std::string_view aad) {
    if (key.size() != key_len) {
        throw std::invalid_argument("AES-256-GCM key must be 32 bytes");
    }
    gcm_box box{random_bytes(nonce_len), std::string(plaintext.size(), '\0'), std::string(tag_len, '\0')};
    ctx_ptr ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    int len = 0;
    bool ok = ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_len, nullptr) == 1 &&
              EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(box.nonce)) == 1;
    if (ok && !aad.empty()) {
        ok = EVP_EncryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1;
    }
    if (ok && !plaintext.empty()) {
        ok = EVP_EncryptUpdate(ctx.get(), bytes(box.ciphertext), &len, bytes(plaintext),
                               static_cast<int>(plaintext.size())) == 1;
    }
    ok = ok && EVP_EncryptFinal_ex(ctx.get(), nullptr, &len) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, tag_len, bytes(box.tag)) == 1;
    if (!ok) {
        throw std::runtime_error("AES-256-GCM encryption failed");
    }
    return box;
}

result<std::string> aes256gcm_decrypt(std::string_view key, gcm_box const& box, std::string_view aad) {
    if (key.size() != key_len || box.nonce.size() != nonce_len || box.tag.size() != tag_len) {
        return crypto_error("AES-256-GCM: bad key, nonce or tag size");
    }
    std::string out(box.ciphertext.size(), '\0');
    std::string tag = box.tag;
    ctx_ptr ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
    int len = 0;
    bool ok = ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, nonce_len, nullptr) == 1 &&
              EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(box.nonce)) == 1;
    if (ok && !aad.empty()) {
        ok = EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size())) == 1;
    }
    if (ok && !box.ciphertext.empty()) {
        ok = EVP_DecryptUpdate(ctx.get(), bytes(out), &len, bytes(box.ciphertext),
                               static_cast<int>(box.ciphertext.size())) == 1;
    }
    ok = ok && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, tag_len, bytes(tag)) == 1 &&
         EVP_DecryptFinal_ex(ctx.get(), nullptr, &len) == 1;
    if (!ok) {
        return crypto_error("AES-256-GCM: authentication failed (wrong key or tampered data)");
    }
    return out;
}

void keyring::add(std::uint32_t version, std::string key) {
    if (version == 0 || key.size() != key_len) {
        throw std::invalid_argument("master key versions start at 1 and keys are 32 bytes");
    }
    keys_[version] = std::move(key);
}

std::uint32_t keyring::current_version() const {
    return keys_.empty() ? 0 : keys_.rbegin()->first;
}

std::string keyring::seal(std::string_view plaintext, std::string_view context) const {
    if (keys_.empty()) {
        throw std::logic_error("no master key configured");
    }
    auto const& [version, key] = *keys_.rbegin();
    auto box = aes256gcm_encrypt(key, plaintext, context);
    std::string blob;
    blob.reserve(blob_header + box.ciphertext.size());
    blob += blob_magic;
    for (int shift = 24; shift >= 0; shift -= 8) {
        blob += static_cast<char>((version >> shift) & 0xff);
    }
    blob += box.nonce;
    blob += box.tag;
    blob += box.ciphertext;
    return blob;
}

std::uint32_t keyring::version_of(std::string_view blob) {
    if (blob.size() < blob_header || blob[0] != blob_magic) {
        return 0;
    }
    std::uint32_t v = 0;
    for (std::size_t i = 1; i <= 4; ++i) {
        v = (v << 8) | static_cast<unsigned char>(blob[i]);
    }
    return v;
}

result<std::string> keyring::open(std::string_view blob, std::string_view context) const {
    std::uint32_t const version = version_of(blob);
    auto it = keys_.find(version);
    if (version == 0 || it == keys_.end()) {
        return crypto_error("sealed secret: not a blob of ours, or master key version " +
                            std::to_string(version) + " is not configured");
    }
    gcm_box box{std::string(blob.substr(5, nonce_len)), std::string(blob.substr(blob_header)),
                std::string(blob.substr(5 + nonce_len, tag_len))};
    return aes256gcm_decrypt(it->second, box, context);
}

wrapped_key keyring::wrap(std::string_view data_key, std::string_view context) const {
    if (keys_.empty()) {
        throw std::logic_error("no master key configured");
    }
    auto const& [version, key] = *keys_.rbegin();
    return {version, aes256gcm_encrypt(key, data_key, context)};
}

result<std::string> keyring::unwrap(wrapped_key const& w, std::string_view context) const {
    auto it = keys_.find(w.version);
    if (it == keys_.end()) {
        return crypto_error("wrapped key: master key version " + std::to_string(w.version) +
                            " is not configured");
    }
    return aes256gcm_decrypt(it->second, w.box, context);
}

std::optional<std::string> keyring::derive(std::uint32_t version, std::string_view purpose) const {
    auto it = keys_.find(version);
    if (it == keys_.end()) {
        return std::nullopt;
    }
    return hmac_sha256(it->second, std::string("certctrl derive v1 ") + std::string(purpose));
}

std::vector<std::uint32_t> keyring::versions() const {
    std::vector<std::uint32_t> out;
    for (auto const& kv : keys_) {
        out.push_back(kv.first);
    }
    return out;
}

}  // namespace certctrl::crypto
