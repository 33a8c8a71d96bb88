#include "certctrl/http/json_writer.hpp"

#include <boost/json/serialize.hpp>

#include <charconv>
#include <cstdint>
#include <cstring>

namespace certctrl::http {

void json_writer::separate() {
    if (!first_) {
        out_.push_back(',');
    }
    first_ = false;
}

json_writer& json_writer::begin_object() {
    separate();
    out_.push_back('{');
    first_ = true;
    return *this;
}

json_writer& json_writer::end_object() {
    out_.push_back('}');
    first_ = false;
    return *this;
}

json_writer& json_writer::begin_array() {
    separate();
    out_.push_back('[');
    first_ = true;
    return *this;
}

json_writer& json_writer::end_array() {
    out_.push_back(']');
    first_ = false;
    return *this;
}

json_writer& json_writer::key(std::string_view k) {
    separate();
    escaped(k);
    out_.push_back(':');
    first_ = true;  // the value that follows takes no comma
    return *this;
}

json_writer& json_writer::value(std::string_view s) {
    separate();
    escaped(s);
    return *this;
}

json_writer& json_writer::value(std::int64_t n) {
    separate();
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out_.append(buf, end);
    return *this;
}

json_writer& json_writer::value(bool b) {
    separate();
    out_ += b ? "true" : "false";
    return *this;
}

json_writer& json_writer::null() {
    separate();
    out_ += "null";
    return *this;
}

json_writer& json_writer::value(boost::json::value const& v) {
    return raw(boost::json::serialize(v));
}

json_writer& json_writer::raw(std::string_view json) {
    separate();
    out_ += json;
    return *this;
}

namespace {

// True when any byte of the 8 in `w` is below 0x20, a quote or a backslash (the bytes JSON escapes).
bool any_special(std::uint64_t w) {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    auto const has_zero = [](std::uint64_t x) { return (x - ones) & ~x & highs; };
    std::uint64_t const below_space = (w - ones * 0x20) & ~w & highs;
    return (below_space | has_zero(w ^ (ones * '"')) | has_zero(w ^ (ones * '\\'))) != 0;
}

}  // namespace

void json_writer::escaped(std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out_.push_back('"');
    std::size_t run = 0;  // start of the pending run of characters that need no escape
    std::size_t i = 0;
    while (i < s.size()) {
        // Eight bytes at a time while none needs an escape (most text is plain).
        if (i + 8 <= s.size()) {
            std::uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            if (!any_special(w)) {
                i += 8;
                continue;
            }
        }
        auto const c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') {
            ++i;
            continue;
        }
        out_.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"':
                out_ += "\\\"";
                break;
            case '\\':
                out_ += "\\\\";
                break;
            case '\n':
                out_ += "\\n";
                break;
            case '\r':
                out_ += "\\r";
                break;
            case '\t':
                out_ += "\\t";
                break;
            case '\b':
                out_ += "\\b";
                break;
            case '\f':
                out_ += "\\f";
                break;
            default:
                out_ += "\\u00";
                out_.push_back(hex[c >> 4]);
                out_.push_back(hex[c & 15]);
        }
        ++i;
    }
    out_.append(s.data() + run, s.size() - run);
    out_.push_back('"');
}

}  // namespace certctrl::http
