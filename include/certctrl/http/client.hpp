#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certctrl::http {

/// The client's address: `peer`, unless `peer` is a trusted proxy and `x_forwarded_for` is present; then
/// the right-most address of X-Forwarded-For that is not itself a trusted proxy (a valid IP, else `peer`).
std::string client_address(std::string const& peer, std::string_view x_forwarded_for,
                           std::vector<std::string> const& trusted_proxies);

/// The value of cookie `name` in a Cookie header, if present.
std::optional<std::string> cookie_value(std::string_view cookie_header, std::string_view name);

/// The raw value of query parameter `name` (percent-decoded), if present.
std::optional<std::string> query_value(std::string_view query, std::string_view name);

}  // namespace certctrl::http
