#include "certctrl/http/client.hpp"

#include "certctrl/core/hex.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/url/params_view.hpp>
#include <boost/url/parse_query.hpp>

#include <algorithm>

namespace certctrl::http {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool is_trusted(std::string_view addr, std::vector<std::string> const& trusted) {
    return std::find(trusted.begin(), trusted.end(), addr) != trusted.end();
}

}  // namespace

std::string client_address(std::string const& peer, std::string_view xff,
                           std::vector<std::string> const& trusted) {
    if (xff.empty() || !is_trusted(peer, trusted)) {
        return peer;
    }
    while (!xff.empty()) {
        auto comma = xff.rfind(',');
        std::string_view entry = trim(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
        xff = comma == std::string_view::npos ? std::string_view() : xff.substr(0, comma);
        if (is_trusted(entry, trusted)) {
            continue;
        }
        boost::system::error_code ec;
        auto a = boost::asio::ip::make_address(std::string(entry), ec);
        return ec ? peer : a.to_string();
    }
    return peer;
}

std::optional<std::string> cookie_value(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        auto semi = header.find(';');
        std::string_view pair = trim(header.substr(0, semi));
        header = semi == std::string_view::npos ? std::string_view() : header.substr(semi + 1);
        auto eq = pair.find('=');
        if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
            return std::string(trim(pair.substr(eq + 1)));
        }
    }
    return std::nullopt;
}

std::optional<std::string> query_value(std::string_view query, std::string_view name) {
    if (query.empty()) {
        return std::nullopt;
    }
    // Found by fuzz_http_request: Boost.URL 1.81's parse_query, as packaged, runs strlen on the view's data,
    // so a view that is not NUL-terminated (or a null one) was read past its end. A std::string is.
    std::string const terminated(query);
    auto params = boost::urls::parse_query(terminated);
    if (!params) {
        return std::nullopt;
    }
    for (auto const& p : *params) {
        if (p.key == name) {
            return percent_decode(p.value);
        }
    }
    return std::nullopt;
}

}  // namespace certctrl::http
