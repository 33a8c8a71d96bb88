#pragma once

#include "certctrl/domain/permission.hpp"
#include "certctrl/domain/user.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace certctrl::domain {

/// Who is making a request, once authenticated.
struct principal {
    enum class kind { session, api_key, device };
    kind via = kind::session;
    user who;  // password_hash cleared
    std::optional<std::int64_t> api_key_id;
    std::int64_t api_key_expires_at = 0;  // api_key only
    std::vector<permission> permissions;  // api_key only; a session may do everything its user may
    std::string session_hash;             // session only: SHA-256 of the session id
    std::int64_t device_id = 0;           // device only: from the access token's device_id claim
    std::int64_t device_session_id = 0;   // device only: the registration session the token belongs to
    std::int64_t token_expires_at = 0;    // device only: the access token's "exp" (epoch seconds)

    bool is_api_key() const { return via == kind::api_key; }
    bool is_device() const { return via == kind::device; }
};

}  // namespace certctrl::domain
