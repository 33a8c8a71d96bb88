#pragma once
// Helpers shared by the handlers (internal to the handlers library).

#include "certctrl/http/request_context.hpp"
#include "certctrl/service/identity.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace certctrl::handlers::detail {

/// Address, user agent and request id of the request, for audit records.
service::client_info client_of(http::request_context const& ctx);

/// offset (>= 0, default 0) and limit (1-1000, default 100) from the query. Errors: bad_request.
struct page_request {
    std::int64_t offset = 0;
    std::int64_t limit = 100;
};
result<page_request> parse_page(http::request_context const& ctx);

/// `{"data": items, "meta": {total, offset, limit}}`.
http::response list_response(http::request_context const& ctx, boost::json::array items, std::int64_t total,
                             page_request const& page);

/// A required string member of at most `max` bytes. Errors: bad_request naming the field.
result<std::string> required_string(boost::json::object const& o, char const* field, std::size_t max);

/// An optional string member (default ""), at most `max` bytes. Errors: bad_request when not a string.
result<std::string> optional_string(boost::json::object const& o, char const* field, std::size_t max);

}  // namespace certctrl::handlers::detail
