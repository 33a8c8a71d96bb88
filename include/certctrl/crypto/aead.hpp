#pragma once

#include "certctrl/core/error.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certctrl::crypto {

/// AES-256-GCM output, parts kept apart as the agent contract stores them (12-byte nonce, 16-byte tag).
struct gcm_box {
    std::string nonce;       // 12 bytes, random per encryption
    std::string ciphertext;  // same length as the plaintext
    std::string tag;         // 16 bytes
};

/// Encrypts with a 32-byte key and a fresh random nonce. `aad` may be empty (the contract uses none).
/// Throws std::invalid_argument for a key that is not 32 bytes.
gcm_box aes256gcm_encrypt(std::string_view key, std::string_view plaintext, std::string_view aad = {});

/// Decrypts and authenticates. Errors: internal (wrong key, tampered data, bad sizes).
result<std::string> aes256gcm_decrypt(std::string_view key, gcm_box const& box, std::string_view aad = {});

/// A certificate's data key wrapped by a master key version (the row of certificate_master_wrapped).
struct wrapped_key {
    std::uint32_t version = 0;
    gcm_box box;
};

/// Versioned master keys (32 bytes each). New secrets are sealed under the current version; older versions
/// stay readable until every secret is re-sealed, which is how the master key is rotated.
class keyring {
  public:
    keyring() = default;
    /// Adds `key` (32 bytes) as `version`; the highest version becomes current. Throws std::invalid_argument.
    void add(std::uint32_t version, std::string key);
    bool empty() const { return keys_.empty(); }
    std::uint32_t current_version() const;

    /// Seals `plaintext` into one self-describing blob for a VARBINARY column:
    /// 'C' | version (4 bytes, big-endian) | nonce (12) | tag (16) | ciphertext. `context` (e.g.
    /// "dns_providers.7") is bound as AAD, so a blob copied to another row or column does not open there.
    /// Throws std::logic_error when the keyring is empty.
    std::string seal(std::string_view plaintext, std::string_view context) const;

    /// Opens a blob from seal(). Errors: internal (unknown version, tampered, wrong context).
    result<std::string> open(std::string_view blob, std::string_view context) const;
    /// open() under `context`, else under `legacy` (a context an older release sealed with). Errors: as open.
    result<std::string> open_either(std::string_view blob, std::string_view context,
                                    std::string_view legacy) const {
        auto r = open(blob, context);
        return r ? r : open(blob, legacy);
    }

    /// Wraps a data key under the current version, `context` (e.g. "certificates.7") bound as AAD.
    /// Throws std::logic_error when the keyring is empty.
    wrapped_key wrap(std::string_view data_key, std::string_view context) const;

    /// Unwraps a data key. Errors: internal (version not configured, tampered, wrong context).
    result<std::string> unwrap(wrapped_key const& w, std::string_view context) const;

    /// A 32-byte key for `purpose` (e.g. "device-jwt"), derived from master key `version` with
    /// HMAC-SHA256; nothing when that version is not configured.
    std::optional<std::string> derive(std::uint32_t version, std::string_view purpose) const;

    /// The versions configured, oldest first.
    std::vector<std::uint32_t> versions() const;

    /// The version a blob was sealed under (0 when it is not a blob of ours).
    static std::uint32_t version_of(std::string_view blob);

  private:
    std::map<std::uint32_t, std::string> keys_;
};

}  // namespace certctrl::crypto
