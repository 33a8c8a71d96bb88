#pragma once
// A WebSocket client for tests, written from agent contract 6.3: connects with a device token, reads JSON
// messages with a timeout (a read stays pending between calls, so nothing is lost), writes JSON, and tells
// how and why the server closed.

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <deque>
#include <optional>
#include <string>

namespace certctrl::test {

class ws_client {
  public:
    /// Opens `path` on 127.0.0.1:`port` with `Authorization: Bearer <token>` (none when empty). False when
    /// the handshake failed; `http_status` then holds the server's answer.
    bool connect(std::uint16_t port, std::string const& path, std::string const& token) {
        namespace beast = boost::beast;
        boost::asio::ip::tcp::resolver resolver(ioc_);
        beast::get_lowest_layer(ws_).connect(
            boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
        ws_.set_option(beast::websocket::stream_base::decorator([token](beast::websocket::request_type& req) {
            if (!token.empty()) {
                req.set(beast::http::field::authorization, "Bearer " + token);
            }
        }));
        beast::websocket::response_type res;
        beast::error_code ec;
        ws_.handshake(res, "127.0.0.1:" + std::to_string(port), path, ec);
        http_status = static_cast<int>(res.result_int());
        handshake_body = res.body();
        if (ec) {
            return false;
        }
        start_read();
        return true;
    }

    /// The next message as JSON, or nothing after `timeout` or once closed.
    std::optional<boost::json::object> next(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        auto const until = std::chrono::steady_clock::now() + timeout;
        while (inbox_.empty() && !closed) {
            auto const now = std::chrono::steady_clock::now();
            if (now >= until) {
                break;
            }
            ioc_.restart();
            ioc_.run_one_for(until - now);
        }
        if (inbox_.empty()) {
            return std::nullopt;
        }
        std::string m = std::move(inbox_.front());
        inbox_.pop_front();
        boost::json::value v = boost::json::parse(m);
        return v.as_object();
    }

    void send(boost::json::object const& o) {
        std::string text = boost::json::serialize(o);
        bool done = false;
        ws_.text(true);
        ws_.async_write(boost::asio::buffer(text),
                        [&](boost::beast::error_code, std::size_t) { done = true; });
        while (!done) {
            ioc_.restart();
            ioc_.run_one_for(std::chrono::seconds(5));
        }
    }

    /// Waits up to `timeout` for the server to close; true when it did.
    bool wait_closed(std::chrono::milliseconds timeout) {
        auto const until = std::chrono::steady_clock::now() + timeout;
        while (!closed && std::chrono::steady_clock::now() < until) {
            ioc_.restart();
            ioc_.run_one_for(until - std::chrono::steady_clock::now());
            inbox_.clear();
        }
        return closed;
    }

    void close() {
        if (closed) {
            return;
        }
        bool done = false;
        ws_.async_close(boost::beast::websocket::close_code::normal,
                        [&](boost::beast::error_code) { done = true; });
        auto const until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while ((!done || !closed) && std::chrono::steady_clock::now() < until) {
            ioc_.restart();
            ioc_.run_one_for(std::chrono::milliseconds(100));
        }
    }

    int http_status = 0;
    std::string handshake_body;
    bool closed = false;
    int close_code = 0;  // the server's close frame code (0: none)
    std::string close_reason;

  private:
    void start_read() {
        ws_.async_read(buffer_, [this](boost::beast::error_code ec, std::size_t) {
            if (ec) {
                closed = true;
                close_code = static_cast<int>(ws_.reason().code);
                close_reason = std::string(ws_.reason().reason.c_str());
                return;
            }
            inbox_.push_back(boost::beast::buffers_to_string(buffer_.data()));
            buffer_.consume(buffer_.size());
            start_read();
        });
    }

    boost::asio::io_context ioc_;
    boost::beast::websocket::stream<boost::beast::tcp_stream> ws_{ioc_};
    boost::beast::flat_buffer buffer_;
    std::deque<std::string> inbox_;
};

}  // namespace certctrl::test
