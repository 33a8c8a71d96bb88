#pragma once
// Helpers shared by the services (internal to certctrl_service).

#include "certctrl/core/error.hpp"

#include <optional>

namespace certctrl::service::detail {

// Turns an absent row into not_found with `what`.
template <class T>
result<T> found_or(result<std::optional<T>> r, char const* what) {
    if (!r) {
        return r.error();
    }
    if (!*r) {
        return make_error(errc::not_found, what);
    }
    return std::move(**r);
}

inline result<bool> removed_or(result<bool> r, char const* what) {
    if (!r) {
        return r.error();
    }
    if (!*r) {
        return make_error(errc::not_found, what);
    }
    return true;
}

}  // namespace certctrl::service::detail
