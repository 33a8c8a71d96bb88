#pragma once

#include "certctrl/core/error.hpp"
#include "certctrl/http/types.hpp"

#include <boost/json/value.hpp>

namespace certctrl::http {

struct request_context;

/// `{"data": <data>}` with the given status (200 by default), Content-Type application/json.
response json_data(request const& req, boost::json::value data, unsigned status = 200);

/// A body that already is JSON text, with the given status, Content-Type application/json.
response json_text(request const& req, std::string body, unsigned status = 200);

/// An empty 204 response.
response no_content(request const& req);

/// `{"error":{"code","what","key","params"}}` with the status of `err.code` from the error table.
/// 429 responses get Retry-After from params.retry_after when present.
response json_error(unsigned version, bool keep_alive, app_error const& err);
response json_error(request const& req, app_error const& err);

/// json_error() for a handler: also logs 5xx errors (with their internal detail) under the request id.
response error_response(request_context const& ctx, app_error const& err);

/// The error body alone (for tests and for bodies written outside a handler).
boost::json::object error_body(app_error const& err);

}  // namespace certctrl::http
