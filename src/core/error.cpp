#include "certctrl/core/error.hpp"

#include <algorithm>

namespace certctrl {

namespace {

#define CERTCTRL_ERRC_ROW(name, code, status, key, what) error_info{errc::name, status, key, what},
constexpr error_info table[] = {CERTCTRL_ERROR_TABLE(CERTCTRL_ERRC_ROW)};
#undef CERTCTRL_ERRC_ROW

}  // namespace

error_info const& describe(errc code) {
    auto it = std::find_if(std::begin(table), std::end(table),
                           [code](error_info const& r) { return r.code == code; });
    if (it != std::end(table)) {
        return *it;
    }
    // Unreachable while the table is complete (unit-tested): answer as an internal error.
    return *std::find_if(std::begin(table), std::end(table),
                         [](error_info const& r) { return r.code == errc::internal; });
}

std::span<error_info const> error_table() {
    return table;
}

std::string_view app_error::effective_key() const {
    return key.empty() ? describe(code).key : key;
}

void throw_exception_from_error(app_error const& e, boost::source_location const&) {
    throw app_error_exception(e);
}

}  // namespace certctrl
