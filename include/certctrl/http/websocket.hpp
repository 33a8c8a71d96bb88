#pragma once
// A WebSocket (RFC 6455) taken over from an HTTP/1.1 connection after a handler agreed to the upgrade. The
// handler sees text messages only: the framing, control frames (ping/pong/close), the message size cap and
// the dead-peer timeouts stay in http/.

#include "certctrl/http/types.hpp"

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace certctrl::http {

/// One accepted WebSocket. Every member runs on the connection's executor (one thread: no locking).
class websocket_channel {
  public:
    virtual ~websocket_channel() = default;

    /// The next text message; nothing once the peer closed, the connection failed, or close() was called
    /// and the peer answered it. A binary message closes the socket with 1003.
    virtual awaitable<std::optional<std::string>> read() = 0;
    /// Queues a text message; messages are written in order. Ignored once closing.
    virtual void send(std::string text) = 0;
    /// Waits until every queued message was written (true), or the socket failed or closes (false).
    virtual awaitable<bool> flush() = 0;
    /// Sends a close frame with `code` and `reason` after what is queued (the first call wins).
    virtual void close(std::uint16_t code, std::string reason) = 0;
    /// True once close() was called, the peer closed, or a write failed.
    virtual bool closing() const = 0;
    virtual boost::asio::any_io_executor executor() const = 0;
};

/// What a handler leaves in request_context::upgrade to take the connection over. It runs once the handshake
/// succeeded; when it returns the server closes the socket (with 1000 unless it was closed already).
using upgrade_fn = std::function<awaitable<void>(std::shared_ptr<websocket_channel>)>;

/// True when `req` asks for a WebSocket upgrade (GET, Connection: upgrade, Upgrade: websocket).
bool is_websocket_upgrade(request const& req);

}  // namespace certctrl::http
