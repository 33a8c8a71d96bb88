#pragma once
// A small HTTPS server for tests that need one on the other side (a DNS webhook, a Cloudflare-like API):
// one thread, one request per connection, a certificate for "localhost" signed by a root the test trusts.
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/x509.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

namespace certctrl::test {

class https_stub {
  public:
    using request = boost::beast::http::request<boost::beast::http::string_body>;
    using response = boost::beast::http::response<boost::beast::http::string_body>;
    using handler = std::function<response(request const&)>;

    /// Listens on 127.0.0.1 (a free port); writes the trusted root to `root_file`.
    https_stub(std::filesystem::path const& root_file, handler h) : handler_(std::move(h)) {
        crypto::root_ca_request rr;
        rr.subject.common_name = "https_stub test root";
        rr.valid_days = 2;
        auto root = crypto::create_root_ca(rr);
        crypto::leaf_request lr;
        lr.ca_cert_pem = root.cert_pem;
        lr.ca_key_pem = root.key_pem;
        lr.key_pem = crypto::generate_private_key_pem(crypto::key_algorithm::ecdsa_p256);
        lr.dns_names = {"localhost"};
        lr.ip_addresses = {
            "127.0.0.1"};  // the URL uses the address: a fresh system may not resolve localhost
        lr.valid_seconds = 86400;
        auto leaf = crypto::issue_leaf(lr);
        std::ofstream(root_file) << root.cert_pem;
        ctx_.use_certificate_chain(boost::asio::buffer(leaf.cert_pem));
        ctx_.use_private_key(boost::asio::buffer(lr.key_pem), boost::asio::ssl::context::pem);
        acceptor_.open(boost::asio::ip::tcp::v4());
        acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
        acceptor_.bind({boost::asio::ip::make_address("127.0.0.1"), 0});
        acceptor_.listen();
        port_ = acceptor_.local_endpoint().port();
        thread_ = std::thread([this] { serve(); });
    }

    ~https_stub() {
        stopping_ = true;
        // A blocking accept() does not return when the acceptor is closed from another thread: wake it with
        // a connection of our own.
        boost::system::error_code ec;
        boost::asio::io_context wake_ioc;
        boost::asio::ip::tcp::socket wake(wake_ioc);
        wake.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ec);
        if (thread_.joinable()) {
            thread_.join();
        }
        acceptor_.close(ec);
    }

    unsigned short port() const { return port_; }
    std::string url(std::string const& path) const {
        return "https://127.0.0.1:" + std::to_string(port_) + path;
    }

    /// Every request received so far.
    std::vector<request> requests() const {
        std::lock_guard lock(mu_);
        return seen_;
    }

  private:
    void serve() {
        namespace beast = boost::beast;
        while (!stopping_) {
            boost::system::error_code ec;
            boost::asio::ip::tcp::socket sock(ioc_);
            acceptor_.accept(sock, ec);
            if (ec || stopping_) {
                return;
            }
            beast::ssl_stream<boost::asio::ip::tcp::socket> stream(std::move(sock), ctx_);
            stream.handshake(boost::asio::ssl::stream_base::server, ec);
            if (ec) {
                continue;
            }
            beast::flat_buffer buf;
            request req;
            beast::http::read(stream, buf, req, ec);
            if (ec) {
                continue;
            }
            {
                std::lock_guard lock(mu_);
                seen_.push_back(req);
            }
            response res = handler_(req);
            res.version(11);
            res.keep_alive(false);
            res.prepare_payload();
            beast::http::write(stream, res, ec);
            stream.shutdown(ec);
        }
    }

    handler handler_;
    boost::asio::io_context ioc_;
    boost::asio::ssl::context ctx_{boost::asio::ssl::context::tls_server};
    boost::asio::ip::tcp::acceptor acceptor_{ioc_};
    unsigned short port_ = 0;
    std::thread thread_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mu_;
    std::vector<request> seen_;
};

}  // namespace certctrl::test
