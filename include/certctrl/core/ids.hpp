#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace certctrl {

/// Parses a positive 64-bit integer id ("1".."9223372036854775807", digits only); nullopt otherwise.
std::optional<std::int64_t> parse_positive_id(std::string_view s);

/// Seconds since the Unix epoch (the API's timestamps).
std::int64_t unix_now();

}  // namespace certctrl
