#pragma once
// Requests to other servers (ACME CAs, DNS provider APIs, webhooks): one request per connection, HTTP or
// HTTPS with peer and host-name verification, a deadline for the whole exchange and a body limit.

#include "certctrl/core/error.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace certctrl::net {

template <class T>
using awaitable = boost::asio::awaitable<T>;

struct outbound_request {
    std::string method = "GET";
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

struct outbound_response {
    unsigned status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
    std::string body;

    /// The first header named `name` (lower-case), or "".
    std::string header(std::string const& name) const;
};

struct outbound_options {
    std::string ca_file;  // PEM roots trusted besides the system's (e.g. a test CA); "" for none
    std::chrono::milliseconds timeout{30000};
    std::size_t body_limit = 8 * 1024 * 1024;
};

/// Performs `req`. Errors: bad_request (unusable URL), external_service (resolve, connect, TLS, timeout,
/// oversized or malformed response), each naming the host.
awaitable<result<outbound_response>> fetch(outbound_request req, outbound_options opts);

}  // namespace certctrl::net
