#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace certctrl::domain {

/// One audit record. `detail` must never hold a secret.
struct audit_entry {
    std::int64_t id = 0;
    std::optional<std::int64_t> user_id;
    std::string
        action;  // login.success, login.failure, logout, apikey.create, apikey.delete, permission.denied
    std::string outcome;  // ok | denied | failed
    std::string ip;
    std::string request_id;
    boost::json::object detail;
    std::int64_t created_at = 0;
};

}  // namespace certctrl::domain
