#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/dynamic_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <cctype>
#include <thread>

namespace certctrl::test {

namespace asio = boost::asio;
namespace bh = boost::beast::http;

boost::json::value http_response::json() const {
    return boost::json::parse(body);
}

std::string http_response::header(std::string const& name) const {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    auto it = headers.find(lower);
    return it == headers.end() ? std::string() : it->second;
}

struct http_client::impl {
    asio::io_context ioc;
    asio::ip::tcp::socket socket{ioc};
    boost::beast::flat_buffer buffer;
};

http_client::http_client(std::uint16_t port) : impl_(std::make_unique<impl>()) {
    impl_->socket.connect({asio::ip::make_address("127.0.0.1"), port});
}

http_client::~http_client() = default;

http_response http_client::request(std::string const& method, std::string const& target,
                                   std::string const& body,
                                   std::map<std::string, std::string> const& headers) {
    bh::request<bh::string_body> req{bh::string_to_verb(method), target, 11};
    req.set(bh::field::host, "127.0.0.1");
    for (auto const& [k, v] : headers) {
        req.set(k, v);
    }
    if (!body.empty() || method == "POST" || method == "PUT") {
        req.body() = body;
        req.prepare_payload();
    }
    bh::write(impl_->socket, req);
    return read_response();
}

void http_client::send_raw(std::string const& bytes) {
    asio::write(impl_->socket, asio::buffer(bytes));
}

http_response http_client::read_response() {
    bh::response_parser<bh::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    bh::read(impl_->socket, impl_->buffer, parser);
    auto res = parser.release();
    http_response out;
    out.status = static_cast<int>(res.result_int());
    for (auto const& f : res) {
        std::string name(f.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return std::tolower(c); });
        out.headers[name] = std::string(f.value());
    }
    out.body = std::move(res.body());
    return out;
}

bool http_client::closed_by_peer(std::chrono::milliseconds wait) {
    auto const deadline = std::chrono::steady_clock::now() + wait;
    impl_->socket.non_blocking(true);
    for (;;) {
        char c;
        boost::system::error_code ec;
        impl_->socket.read_some(asio::buffer(&c, 1), ec);
        if (ec == asio::error::eof || ec == asio::error::connection_reset) {
            impl_->socket.non_blocking(false);
            return true;
        }
        if (ec != asio::error::would_block && ec) {
            impl_->socket.non_blocking(false);
            return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            impl_->socket.non_blocking(false);
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

http_response http_get(std::uint16_t port, std::string const& target,
                       std::map<std::string, std::string> const& headers) {
    http_client c(port);
    return c.get(target, headers);
}

}  // namespace certctrl::test
