#include "certctrl/http/server.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"
#include "websocket_impl.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>

#include <array>
#include <random>

namespace certctrl::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bh = boost::beast::http;
using asio::ip::tcp;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct server::connection {
    explicit connection(tcp::socket s) : stream(std::move(s)), ex(stream.get_executor()) {}
    beast::tcp_stream stream;  // moved into `websocket` after an upgrade
    asio::any_io_executor ex;
    bool idle = true;  // touched only on the connection's context
    std::string ip;    // the peer address counted against server.max_connections_per_ip ("" when not)
    std::shared_ptr<beast_websocket> websocket;  // after an upgrade (on the connection's context)
};

namespace {

bool valid_request_id(std::string_view s) {
    if (s.empty() || s.size() > 64) {
        return false;
    }
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == ':' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::string new_request_id() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::array<std::uint64_t, 2> words{rng(), rng()};
    return hex_encode(std::string_view(reinterpret_cast<char const*>(words.data()), sizeof words));
}

// The error for a failed request read, or nothing when the connection just ended.
std::optional<app_error> read_failure(beast::error_code const& ec) {
    if (ec == bh::error::body_limit) {
        return make_error(errc::payload_too_large, "Request body exceeds the configured limit");
    }
    if (ec == bh::error::header_limit) {
        return make_error(errc::header_too_large, "Request header exceeds the configured limit");
    }
    // A timeout closes the socket (nothing can be written back); a peer that went away gets nothing.
    if (ec == beast::error::timeout || ec == bh::error::end_of_stream || ec == bh::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::error::broken_pipe) {
        return std::nullopt;
    }
    if (ec.category() == bh::make_error_code(bh::error::bad_method).category()) {
        return make_error(errc::bad_request, "Malformed HTTP request: " + ec.message());
    }
    return std::nullopt;
}

}  // namespace

std::string request_id_for(request const& req) {
    auto it = req.find("X-Request-Id");
    if (it != req.end() && valid_request_id(it->value())) {
        return std::string(it->value());
    }
    return new_request_id();
}

server::server(io_pool& io, config::server_config limits, router const& r, metrics& m, std::string name)
    : io_(io),
      limits_(std::move(limits)),
      router_(r),
      metrics_(m),
      name_(std::move(name)),
      // On the main context (one thread), where begin_shutdown() posts its close.
      acceptor_(io.main()) {}

server::~server() = default;

void server::listen(std::string const& address, std::uint16_t port) {
    tcp::endpoint ep(asio::ip::make_address(address), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(asio::socket_base::max_listen_connections);
}

std::uint16_t server::port() const {
    return acceptor_.local_endpoint().port();
}

void server::start() {
    asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
}

std::size_t server::open_connections() const {
    std::lock_guard lock(mutex_);
    return connections_.size();
}

void server::begin_shutdown() {
    if (stopping_.exchange(true)) {
        return;
    }
    asio::post(acceptor_.get_executor(), [this] {
        beast::error_code ec;
        acceptor_.close(ec);
    });
    std::lock_guard lock(mutex_);
    for (auto const& [id, c] : connections_) {
        // On the connection's context (one thread), so `idle` is read without a race.
        asio::post(c->ex, [c] {
            if (c->websocket) {
                c->websocket->close(1001, "server shutting down");
            } else if (c->idle) {
                c->stream.cancel();
            }
        });
    }
}

awaitable<void> server::accept_loop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(io_.next(), use_tuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor_.is_open() || stopping_) {
                co_return;
            }
            // Out of descriptors and similar: back off instead of spinning.
            spdlog::warn("{}: accept failed: {}", name_, ec.message());
            asio::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(50));
            co_await t.async_wait(use_tuple);
            continue;
        }
        if (stopping_) {
            co_return;
        }
        // The peer's address counts against the per-address cap, unless it is a trusted proxy (every client
        // behind it shares its address).
        std::string ip;
        {
            beast::error_code rec;
            auto const ep = socket.remote_endpoint(rec);
            if (!rec) {
                ip = ep.address().to_string();
            }
            if (limits_.max_connections_per_ip == 0 ||
                std::find(limits_.trusted_proxies.begin(), limits_.trusted_proxies.end(), ip) !=
                    limits_.trusted_proxies.end()) {
                ip.clear();
            }
        }
        // Registered here, under the same lock as the cap checks, so a burst cannot overshoot the caps.
        std::shared_ptr<connection> c;
        std::uint64_t id = 0;
        {
            std::lock_guard lock(mutex_);
            bool const ip_ok = ip.empty() || per_ip_[ip] < limits_.max_connections_per_ip;
            if (connections_.size() < limits_.max_connections && ip_ok) {
                c = std::make_shared<connection>(std::move(socket));
                c->ip = ip;
                id = ++next_id_;
                connections_.emplace(id, c);
                if (!ip.empty()) {
                    ++per_ip_[ip];
                }
            } else if (!ip.empty() && per_ip_[ip] == 0) {
                per_ip_.erase(ip);
            }
        }
        if (!c) {
            auto ex = socket.get_executor();
            asio::co_spawn(ex, refuse_connection(std::move(socket)), asio::detached);
            continue;
        }
        asio::co_spawn(c->ex, run_connection(c, id), asio::detached);
    }
}

namespace {

// Closes after an error response while the client may still be sending: shut down our side, then read and
// discard for a moment, so the kernel does not answer unread bytes with a reset that would destroy the
// response before the client reads it.
awaitable<void> linger_close(beast::tcp_stream& stream) {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(std::chrono::seconds(1));
    std::array<char, 4096> sink;
    for (;;) {  // until the client closes or the timer fires
        auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
        if (rec) {
            break;
        }
    }
    stream.socket().close(ec);
}

}  // namespace

void server::set_security_headers(response& res) const {
    res.set("X-Content-Type-Options", "nosniff");
    if (limits_.public_url.rfind("https://", 0) == 0) {
        res.set(bh::field::strict_transport_security, "max-age=31536000");
    }
}

awaitable<void> server::refuse_connection(tcp::socket s) {
    beast::tcp_stream stream(std::move(s));
    auto res = json_error(11, false, make_error(errc::unavailable, "Too many connections, try again later"));
    stream.expires_after(std::chrono::seconds(2));
    co_await bh::async_write(stream, res, use_tuple);
    co_await linger_close(stream);
}

awaitable<void> server::run_connection(std::shared_ptr<connection> c, std::uint64_t id) {
    metrics_.connection_opened();
    std::string peer;
    {
        beast::error_code ec;
        auto ep = c->stream.socket().remote_endpoint(ec);
        peer = ec ? std::string("unknown") : ep.address().to_string();
    }
    beast::flat_buffer buffer;
    try {
        for (;;) {
            // Idle keep-alive wait: until the first byte of the next request.
            if (buffer.size() == 0) {
                c->idle = true;
                if (stopping_) {
                    break;
                }
                c->stream.expires_after(limits_.idle_timeout);
                auto [ec, n] = co_await c->stream.async_read_some(buffer.prepare(4096), use_tuple);
                if (ec) {
                    break;
                }
                buffer.commit(n);
            }
            c->idle = false;

            // The whole request (header and body) must arrive within the read timeout.
            bh::request_parser<bh::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(limits_.header_limit_bytes));
            parser.body_limit(limits_.body_limit_bytes);
            c->stream.expires_after(limits_.read_timeout);
            auto const started = std::chrono::steady_clock::now();
            // The header first: the gate decides from it (its credentials) how much body may follow.
            beast::error_code ec;
            {
                auto [hec, hn] = co_await bh::async_read_header(c->stream, buffer, parser, use_tuple);
                (void)hn;
                ec = hec;
            }
            if (!ec && !parser.is_done()) {
                if (gate_) {
                    auto aw_gate = gate_(parser.get());
                    std::size_t const allowed =
                        std::min(co_await std::move(aw_gate), limits_.body_limit_bytes);
                    // Beast checks a Content-Length against the limit when the header completes: checked
                    // here.
                    if (auto const length = parser.content_length(); length && *length > allowed) {
                        ec = bh::error::body_limit;
                    } else {
                        parser.body_limit(allowed);
                    }
                }
                if (!ec) {
                    auto [bec, bn] = co_await bh::async_read(c->stream, buffer, parser, use_tuple);
                    (void)bn;
                    ec = bec;
                }
            }
            if (ec) {
                auto failure = read_failure(ec);
                if (!failure) {
                    break;
                }
                auto res = json_error(11, false, *failure);
                std::string rid = new_request_id();
                res.set("X-Request-Id", rid);
                set_security_headers(res);
                c->stream.expires_after(limits_.write_timeout);
                co_await bh::async_write(c->stream, res, use_tuple);
                metrics_.record("unmatched", "-", res.result_int(),
                                std::chrono::steady_clock::now() - started);
                spdlog::info("rid={} access {} {} - status={} error=\"{}\"", rid, name_, peer,
                             res.result_int(), ec.message());
                co_await linger_close(c->stream);
                break;
            }

            request req = parser.release();
            std::string const rid = request_id_for(req);
            // Every X-Forwarded-For line, in order: a proxy may add its own line after the client's.
            std::string forwarded;
            for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) {
                forwarded += (forwarded.empty() ? "" : ",") + std::string(it->value());
            }
            std::string const client = client_address(peer, forwarded, limits_.trusted_proxies);
            std::string route;
            upgrade_fn upgrade;
            std::string cors_origin;  // the request's Origin when it may read our answers (CORS)
            if (auto o = req.find(bh::field::origin);
                cors_ && o != req.end() && cors_(std::string(o->value()))) {
                cors_origin = std::string(o->value());
            }
            response res;
            if (req.method() == bh::verb::options && req.find("Access-Control-Request-Method") != req.end()) {
                route = "preflight";
                res = preflight(req, cors_origin);
            } else {
                res = co_await dispatch(req, rid, client, route, upgrade);
            }
            if (!cors_origin.empty()) {
                res.set(bh::field::access_control_allow_origin, cors_origin);
                res.set(bh::field::access_control_allow_credentials, "true");
                res.set(bh::field::access_control_expose_headers,
                        "X-Request-Id, Retry-After, ETag, X-Poll-Interval, X-Export-Password, "
                        "Content-Disposition");
            }
            if (cors_) {
                auto const vary = res.find(bh::field::vary);
                res.set(bh::field::vary,
                        vary == res.end() ? std::string("Origin") : std::string(vary->value()) + ", Origin");
            }
            if (upgrade && res.result() == bh::status::switching_protocols && !stopping_) {
                metrics_.record(route, std::string(req.method_string()), 101,
                                std::chrono::steady_clock::now() - started);
                // What the HTTP side holds is released first: the socket may stay open for days.
                buffer.clear();
                buffer.shrink_to_fit();
                co_await run_websocket(c, std::move(req), std::move(upgrade), rid, client, route);
                break;
            }
            if (res.result() == bh::status::switching_protocols) {
                res = json_error(req, make_error(errc::unavailable, "The server is shutting down"));
            }
            res.set("X-Request-Id", rid);
            res.set(bh::field::server, "certctrl");
            set_security_headers(res);
            bool const close = stopping_ || !res.keep_alive() || !req.keep_alive();
            res.keep_alive(!close);
            res.prepare_payload();
            c->stream.expires_after(limits_.write_timeout);
            auto [wec, wn] = co_await bh::async_write(c->stream, res, use_tuple);
            auto const elapsed = std::chrono::steady_clock::now() - started;
            metrics_.record(route.empty() ? "unmatched" : route, std::string(req.method_string()),
                            res.result_int(), elapsed);
            // The path only: query strings may carry tokens.
            std::string_view target = req.target();
            target = target.substr(0, target.find('?'));
            spdlog::info("rid={} access {} {} {} {} route={} status={} bytes={} ms={:.3f}", rid, name_,
                         client, req.method_string(), target, route.empty() ? "-" : route, res.result_int(),
                         wn, std::chrono::duration<double, std::milli>(elapsed).count());
            if (wec || close) {
                break;
            }
        }
    } catch (std::exception const& e) {
        spdlog::error("{}: connection from {} failed: {}", name_, peer, e.what());
    }
    if (!c->websocket) {  // else the websocket owns (and closed) the stream
        beast::error_code ec;
        c->stream.socket().shutdown(tcp::socket::shutdown_both, ec);
        c->stream.socket().close(ec);
    }
    c->websocket.reset();
    {
        std::lock_guard lock(mutex_);
        connections_.erase(id);
        if (!c->ip.empty()) {
            if (auto it = per_ip_.find(c->ip); it != per_ip_.end() && --it->second == 0) {
                per_ip_.erase(it);
            }
        }
    }
    metrics_.connection_closed();
}

response server::preflight(request const& req, std::string const& origin) const {
    if (origin.empty()) {
        return json_error(
            req, make_error(errc::forbidden, "CORS: this Origin may not call the API from a browser"));
    }
    auto const method = bh::string_to_verb(req["Access-Control-Request-Method"]);
    auto url = boost::urls::parse_origin_form(req.target());
    if (!url || method == bh::verb::unknown) {
        return json_error(req, make_error(errc::bad_request, "Malformed CORS preflight"));
    }
    auto m = router_.find(method, url->encoded_path());
    if (m.outcome == router::match::kind::not_found) {
        return json_error(req,
                          make_error(errc::not_found, "No route for " + std::string(url->encoded_path())));
    }
    if (m.outcome == router::match::kind::method_not_allowed) {
        auto res = json_error(
            req, make_error(errc::method_not_allowed, "Allowed here: " + m.allow, {{"allow", m.allow}}));
        res.set(bh::field::allow, m.allow);
        return res;
    }
    response res{bh::status::no_content, req.version()};
    res.set(bh::field::access_control_allow_methods, std::string(bh::to_string(method)));
    res.set(bh::field::access_control_allow_headers,
            "Authorization, Content-Type, Accept, If-None-Match, X-Request-Id");
    res.set(bh::field::access_control_max_age, "600");
    res.keep_alive(req.keep_alive());
    return res;
}

awaitable<void> server::run_websocket(std::shared_ptr<connection> c, request req, upgrade_fn fn,
                                      std::string const& rid, std::string const& client,
                                      std::string const& route) {
    auto const opened = std::chrono::steady_clock::now();
    c->idle = false;
    c->websocket =
        std::make_shared<beast_websocket>(std::move(c->stream), limits_.websocket_message_limit_bytes);
    auto ch = c->websocket;
    // Copied: `req` is released below. The path only (a query may carry the token).
    std::string const target(req.target().substr(0, req.target().find('?')));
    auto accept_op = ch->accept(req);
    bool const accepted = co_await std::move(accept_op);
    req = {};  // the handshake is over: its headers are not needed for the socket's life
    if (!accepted) {
        spdlog::info("rid={} access {} {} GET {} route={} status=101 websocket handshake failed", rid, name_,
                     client, target, route);
        co_return;
    }
    spdlog::info("rid={} access {} {} GET {} route={} status=101 websocket open", rid, name_, client, target,
                 route);
    asio::co_spawn(c->ex, ch->write_loop(), asio::detached);
    if (stopping_) {
        ch->close(1001, "server shutting down");
    }
    try {
        auto op = fn(ch);
        co_await std::move(op);
    } catch (std::exception const& e) {
        spdlog::error("rid={} websocket handler failed: {}", rid, e.what());
        ch->close(1011, "internal error");
    }
    auto fin = ch->finish();
    co_await std::move(fin);
    spdlog::info("rid={} websocket closed after {:.1f} s", rid,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - opened).count());
}

awaitable<response> server::dispatch(request& req, std::string const& request_id, std::string const& peer,
                                     std::string& route_out, upgrade_fn& upgrade_out) {
    auto url = boost::urls::parse_origin_form(req.target());
    if (!url) {
        co_return json_error(req, make_error(errc::bad_request, "Malformed request target"));
    }
    std::string path = url->path();  // percent-decoded, for handlers and logs
    // Matched on the encoded path, so an encoded '/' stays inside its segment.
    auto m = router_.find(req.method(), url->encoded_path());
    route_out = m.pattern;
    switch (m.outcome) {
        case router::match::kind::not_found:
            co_return json_error(
                req, make_error(errc::not_found, "No route for " + std::string(req.method_string()) + " " +
                                                     std::string(url->encoded_path())));
        case router::match::kind::bad_param:
            co_return json_error(req, m.error);
        case router::match::kind::method_not_allowed: {
            auto res = json_error(req, make_error(errc::method_not_allowed,
                                                  "Method " + std::string(req.method_string()) +
                                                      " is not allowed here; allowed: " + m.allow,
                                                  {{"allow", m.allow}}));
            res.set(bh::field::allow, m.allow);
            co_return res;
        }
        case router::match::kind::found:
            break;
    }
    request_context ctx{req,
                        std::move(m.params),
                        request_id,
                        peer,
                        m.pattern,
                        std::move(path),
                        std::string(url->encoded_query()),
                        std::nullopt,
                        {}};
    std::optional<response> out;
    try {
        out = co_await (*m.target)(ctx);
    } catch (std::exception const& e) {
        ctx.log(spdlog::level::err, "unhandled exception in {}: {}", m.pattern, e.what());
    }
    upgrade_out = std::move(ctx.upgrade);
    if (!out) {
        co_return json_error(req, make_error(errc::internal, "Internal server error"));
    }
    co_return std::move(*out);
}

}  // namespace certctrl::http
