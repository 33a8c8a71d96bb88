#include "certctrl/http/json_body.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json/stream_parser.hpp>

#include <algorithm>
#include <cctype>

namespace certctrl::http {

bool is_json_content_type(std::string_view v) {
    auto const semi = v.find(';');
    std::string_view media = v.substr(0, semi);
    while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) {
        media.remove_suffix(1);
    }
    while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) {
        media.remove_prefix(1);
    }
    std::string_view const want = "application/json";
    return media.size() == want.size() &&
           std::equal(media.begin(), media.end(), want.begin(),
                      [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

result<boost::json::object> parse_json_object(request const& req) {
    auto ct = req.find(boost::beast::http::field::content_type);
    if (ct == req.end() || !is_json_content_type(ct->value())) {
        return make_error(errc::unsupported_media_type, "Content-Type must be application/json");
    }
    std::string const& body = req.body();
    if (body.empty()) {
        return make_error(errc::bad_request, "Request body must be a JSON object");
    }
    boost::json::parse_options opts;
    opts.max_depth = 32;
    boost::json::stream_parser p({}, opts);
    boost::system::error_code ec;
    std::size_t const n = p.write_some(body.data(), body.size(), ec);
    if (!ec && n < body.size()) {
        ec = boost::json::make_error_code(boost::json::error::extra_data);
    }
    if (!ec) {
        p.finish(ec);
    }
    if (ec) {
        return make_error(errc::bad_request,
                          "Malformed JSON at byte " + std::to_string(n) + ": " + ec.message(),
                          {{"offset", n}});
    }
    boost::json::value v = p.release();
    if (!v.is_object()) {
        return make_error(errc::bad_request, "Request body must be a JSON object");
    }
    return std::move(v.get_object());
}

}  // namespace certctrl::http
