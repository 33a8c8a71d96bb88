#pragma once

#include "certctrl/domain/permission.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace certctrl::domain {

/// An API key's metadata. The secret is never stored, only its SHA-256 (`secret_hash`).
struct api_key {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::string key_id;       // 32 hex chars, the public part of ak_<key_id>.<secret>
    std::string secret_hash;  // 32 raw bytes
    std::string name;
    std::vector<permission> permissions;
    std::int64_t created_at = 0;
    std::int64_t expires_at = 0;
};

}  // namespace certctrl::domain
