#include "certctrl/core/ids.hpp"

#include <charconv>
#include <chrono>
#include <ctime>

namespace certctrl {

std::optional<std::int64_t> parse_positive_id(std::string_view s) {
    if (s.empty() || s.size() > 19) {
        return std::nullopt;
    }
    for (char c : s) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
    }
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size() || v <= 0) {
        return std::nullopt;
    }
    return v;
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string rfc3339_utc(std::int64_t t) {
    std::time_t const tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace certctrl
