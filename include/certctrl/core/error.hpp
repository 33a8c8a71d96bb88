#pragma once

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <span>
#include <string>
#include <string_view>

namespace certctrl {

/// The error table, the one place codes are defined: X(name, code, http_status, key, default_what).
/// Numbers are part of the API: never renumber, only add. 4001/4003/4009/5000/5001/5002 come from the
/// product documents; 40901 and 10003 from the agent contract. docs/errors.md mirrors this (unit-tested).
#define CERTCTRL_ERROR_TABLE(X)                                                                             \
    X(bad_request, 4000, 400, "INVALID_ARGUMENT", "The request is invalid")                                 \
    X(not_found, 4001, 404, "NOT_FOUND", "Not found")                                                       \
    X(forbidden, 4003, 403, "FORBIDDEN", "Forbidden")                                                       \
    X(method_not_allowed, 4005, 405, "METHOD_NOT_ALLOWED", "Method not allowed")                            \
    X(conflict, 4009, 409, "CONFLICT", "Conflict")                                                          \
    X(unauthenticated, 4010, 401, "UNAUTHORIZED", "Authentication required")                                \
    X(payload_too_large, 4013, 413, "PAYLOAD_TOO_LARGE", "Request body too large")                          \
    X(unsupported_media_type, 4015, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json") \
    X(rate_limited, 4029, 429, "RATE_LIMITED", "Too many requests")                                         \
    X(header_too_large, 4031, 431, "HEADER_TOO_LARGE", "Request header too large")                          \
    X(internal, 5000, 500, "INTERNAL_ERROR", "Internal server error")                                       \
    X(database, 5001, 503, "DATABASE_ERROR", "Database unavailable")                                        \
    X(external_service, 5002, 502, "EXTERNAL_SERVICE_ERROR", "External service error")                      \
    X(unavailable, 5003, 503, "SERVICE_UNAVAILABLE", "Service unavailable")                                 \
    X(refresh_token_rotated, 10003, 401, "refresh_token_rotated", "Refresh token was rotated")              \
    X(updates_cursor_expired, 40901, 409, "UPDATES_CURSOR_EXPIRED", "Updates cursor expired; resync")       \
    X(not_an_error, 999999, 200, "NOT_AN_ERROR", "Not logged in")

/// Public error codes (see CERTCTRL_ERROR_TABLE).
enum class errc : int {
#define CERTCTRL_ERRC_ENUM(name, code, status, key, what) name = code,
    CERTCTRL_ERROR_TABLE(CERTCTRL_ERRC_ENUM)
#undef CERTCTRL_ERRC_ENUM
};

/// One row of the error table: the HTTP status, the stable key and a default client-safe message.
struct error_info {
    errc code;
    unsigned status;
    std::string_view key;
    std::string_view default_what;
};

/// Looks up the row of `code`. Every enumerator has exactly one row (checked by a unit test).
error_info const& describe(errc code);

/// The whole table, in code order (for docs and tests).
std::span<error_info const> error_table();

/// An expected failure: carried as a value through every layer, turned into a response only by http/.
struct app_error {
    errc code = errc::internal;
    std::string what;            // client-safe message, never a secret
    std::string key;             // stable id; empty means the table's key
    boost::json::object params;  // machine-readable details (e.g. retry_after, field)
    std::string detail;          // for the server log only (never sent): what really went wrong

    app_error() = default;
    app_error(errc c, std::string w, boost::json::object p = {})
        : code(c), what(std::move(w)), params(std::move(p)) {}

    /// The key to publish: `key` if set, else the table's key for `code`.
    std::string_view effective_key() const;
};

/// Thrown by result<T>::value() on error (only reached by code that asked for an exception).
struct app_error_exception : std::runtime_error {
    app_error error;
    explicit app_error_exception(app_error e) : std::runtime_error(e.what), error(std::move(e)) {}
};

/// Found by ADL from boost::system::result<T, app_error>::value().
[[noreturn]] void throw_exception_from_error(app_error const& e, boost::source_location const& loc);

/// Result of an operation that can fail with an app_error.
template <class T>
using result = boost::system::result<T, app_error>;

/// In a function returning result<U> (not a coroutine): evaluates `expr` (a result<T>), returns its error if
/// it failed, else moves its value into a new local `var`.
#define CERTCTRL_TRY(var, expr)       \
    auto var##_result_ = (expr);      \
    if (!var##_result_) {             \
        return var##_result_.error(); \
    }                                 \
    auto var = std::move(*var##_result_)

/// Shorthand for building an error result; `detail` is for the server log only.
inline app_error make_error(errc code, std::string what, boost::json::object params = {},
                            std::string detail = {}) {
    app_error e{code, std::move(what), std::move(params)};
    e.detail = std::move(detail);
    return e;
}

}  // namespace certctrl
