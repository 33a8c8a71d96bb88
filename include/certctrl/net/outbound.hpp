#pragma once
// Requests to other servers (ACME CAs, DNS provider APIs, webhooks): one request per connection, HTTP or
// HTTPS with peer and host-name verification, a deadline for the whole exchange and a body limit.

#include "certctrl/core/error.hpp"
#include "certctrl/net/egress.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
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
    /// Checked against every address the host resolves to; only allowed ones are connected to. Null: none.
    std::shared_ptr<egress_policy const> egress;
    bool https_only = false;  // ACME: refuse http:// URLs
};

/// Performs `req`. Errors: bad_request (unusable URL, an http:// URL under https_only, an address the egress
/// policy refuses), external_service (resolve, connect, TLS, timeout, oversized or malformed response), each
/// naming the host.
awaitable<result<outbound_response>> fetch(outbound_request req, outbound_options opts);

}  // namespace certctrl::net
