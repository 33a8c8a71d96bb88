#include "certctrl/net/outbound.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <optional>

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

// One request on an open stream. `keep` asks the server to keep the connection; `kept` tells whether it may
// be reused afterwards (a complete response the server did not close); `unsent` that it failed the way a
// connection the server had already closed fails (writing, or closed before a byte of the answer), so the
// server cannot have acted on it.
template <class Stream>
awaitable<result<outbound_response>> exchange(Stream& stream, beast::flat_buffer& buf,
                                              outbound_request const& req, target const& t,
                                              outbound_options const& opts, bool keep, bool& kept,
                                              bool& unsent) {
    kept = false;
    unsent = false;
    bh::request<bh::string_body> r;
    r.method(bh::string_to_verb(req.method));
    r.target(t.path);
    r.version(11);
    bool const default_port = (t.tls && t.port == "443") || (!t.tls && t.port == "80");
    bool const v6 = t.host.find(':') != std::string::npos;
    std::string const host_header = (v6 ? "[" + t.host + "]" : t.host) + (default_port ? "" : ":" + t.port);
    r.set(bh::field::host, host_header);
    r.set(bh::field::user_agent, "certctrl/0.1");
    r.keep_alive(keep);
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
        unsent = true;
        co_return failed(t.host, "sending to", wec);
    }
    bh::response_parser<bh::string_body> parser;
    parser.body_limit(opts.body_limit);
    if (req.method == "HEAD") {
        parser.skip(true);  // a HEAD response announces a body it does not send
    }
    auto [rec, rn] = co_await bh::async_read(stream, buf, parser, token);
    (void)rn;
    if (rec) {
        unsent = !parser.got_some() && buf.size() == 0 &&
                 (rec == bh::error::end_of_stream || rec == asio::error::eof ||
                  rec == asio::error::connection_reset || rec == asio::error::broken_pipe);
        co_return failed(t.host, "reading the response of", rec);
    }
    kept = keep && parser.keep_alive();
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

result<target> checked_target(outbound_request const& req, outbound_options const& opts) {
    auto t = parse_target(req.url);
    if (!t) {
        return t.error();
    }
    if (opts.https_only && !t->tls) {
        return make_error(errc::bad_request,
                          "Only https:// URLs are used here, not " + t->host + " over http",
                          {{"retryable", false}});
    }
    return t;
}

result<std::shared_ptr<asio::ssl::context>> make_tls_context(std::string const& ca_file) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_default_verify_paths();
    if (!ca_file.empty()) {
        beast::error_code lec;
        ctx->load_verify_file(ca_file, lec);
        if (lec) {
            return failed(ca_file, "loading the trusted CA file", lec);
        }
    }
    ctx->set_verify_mode(asio::ssl::verify_peer);
    return ctx;
}

}  // namespace

// An open connection: plain or TLS, with the read buffer that belongs to it.
struct connection_pool::connection {
    std::shared_ptr<asio::ssl::context> tls_ctx;  // outlives the stream that uses it
    std::optional<beast::tcp_stream> plain;
    std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
    beast::flat_buffer buf;
    std::chrono::steady_clock::time_point idle_since;

    beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

    awaitable<result<outbound_response>> exchange(outbound_request const& req, target const& t,
                                                  outbound_options const& opts, bool keep, bool& kept,
                                                  bool& unsent) {
        lowest().expires_after(opts.timeout);
        if (secure) {
            auto aw = net::exchange(*secure, buf, req, t, opts, keep, kept, unsent);
            co_return co_await std::move(aw);
        }
        auto aw = net::exchange(*plain, buf, req, t, opts, keep, kept, unsent);
        co_return co_await std::move(aw);
    }
};

namespace {

// Resolves, checks every address against the egress policy, connects to the allowed ones only (these very
// addresses: no second lookup) and, for https, completes the TLS handshake with peer and name verification.
awaitable<result<std::unique_ptr<connection_pool::connection>>> open_connection(
    target const& t, outbound_options const& opts, std::shared_ptr<asio::ssl::context> tls_ctx) {
    auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, resolved] = co_await resolver.async_resolve(t.host, t.port, token);
    if (rec) {
        co_return failed(t.host, "resolving", rec);
    }
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
                             "Refused by the egress policy: " + t.host + " resolves to " + refused +
                                 "; an operator can allow it in egress.allow",
                             {{"retryable", false}});
    }
    auto c = std::make_unique<connection_pool::connection>();
    beast::tcp_stream tcp_stream(ex);
    tcp_stream.expires_after(opts.timeout);
    auto [cec, ep] = co_await tcp_stream.async_connect(endpoints, token);
    (void)ep;
    if (cec) {
        co_return failed(t.host, "connecting to", cec);
    }
    if (!t.tls) {
        c->plain.emplace(std::move(tcp_stream));
        co_return c;
    }
    c->tls_ctx = std::move(tls_ctx);
    c->secure.emplace(std::move(tcp_stream), *c->tls_ctx);
    auto& stream = *c->secure;
    beast::error_code aec;
    (void)asio::ip::make_address(t.host, aec);
    if (aec) {  // SNI only for names, never for IP literals
        SSL_set_tlsext_host_name(stream.native_handle(), t.host.c_str());
    }
    stream.set_verify_callback(asio::ssl::host_name_verification(t.host));
    auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, token);
    if (hec) {
        co_return failed(t.host, "TLS handshake with", hec);
    }
    co_return c;
}

}  // namespace

awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(d);
    co_await t.async_wait(token);
}

awaitable<result<outbound_response>> fetch(outbound_request req, outbound_options opts) {
    auto t = checked_target(req, opts);
    if (!t) {
        co_return t.error();
    }
    std::shared_ptr<asio::ssl::context> ctx;
    if (t->tls) {
        auto made = make_tls_context(opts.ca_file);
        if (!made) {
            co_return made.error();
        }
        ctx = std::move(*made);
    }
    auto aw_open = open_connection(*t, opts, std::move(ctx));
    auto c = co_await std::move(aw_open);
    if (!c) {
        co_return c.error();
    }
    bool kept = false;
    bool unsent = false;
    auto aw = (*c)->exchange(req, *t, opts, false, kept, unsent);
    auto out = co_await std::move(aw);
    if ((*c)->secure) {
        (*c)->lowest().expires_after(std::chrono::seconds(2));
        auto [sec] = co_await (*c)->secure->async_shutdown(token);
        (void)sec;  // peers often close without close_notify
    }
    co_return out;
}

struct connection_pool::state {
    std::size_t idle_per_origin;
    std::chrono::seconds keep_idle;
    std::mutex mu;
    std::map<std::string, std::shared_ptr<asio::ssl::context>> tls;  // by CA file
    std::atomic<std::uint64_t> opened{0};
    std::uint64_t id = 0;  // unique per pool: its idle connections are its own
};

namespace {

// The idle connections opened on one io_context, kept by that context as a service: they are closed when the
// context shuts down, before the socket services they use are gone, whatever outlives the context.
class idle_connections final : public asio::execution_context::service {
  public:
    static inline asio::execution_context::id id;  // NOLINT: asio's service identity
    explicit idle_connections(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}

    std::mutex mu;
    std::map<std::string, std::vector<std::unique_ptr<connection_pool::connection>>>
        idle;                                                            // by pool and origin
    std::map<std::string, std::chrono::steady_clock::time_point> swept;  // by pool

    /// Closes the connections of pool `pool_prefix` ("<pool id>|") idle longer than `keep_idle` (at most once
    /// a second; with `mu` held), so origins no one asks for again (webhook receivers come and go) do not
    /// keep their sockets.
    void sweep(std::string const& pool_prefix, std::chrono::seconds keep_idle,
               std::chrono::steady_clock::time_point now) {
        auto& last = swept[pool_prefix];
        if (now - last < std::chrono::seconds(1)) {
            return;
        }
        last = now;
        for (auto it = idle.lower_bound(pool_prefix);
             it != idle.end() && it->first.starts_with(pool_prefix);) {
            auto& list = it->second;
            std::erase_if(list, [&](auto const& c) { return now - c->idle_since >= keep_idle; });
            it = list.empty() ? idle.erase(it) : std::next(it);
        }
    }

  private:
    void shutdown() override {
        std::map<std::string, std::vector<std::unique_ptr<connection_pool::connection>>> gone;
        {
            std::lock_guard lock(mu);
            gone.swap(idle);
        }
    }
};

}  // namespace

connection_pool::connection_pool(std::size_t idle_per_origin, std::chrono::seconds keep_idle)
    : state_(std::make_shared<state>()) {
    static std::atomic<std::uint64_t> pools{0};
    state_->id = ++pools;
    state_->idle_per_origin = idle_per_origin;
    state_->keep_idle = keep_idle;
}

connection_pool::~connection_pool() = default;

std::uint64_t connection_pool::opened() const {
    return state_->opened.load();
}

awaitable<result<outbound_response>> connection_pool::fetch(outbound_request req, outbound_options opts) {
    auto t = checked_target(req, opts);
    if (!t) {
        co_return t.error();
    }
    // A connection is reused only by this pool, under the options it was opened (and its addresses checked)
    // with, and on the io_context it was opened on (which keeps it while idle).
    auto ex = co_await asio::this_coro::executor;
    auto& kept_here = asio::use_service<idle_connections>(asio::query(ex, asio::execution::context));
    auto const s = state_;
    std::string const key = std::to_string(s->id) + "|" + (t->tls ? "https://" : "http://") + t->host + ":" +
                            t->port + "|" + opts.ca_file + "|" +
                            std::to_string(reinterpret_cast<std::uintptr_t>(opts.egress.get()));
    std::unique_ptr<connection> c;
    std::shared_ptr<asio::ssl::context> ctx;
    {
        std::lock_guard lock(kept_here.mu);
        auto& list = kept_here.idle[key];
        auto const now = std::chrono::steady_clock::now();
        while (!list.empty() && !c) {
            auto candidate = std::move(list.back());
            list.pop_back();
            if (now - candidate->idle_since < s->keep_idle) {
                c = std::move(candidate);
            }
        }
    }
    if (t->tls) {
        std::lock_guard lock(s->mu);
        ctx = s->tls[opts.ca_file];
    }
    bool const reused = c != nullptr;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!c) {
            if (t->tls && !ctx) {
                auto made = make_tls_context(opts.ca_file);
                if (!made) {
                    co_return made.error();
                }
                ctx = std::move(*made);
                std::lock_guard lock(s->mu);
                s->tls[opts.ca_file] = ctx;
            }
            auto aw_open = open_connection(*t, opts, ctx);
            auto opened = co_await std::move(aw_open);
            if (!opened) {
                co_return opened.error();
            }
            c = std::move(*opened);
            s->opened.fetch_add(1);
        }
        bool kept = false;
        bool unsent = false;
        auto aw = c->exchange(req, *t, opts, true, kept, unsent);
        auto out = co_await std::move(aw);
        if (!out && unsent && reused && attempt == 0) {
            // The server had closed the kept connection: once more on a new one. Never after a byte of an
            // answer came back (the server may have acted on the request).
            c.reset();
            continue;
        }
        if (out && kept) {
            c->idle_since = std::chrono::steady_clock::now();
            std::lock_guard lock(kept_here.mu);
            kept_here.sweep(std::to_string(s->id) + "|", s->keep_idle, c->idle_since);
            auto& list = kept_here.idle[key];
            if (list.size() < s->idle_per_origin) {
                list.push_back(std::move(c));
            }
        }
        co_return out;
    }
    co_return make_error(errc::internal, "unreachable");
}

}  // namespace certctrl::net
