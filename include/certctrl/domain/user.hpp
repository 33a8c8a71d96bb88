#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace certctrl::domain {

/// A person or automation owner. `password_hash` is Argon2id; it never leaves the service layer.
struct user {
    std::int64_t id = 0;
    std::string email;
    std::string name;
    std::string password_hash;
    std::vector<std::string> roles;  // "user", "admin"
    std::string status;              // ACTIVE | INACTIVE | DISABLED
    std::int64_t created_at = 0;

    bool is_admin() const { return std::find(roles.begin(), roles.end(), "admin") != roles.end(); }
    bool is_active() const { return status == "ACTIVE"; }
};

}  // namespace certctrl::domain
