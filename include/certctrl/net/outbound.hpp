#pragma once
// Requests to other servers (ACME CAs, DNS provider APIs, webhooks): HTTP or HTTPS with peer and host-name
// verification, a deadline for the whole exchange and a body limit; one request per connection (fetch), or
// over kept-alive connections (connection_pool, for the ACME CAs an instance talks to all day).

#include "certctrl/core/error.hpp"
#include "certctrl/net/egress.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
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

/// Waits `d` on the calling coroutine's executor (polls, back-off, a CA's Retry-After).
awaitable<void> sleep_for(std::chrono::steady_clock::duration d);

/// Performs `req`. Errors: bad_request (unusable URL, an http:// URL under https_only, an address the egress
/// policy refuses), external_service (resolve, connect, TLS, timeout, oversized or malformed response), each
/// naming the host.
awaitable<result<outbound_response>> fetch(outbound_request req, outbound_options opts);

/// Kept-alive connections, shared by everything that fetches through the pool (thread-safe). A request reuses
/// an idle connection to its origin (scheme, host, port, trusted CA file and egress policy: a connection is
/// only reused under the options it was checked with), and the connection goes back to the pool after a
/// complete response the server did not close. A kept connection the server dropped meanwhile is replaced
/// once, transparently. The TLS context of each CA file is loaded once. Idle connections are kept by the
/// io_context they were opened on and closed when it shuts down.
class connection_pool {
  public:
    explicit connection_pool(std::size_t idle_per_origin = 16,
                             std::chrono::seconds keep_idle = std::chrono::seconds(30));
    ~connection_pool();
    connection_pool(connection_pool const&) = delete;
    connection_pool& operator=(connection_pool const&) = delete;

    /// fetch() over a kept-alive connection. Errors: as fetch().
    awaitable<result<outbound_response>> fetch(outbound_request req, outbound_options opts);
    /// Connections opened so far (for tests and the benchmark).
    std::uint64_t opened() const;

    struct connection;
    struct state;

  private:
    std::shared_ptr<state> state_;
};

}  // namespace certctrl::net
