// The inbound HTTP path up to the router: Beast's request parser (with the server's header and body limits),
// then the route table's match of the target, the query and cookie parsers and the JSON body parser.
#include "certctrl/handlers/routes.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/router.hpp"

#include <boost/beast/http.hpp>

#include <cstddef>
#include <cstdint>

namespace {

certctrl::http::router const& table() {
    static certctrl::http::router const r = [] {
        certctrl::http::router out;
        for (auto const& route : certctrl::handlers::route_table()) {
            out.add(
                route.method, route.pattern,
                [](certctrl::http::request_context&) -> certctrl::http::awaitable<certctrl::http::response> {
                    co_return certctrl::http::response{};
                });
        }
        return out;
    }();
    return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    namespace bh = boost::beast::http;
    bh::request_parser<bh::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(1024 * 1024);
    parser.eager(true);
    boost::beast::error_code ec;
    parser.put(boost::asio::buffer(data, size), ec);
    if (ec && ec != bh::error::need_more) {
        return 0;
    }
    if (!parser.is_header_done()) {
        return 0;
    }
    auto const& req = parser.get();
    std::string_view const target = req.target();
    auto const q = target.find('?');
    auto const path = target.substr(0, q);
    std::string_view const query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    auto m = table().find(req.method(), path);
    (void)m;
    (void)certctrl::http::query_value(query, "limit");
    (void)certctrl::http::query_value(query, "cursor");
    (void)certctrl::http::cookie_value(req[bh::field::cookie], "cjj365");
    if (parser.is_done()) {
        (void)certctrl::http::parse_json_object(req);
    }
    return 0;
}
