#pragma once
// JSON text written straight into a string, for the response bodies on hot paths (lists of records), where
// building a boost::json value first costs an allocation and a hashed insert per member.

#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace certctrl::http {

/// Appends JSON to a string. Members and elements are separated automatically; the caller keeps keys and
/// values paired and objects/arrays balanced. Strings are escaped as RFC 8259 requires (and must be UTF-8).
class json_writer {
  public:
    explicit json_writer(std::string& out) : out_(out) {}

    json_writer& begin_object();
    json_writer& end_object();
    json_writer& begin_array();
    json_writer& end_array();
    /// A member name (the value follows).
    json_writer& key(std::string_view k);

    json_writer& value(std::string_view s);
    json_writer& value(char const* s) { return value(std::string_view(s)); }
    json_writer& value(std::int64_t n);
    json_writer& value(int n) { return value(static_cast<std::int64_t>(n)); }
    json_writer& value(bool b);
    json_writer& null();
    /// A boost::json value, serialized in place.
    json_writer& value(boost::json::value const& v);
    json_writer& value(std::optional<std::int64_t> n) { return n ? value(*n) : null(); }
    /// Text that already is one JSON value.
    json_writer& raw(std::string_view json);

    /// key(k).value(v).
    template <class T>
    json_writer& member(std::string_view k, T const& v) {
        key(k);
        return value(v);
    }

  private:
    void separate();
    void escaped(std::string_view s);

    std::string& out_;
    bool first_ = true;  // no element written yet at the current level
};

}  // namespace certctrl::http
