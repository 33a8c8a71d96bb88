#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace certctrl {

/// Parses a positive 64-bit integer id ("1".."9223372036854775807", digits only); nullopt otherwise.
std::optional<std::int64_t> parse_positive_id(std::string_view s);

/// Seconds since the Unix epoch (the API's timestamps).
std::int64_t unix_now();

/// `t` (Unix seconds) as an RFC 3339 UTC time, "2026-11-30T12:00:00Z".
std::string rfc3339_utc(std::int64_t t);

}  // namespace certctrl
