#pragma once

#include "certctrl/core/error.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace certctrl::domain {

/// A device (an agent on a server) of a user (agent contract 4.4).
struct device {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::string device_public_id;  // UUID
    std::string name;
    std::string description;
    std::string device_type;
    std::string platform;
    std::string model;
    std::string app_version;
    std::string ip;
    std::string user_agent;
    std::string agent_version;      // from the agent's notify
    std::string status = "ACTIVE";  // ACTIVE | REVOKED | LOST
    bool has_public_key = false;    // an X25519 key was registered by the agent
    std::int64_t created_at = 0;
    std::int64_t last_seen_at = 0;
};

/// A validated registration from the user side (`{name, description?, device_type?, platform?, model?,
/// app_version?, device_public_id?}`); the server assigns a public id when none is given.
struct device_input {
    std::string name;
    std::string description;
    std::string device_type;
    std::string platform;
    std::string model;
    std::string app_version;
    std::optional<std::string> device_public_id;  // lower-case UUID
};

/// Errors: bad_request naming the field.
result<device_input> parse_device_input(boost::json::object const& body);

/// A UUID in its 36-character form, lower-cased; nullopt when malformed.
std::optional<std::string> normalize_uuid(std::string_view s);

/// The install item an assignment adds to the device's install config (agent contract 4.6), so the agent has
/// something to deploy: copy the certificate's files to /etc/certctrl/certs/<domain>/ (then edit it freely).
boost::json::object default_cert_install_item(std::int64_t cert_id, std::string const& domain_name);

/// An assignment of a certificate to a device (agent contract 4.5), without the sealed key.
struct assignment {
    std::int64_t cert_id = 0;
    std::int64_t device_id = 0;
    std::string device_public_id;
    std::string wrap_alg = "x25519";
    bool wrapped = false;       // a sealed data key for the device is stored
    bool wrap_pending = false;  // the 48-zero sentinel: a wrap (or a re-issue) is on its way
    std::int64_t created_at = 0;
};

}  // namespace certctrl::domain
