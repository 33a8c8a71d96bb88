#include "websocket_impl.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream_base.hpp>

namespace certctrl::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ws = boost::beast::websocket;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
}

bool is_websocket_upgrade(request const& req) {
    return ws::is_upgrade(req);
}

beast_websocket::beast_websocket(beast::tcp_stream stream, std::size_t max_message)
    : executor_(stream.get_executor()),
      ws_(std::move(stream)),
      wake_(executor_, asio::steady_timer::time_point::max()),
      drained_(executor_, asio::steady_timer::time_point::max()),
      deadline_(executor_) {
    // The websocket keeps its own timers: the TCP stream's would end an idle but healthy socket.
    beast::get_lowest_layer(ws_).expires_never();
    // A dead peer is found by the keep-alive pings (one after half the idle time without traffic).
    ws::stream_base::timeout t = ws::stream_base::timeout::suggested(beast::role_type::server);
    t.handshake_timeout = std::chrono::seconds(10);
    t.idle_timeout = std::chrono::seconds(60);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(max_message);
    ws_.auto_fragment(false);
    // Unfragmented, unmasked server frames are written straight from the message; the write buffer (4 KiB by
    // default, one per socket) only serves fragmenting, so a small one saves memory on idle sockets.
    ws_.write_buffer_bytes(512);
    ws_.set_option(ws::stream_base::decorator(
        [](ws::response_type& res) { res.set(beast::http::field::server, "certctrl"); }));
}

awaitable<bool> beast_websocket::accept(request const& req) {
    auto [ec] = co_await ws_.async_accept(req, use_tuple);
    if (ec) {
        failed_ = true;
        writer_done_ = true;
        co_return false;
    }
    co_return true;
}

void beast_websocket::arm_deadline(std::chrono::seconds after) {
    std::uint64_t const gen = ++deadline_gen_;
    deadline_.expires_after(after);
    deadline_.async_wait([weak = weak_from_this(), gen](boost::system::error_code ec) {
        auto self = weak.lock();
        if (!ec && self && self->deadline_gen_ == gen && !self->writer_done_) {
            self->hard_close();
        }
    });
}

void beast_websocket::hard_close() {
    failed_ = true;
    out_.clear();
    queued_bytes_ = 0;
    beast::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);  // ends a pending read and write at once
    wake_.cancel();
    drained_.cancel();
}

awaitable<void> beast_websocket::write_loop() {
    auto self = shared_from_this();
    for (;;) {
        while (!out_.empty() && !failed_) {
            std::string msg = std::move(out_.front());
            out_.pop_front();
            queued_bytes_ -= std::min(queued_bytes_, msg.size());
            ws_.text(true);
            if (!close_requested_) {
                arm_deadline(write_deadline);
            }
            auto [ec, n] = co_await ws_.async_write(asio::buffer(msg), use_tuple);
            (void)n;
            if (!close_requested_) {
                ++deadline_gen_;  // this write finished in time
                deadline_.cancel();
            }
            if (ec) {
                failed_ = true;
            }
        }
        drained_.cancel();
        if (failed_) {
            break;
        }
        if (close_requested_) {
            if (!read_ended_) {
                auto [ec] = co_await ws_.async_close(*close_, use_tuple);
                (void)ec;
            }
            break;
        }
        if (read_ended_) {
            break;
        }
        wake_.expires_at(asio::steady_timer::time_point::max());
        co_await wake_.async_wait(use_tuple);
    }
    out_.clear();
    queued_bytes_ = 0;
    writer_done_ = true;
    ++deadline_gen_;
    deadline_.cancel();
    drained_.cancel();
    // A socket that failed or closed without the handshake: end it so a pending read returns.
    if (failed_ || read_ended_) {
        beast::error_code ec;
        beast::get_lowest_layer(ws_).socket().close(ec);
    }
}

awaitable<std::optional<std::string>> beast_websocket::read() {
    if (read_ended_ || failed_) {
        co_return std::nullopt;
    }
    in_.clear();
    auto [ec, n] = co_await ws_.async_read(in_, use_tuple);
    (void)n;
    if (ec) {
        read_ended_ = true;
        if (ec == ws::error::message_too_big) {
            close(1009, "message too big");
        }
        wake_.cancel();
        co_return std::nullopt;
    }
    if (!ws_.got_text()) {
        close(1003, "text messages only");
        co_return std::nullopt;
    }
    std::string text = beast::buffers_to_string(in_.data());
    if (in_.capacity() > 8192) {
        in_ = beast::flat_buffer();  // an idle socket keeps no large buffer after one large message
    }
    co_return text;
}

void beast_websocket::send(std::string text) {
    if (closing()) {
        return;
    }
    queued_bytes_ += text.size();
    if (queued_bytes_ > max_queued_bytes) {
        hard_close();  // the peer does not read what it is sent
        return;
    }
    out_.push_back(std::move(text));
    wake_.cancel();
}

awaitable<bool> beast_websocket::flush() {
    while (!out_.empty() && !failed_ && !writer_done_ && !close_requested_) {
        drained_.expires_at(asio::steady_timer::time_point::max());
        co_await drained_.async_wait(use_tuple);
    }
    co_return !failed_ && !writer_done_ && out_.empty();
}

void beast_websocket::close(std::uint16_t code, std::string reason) {
    if (close_requested_) {
        return;
    }
    close_requested_ = true;
    close_ = ws::close_reason(static_cast<ws::close_code>(code), reason);
    // Whatever the peer does (not reading, not answering the close), the connection ends by then.
    if (!writer_done_) {
        arm_deadline(close_deadline);
    }
    wake_.cancel();
    drained_.cancel();
}

awaitable<void> beast_websocket::finish() {
    close(ws::close_code::normal, "");
    // The writer sends the close frame and waits for the peer's answer (bounded by the handshake timeout).
    while (!writer_done_) {
        drained_.expires_at(asio::steady_timer::time_point::max());
        co_await drained_.async_wait(use_tuple);
    }
}

}  // namespace certctrl::http
