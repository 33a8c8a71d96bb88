#include "certctrl/net/outbound.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>

namespace certctrl::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bh = beast::http;
using tcp = asio::ip::tcp;

std::string outbound_response::header(std::string const& name) const {
    for (auto const& [k, v] : headers) {
        if (k == name) {
            return v;
        }
    }
    return "";
}

namespace {

constexpr auto token = asio::as_tuple(asio::use_awaitable);

// Network failures are worth retrying later (params.retryable), unlike answers the other side gave.
app_error failed(std::string const& host, std::string const& what, beast::error_code const& ec) {
    return make_error(errc::external_service, what + " " + host + " failed: " + ec.message(),
                      {{"retryable", true}});
}

struct target {
    bool tls = true;
    std::string host;
    std::string port;
    std::string path;  // with query
};

result<target> parse_target(std::string const& url) {
    auto u = boost::urls::parse_uri(url);
    if (!u || (u->scheme() != "https" && u->scheme() != "http") || u->host().empty()) {
        return make_error(errc::bad_request, "not an http(s) URL: " + url.substr(0, 200));
    }
    target t;
    t.tls = u->scheme() == "https";
    t.host = u->host_address();
    if (!t.host.empty() && t.host.front() == '[') {
        t.host = t.host.substr(1, t.host.size() - 2);
    }
    t.port = u->has_port() ? std::string(u->port()) : (t.tls ? "443" : "80");
    t.path = std::string(u->encoded_path());
    if (t.path.empty()) {
        t.path = "/";
    }
    if (u->has_query()) {
        t.path += "?" + std::string(u->encoded_query());
    }
    return t;
}

template <class Stream>
awaitable<result<outbound_response>> exchange(Stream& stream, outbound_request const& req, target const& t,
                                              outbound_options const& opts) {
    bh::request<bh::string_body> r;
    r.method(bh::string_to_verb(req.method));
    r.target(t.path);
    r.version(11);
    bool const default_port = (t.tls && t.port == "443") || (!t.tls && t.port == "80");
    bool const v6 = t.host.find(':') != std::string::npos;
    std::string const host_header = (v6 ? "[" + t.host + "]" : t.host) + (default_port ? "" : ":" + t.port);
    r.set(bh::field::host, host_header);
    r.set(bh::field::user_agent, "certctrl/0.1");
    r.set(bh::field::connection, "close");
    for (auto const& [k, v] : req.headers) {
        r.set(k, v);
    }
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT") {
        r.body() = req.body;
        r.prepare_payload();
    }
    auto [wec, wn] = co_await bh::async_write(stream, r, token);
    (void)wn;
    if (wec) {
        co_return failed(t.host, "sending to", wec);
    }
    beast::flat_buffer buf;
    bh::response_parser<bh::string_body> parser;
    parser.body_limit(opts.body_limit);
    auto [rec, rn] = co_await bh::async_read(stream, buf, parser, token);
    (void)rn;
    if (rec) {
        co_return failed(t.host, "reading the response of", rec);
    }
    auto res = parser.release();
    outbound_response out;
    out.status = res.result_int();
    for (auto const& f : res) {
        std::string name(f.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        out.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    out.body = std::move(res.body());
    co_return out;
}

}  // namespace

awaitable<result<outbound_response>> fetch(outbound_request req, outbound_options opts) {
    auto t = parse_target(req.url);
    if (!t) {
        co_return t.error();
    }
    if (opts.https_only && !t->tls) {
        co_return make_error(errc::bad_request,
                             "Only https:// URLs are used here, not " + t->host + " over http",
                             {{"retryable", false}});
    }
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, resolved] = co_await resolver.async_resolve(t->host, t->port, token);
    if (rec) {
        co_return failed(t->host, "resolving", rec);
    }
    // Only the addresses the egress policy allows are connected to (these very ones: no second lookup).
    std::vector<tcp::endpoint> endpoints;
    std::string refused;
    for (auto const& entry : resolved) {
        auto const why = opts.egress ? opts.egress->refuses(entry.endpoint().address()) : std::nullopt;
        if (why) {
            refused = entry.endpoint().address().to_string() + " (" + *why + ")";
        } else {
            endpoints.push_back(entry.endpoint());
        }
    }
    if (endpoints.empty()) {
        co_return make_error(errc::bad_request,
                             "Refused by the egress policy: " + t->host + " resolves to " + refused +
                                 "; an operator can allow it in egress.allow",
                             {{"retryable", false}});
    }
    beast::tcp_stream tcp_stream(ex);
    tcp_stream.expires_after(opts.timeout);
    auto [cec, ep] = co_await tcp_stream.async_connect(endpoints, token);
    (void)ep;
    if (cec) {
        co_return failed(t->host, "connecting to", cec);
    }
    if (!t->tls) {
        auto aw = exchange(tcp_stream, req, *t, opts);
        co_return co_await std::move(aw);
    }
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    ctx.set_default_verify_paths();
    if (!opts.ca_file.empty()) {
        beast::error_code lec;
        ctx.load_verify_file(opts.ca_file, lec);
        if (lec) {
            co_return failed(opts.ca_file, "loading the trusted CA file", lec);
        }
    }
    ctx.set_verify_mode(asio::ssl::verify_peer);
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), ctx);
    beast::error_code aec;
    auto const addr = asio::ip::make_address(t->host, aec);
    if (aec) {  // SNI only for names, never for IP literals
        SSL_set_tlsext_host_name(stream.native_handle(), t->host.c_str());
    }
    stream.set_verify_callback(asio::ssl::host_name_verification(t->host));
    (void)addr;
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, token);
    if (hec) {
        co_return failed(t->host, "TLS handshake with", hec);
    }
    auto aw = exchange(stream, req, *t, opts);
    auto out = co_await std::move(aw);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
    auto [sec] = co_await stream.async_shutdown(token);
    (void)sec;  // peers often close without close_notify
    co_return out;
}

}  // namespace certctrl::net
