#pragma once
// JSON member readers shared by the request parsers of the domain library (internal). Each error is a
// bad_request naming the field, so clients learn exactly which member to fix.

#include "certctrl/core/error.hpp"

#include <boost/json/object.hpp>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

namespace certctrl::domain::fields {

inline app_error bad(std::string const& field, std::string what) {
    return make_error(errc::bad_request, std::move(what), {{"field", field}});
}

inline std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

inline std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

/// A string member: absent or null -> nullopt; present but not a string or longer than `max` -> error.
inline result<std::optional<std::string>> get_string(boost::json::object const& o, char const* field,
                                                     std::size_t max) {
    auto const* v = o.if_contains(field);
    if (v == nullptr || v->is_null()) {
        return std::optional<std::string>{};
    }
    if (!v->is_string()) {
        return bad(field, std::string(field) + " must be a string");
    }
    if (v->get_string().size() > max) {
        return bad(field, std::string(field) + " must be at most " + std::to_string(max) + " bytes");
    }
    return std::optional<std::string>(std::string(v->get_string()));
}

/// A string member of at most `max` bytes; `required` also rejects absent and empty values.
inline result<std::string> str(boost::json::object const& o, char const* field, std::size_t max,
                               bool required) {
    CERTCTRL_TRY(v, get_string(o, field, max));
    if (required && (!v || v->empty())) {
        return bad(field, std::string(field) + " is required (a non-empty string)");
    }
    return v.value_or("");
}

/// An integer member within [min, max]: absent or null -> nullopt.
inline result<std::optional<std::int64_t>> get_int(boost::json::object const& o, char const* field,
                                                   std::int64_t min, std::int64_t max) {
    auto const* v = o.if_contains(field);
    if (v == nullptr || v->is_null()) {
        return std::optional<std::int64_t>{};
    }
    if (!v->is_int64() || v->get_int64() < min || v->get_int64() > max) {
        return bad(field, std::string(field) + " must be an integer in " + std::to_string(min) + ".." +
                              std::to_string(max));
    }
    return std::optional<std::int64_t>(v->get_int64());
}

/// A boolean member: absent or null -> `fallback`.
inline result<bool> get_bool(boost::json::object const& o, char const* field, bool fallback) {
    auto const* v = o.if_contains(field);
    if (v == nullptr || v->is_null()) {
        return fallback;
    }
    if (!v->is_bool()) {
        return bad(field, std::string(field) + " must be true or false");
    }
    return v->get_bool();
}

/// The member named `a` or, when absent, `b` (the two documents' spellings of one field). Both present with
/// different values -> error.
inline result<boost::json::value const*> either(boost::json::object const& o, char const* a, char const* b) {
    auto const* va = o.if_contains(a);
    auto const* vb = o.if_contains(b);
    if (va != nullptr && va->is_null())
        va = nullptr;
    if (vb != nullptr && vb->is_null())
        vb = nullptr;
    if (va != nullptr && vb != nullptr && *va != *vb) {
        return bad(a, std::string(a) + " and " + b + " name the same field but differ; send one of them");
    }
    return va != nullptr ? va : vb;
}

/// A two-letter ISO 3166 country code (normalised to upper case), or "" when absent.
inline result<std::string> country(boost::json::object const& o, char const* field) {
    CERTCTRL_TRY(v, get_string(o, field, 64));
    if (!v || v->empty()) {
        return std::string();
    }
    if (v->size() != 2 || !std::isalpha(static_cast<unsigned char>((*v)[0])) ||
        !std::isalpha(static_cast<unsigned char>((*v)[1]))) {
        return bad(field, std::string(field) + " must be a two-letter ISO 3166 code, e.g. DE");
    }
    return upper(*v);
}

}  // namespace certctrl::domain::fields
