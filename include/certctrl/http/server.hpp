#pragma once

#include "certctrl/config/config.hpp"
#include "certctrl/http/io_pool.hpp"
#include "certctrl/http/metrics.hpp"
#include "certctrl/http/router.hpp"
#include "certctrl/http/websocket.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace certctrl::http {

/// One HTTP/1.1 listener: an awaitable accept loop on the pool's main context, each connection a coroutine on
/// one of the pool's contexts (one thread each, so no strand).
/// Enforces header/body size limits, read/idle/write timeouts and a connection cap; answers every
/// request (including malformed ones) with a JSON body, and writes one access-log line per request.
class server {
  public:
    /// `r` and `m` must outlive the server. `name` labels log lines ("api", "metrics").
    server(io_pool& io, config::server_config limits, router const& r, metrics& m, std::string name = "api");
    ~server();
    server(server const&) = delete;
    server& operator=(server const&) = delete;

    /// Binds and listens; throws boost::system::system_error on failure. Port 0 picks a free port.
    void listen(std::string const& address, std::uint16_t port);

    /// The bound port (after listen()).
    std::uint16_t port() const;

    /// Starts the accept loop on the io_context.
    void start();

    /// Decides, from a request's header, how much body to read (at most server.body_limit_bytes); a larger
    /// body is answered 413 without being read. Unset: body_limit_bytes for every request. Set before
    /// start().
    using body_gate = std::function<awaitable<std::size_t>(request const& header)>;
    void set_body_gate(body_gate gate) { gate_ = std::move(gate); }

    /// CORS (agent contract 1: the server mirrors a trusted Origin with credentials): `allowed` says whether
    /// a request's Origin may read answers with the user's cookie. Preflights (OPTIONS with
    /// Access-Control-Request-Method) of an allowed Origin to an existing route answer 204; answers to an
    /// allowed Origin carry Access-Control-Allow-Origin (mirrored) and -Credentials: true. Set before
    /// start().
    using origin_check = std::function<bool(std::string const& origin)>;
    void set_cors(origin_check allowed) { cors_ = std::move(allowed); }

    /// Stops accepting and closes idle keep-alive connections; requests in flight finish and their
    /// connections close after the response. Safe to call from any thread.
    void begin_shutdown();

    /// Connections not yet closed.
    std::size_t open_connections() const;

  private:
    struct connection;
    awaitable<void> accept_loop();
    awaitable<void> run_connection(std::shared_ptr<connection> c, std::uint64_t id);
    awaitable<void> refuse_connection(boost::asio::ip::tcp::socket s);
    /// X-Content-Type-Options: nosniff on every answer; Strict-Transport-Security when public_url is https.
    void set_security_headers(response& res) const;
    awaitable<response> dispatch(request& req, std::string const& request_id, std::string const& peer,
                                 std::string& route_out, upgrade_fn& upgrade_out);
    /// After a handler agreed to a WebSocket upgrade: the handshake, then the handler until it returns.
    awaitable<void> run_websocket(std::shared_ptr<connection> c, request req, upgrade_fn fn,
                                  std::string const& rid, std::string const& client,
                                  std::string const& route);

    io_pool& io_;
    config::server_config limits_;
    router const& router_;
    metrics& metrics_;
    std::string name_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::unordered_map<std::uint64_t, std::shared_ptr<connection>> connections_;
    std::unordered_map<std::string, std::size_t> per_ip_;  // open connections per peer address
    body_gate gate_;
    origin_check cors_;
    /// The answer to a CORS preflight for `origin` ("" when not allowed).
    response preflight(request const& req, std::string const& origin) const;
    std::uint64_t next_id_ = 0;
};

/// A request id: the client's X-Request-Id when it is 1-64 characters of [A-Za-z0-9._:-], else new.
std::string request_id_for(request const& req);

}  // namespace certctrl::http
