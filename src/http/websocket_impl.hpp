#pragma once
// The Beast implementation of websocket_channel (internal to certctrl_http; the server builds it).

#include "certctrl/http/websocket.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <deque>

namespace certctrl::http {

class beast_websocket final : public websocket_channel, public std::enable_shared_from_this<beast_websocket> {
  public:
    /// Takes the connection's stream. `max_message`: bytes of one incoming message (larger closes with 1009).
    beast_websocket(boost::beast::tcp_stream stream, std::size_t max_message);

    /// The handshake answer to `req` (101), with the server's headers; false when it failed.
    awaitable<bool> accept(request const& req);
    /// Runs the writer until the socket closes (co_spawn it once after accept()).
    awaitable<void> write_loop();
    /// After the handler returned: closes (1000) unless closing already, and waits a moment for the writer.
    awaitable<void> finish();

    awaitable<std::optional<std::string>> read() override;
    void send(std::string text) override;
    awaitable<bool> flush() override;
    void close(std::uint16_t code, std::string reason) override;
    bool closing() const override { return close_requested_ || read_ended_ || failed_; }
    boost::asio::any_io_executor executor() const override { return executor_; }

    /// Most bytes queued for a peer that does not read; beyond, the socket is closed at once.
    static constexpr std::size_t max_queued_bytes = 1 << 20;
    /// A write that does not finish (the peer stopped reading), or a close the peer does not answer, ends the
    /// TCP connection after this long.
    static constexpr std::chrono::seconds write_deadline{30};
    static constexpr std::chrono::seconds close_deadline{10};

  private:
    /// Closes the TCP connection after `after` unless `arm_deadline` is called again or the writer finishes.
    void arm_deadline(std::chrono::seconds after);
    void hard_close();

    boost::asio::any_io_executor executor_;
    boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
    boost::beast::flat_buffer in_;
    std::deque<std::string> out_;
    boost::asio::steady_timer wake_;     // the writer waits on it for work
    boost::asio::steady_timer drained_;  // flush() and finish() wait on it
    boost::asio::steady_timer
        deadline_;  // a write, or a requested close, that takes too long ends the socket
    std::size_t queued_bytes_ = 0;
    std::uint64_t deadline_gen_ = 0;
    std::optional<boost::beast::websocket::close_reason> close_;
    bool close_requested_ = false;
    bool read_ended_ = false;
    bool failed_ = false;
    bool writer_done_ = false;
};

}  // namespace certctrl::http
