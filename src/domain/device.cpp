#include "certctrl/domain/device.hpp"

#include "fields.hpp"

namespace certctrl::domain {

using namespace fields;

std::optional<std::string> normalize_uuid(std::string_view s) {
    if (s.size() != 36) {
        return std::nullopt;
    }
    std::string out(s);
    for (std::size_t i = 0; i < out.size(); ++i) {
        bool const dash = i == 8 || i == 13 || i == 18 || i == 23;
        char const c = static_cast<char>(std::tolower(static_cast<unsigned char>(out[i])));
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return std::nullopt;
        }
        out[i] = c;
    }
    return out;
}

result<device_input> parse_device_input(boost::json::object const& body) {
    device_input in;
    CERTCTRL_TRY(name, str(body, "name", 128, true));
    in.name = name;
    CERTCTRL_TRY(description, str(body, "description", 1024, false));
    in.description = description;
    CERTCTRL_TRY(type, str(body, "device_type", 64, false));
    in.device_type = type;
    CERTCTRL_TRY(platform, str(body, "platform", 64, false));
    in.platform = platform;
    CERTCTRL_TRY(model, str(body, "model", 128, false));
    in.model = model;
    CERTCTRL_TRY(version, str(body, "app_version", 64, false));
    in.app_version = version;
    CERTCTRL_TRY(pid, get_string(body, "device_public_id", 64));
    if (pid) {
        auto uuid = normalize_uuid(*pid);
        if (!uuid) {
            return bad("device_public_id", "device_public_id must be a UUID (8-4-4-4-12 hex digits)");
        }
        in.device_public_id = *uuid;
    }
    return in;
}

}  // namespace certctrl::domain

namespace certctrl::domain {

boost::json::object default_cert_install_item(std::int64_t cert_id, std::string const& domain_name) {
    std::string dir = domain_name;
    for (auto& ch : dir) {
        if (ch == '*') {
            ch = '_';  // a wildcard name makes a plain directory name
        }
    }
    std::string const base = "/etc/certctrl/certs/" + dir + "/";
    boost::json::array from{"private.key", "certificate.pem", "fullchain.pem"};
    boost::json::array to{base + "private.key", base + "certificate.pem", base + "fullchain.pem"};
    return boost::json::object{{"id", "cert-" + std::to_string(cert_id)},
                               {"type", "copy"},
                               {"enabled", true},
                               {"continue_on_error", false},
                               {"ob_type", "cert"},
                               {"ob_id", cert_id},
                               {"ob_name", domain_name},
                               {"from", std::move(from)},
                               {"to", std::move(to)}};
}

}  // namespace certctrl::domain
