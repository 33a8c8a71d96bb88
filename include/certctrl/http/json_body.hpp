#pragma once

#include "certctrl/core/error.hpp"
#include "certctrl/http/types.hpp"

#include <boost/json/object.hpp>

namespace certctrl::http {

/// Parses the request body as a JSON object.
/// Errors: unsupported_media_type (415) when Content-Type is not application/json (parameters such as
/// charset are allowed); bad_request (400) for an empty body, malformed JSON (the message gives the byte
/// offset), nesting deeper than 32, or a top-level value that is not an object.
result<boost::json::object> parse_json_object(request const& req);

/// True when a Content-Type header value is exactly application/json (case-insensitive, parameters such as
/// charset allowed): "application/jsonx" or "text/plain; application/json" are not.
bool is_json_content_type(std::string_view v);

}  // namespace certctrl::http
