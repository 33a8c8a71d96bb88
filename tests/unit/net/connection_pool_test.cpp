// Kept-alive outbound connections (net::connection_pool) and a CA's shared session (acme::ca_session): reuse,
// a dropped connection replaced, a closing server respected, the request rate and the CA's Retry-After held.
#include "run_awaitable.hpp"

#include "certctrl/acme/ca_session.hpp"
#include "certctrl/acme/client.hpp"
#include "certctrl/acme/jws.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/net/outbound.hpp"

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <mutex>
#include <set>
#include <thread>

namespace certctrl::test {
namespace {

namespace asio = boost::asio;
namespace bh = boost::beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

// A plain HTTP server on 127.0.0.1, a thread per connection. The handler answers each request; `close_after`
// responses on a connection, it closes without telling (a server dropping an idle kept connection).
class loopback_http {
  public:
    using request = bh::request<bh::string_body>;
    using response = bh::response<bh::string_body>;

    /// `junk`: bytes written after the first response of a connection (a server that sends more than it
    /// announced).
    loopback_http(std::function<response(request const&)> h, int close_after = 0, std::string junk = "")
        : handler_(std::move(h)),
          close_after_(close_after),
          junk_(std::move(junk)),
          acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
        port_ = acceptor_.local_endpoint().port();
        accept_thread_ = std::thread([this] { accept_loop(); });
    }
    ~loopback_http() {
        stopping_ = true;
        boost::system::error_code ec;
        asio::io_context wake_ioc;
        tcp::socket wake(wake_ioc);
        wake.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
        accept_thread_.join();
        {
            std::lock_guard lock(mu_);
            for (auto& s : sockets_) {
                s.shutdown(tcp::socket::shutdown_both, ec);
            }
        }
        for (auto& t : threads_) {
            t.join();
        }
    }
    std::string url(std::string const& path) const {
        return "http://127.0.0.1:" + std::to_string(port_) + path;
    }
    int accepted() const { return accepted_.load(); }
    /// Connections the client ended.
    int ended() const { return ended_.load(); }
    std::vector<clock_type::time_point> arrivals() const {
        std::lock_guard lock(mu_);
        return arrivals_;
    }
    std::vector<std::string> targets() const {
        std::lock_guard lock(mu_);
        return targets_;
    }

  private:
    void accept_loop() {
        while (!stopping_) {
            tcp::socket s(ioc_);
            boost::system::error_code ec;
            acceptor_.accept(s, ec);
            if (ec || stopping_) {
                return;
            }
            accepted_.fetch_add(1);
            std::lock_guard lock(mu_);
            sockets_.push_back(std::move(s));
            threads_.emplace_back([this, sock = &sockets_.back()] { serve(*sock); });
        }
    }
    void serve(tcp::socket& s) {
        boost::beast::flat_buffer buf;
        for (int n = 1;; ++n) {
            request req;
            boost::system::error_code ec;
            bh::read(s, buf, req, ec);
            if (ec) {
                ++ended_;  // the client closed it (or sent something unreadable)
                return;
            }
            {
                std::lock_guard lock(mu_);
                arrivals_.push_back(clock_type::now());
                targets_.emplace_back(req.target());
            }
            response res = handler_(req);
            res.version(11);
            res.prepare_payload();
            bh::write(s, res, ec);
            if (!ec && n == 1 && !junk_.empty()) {
                asio::write(s, asio::buffer(junk_), ec);
            }
            if (ec || !res.keep_alive() || (close_after_ > 0 && n >= close_after_)) {
                s.shutdown(tcp::socket::shutdown_both, ec);
                return;
            }
        }
    }

    std::function<response(request const&)> handler_;
    int close_after_;
    std::string junk_;
    asio::io_context ioc_;
    tcp::acceptor acceptor_;
    unsigned short port_ = 0;
    std::thread accept_thread_;
    std::atomic<bool> stopping_{false};
    std::atomic<int> accepted_{0};
    std::atomic<int> ended_{0};
    mutable std::mutex mu_;
    std::list<tcp::socket> sockets_;
    std::list<std::thread> threads_;
    std::vector<clock_type::time_point> arrivals_;
    std::vector<std::string> targets_;
};

loopback_http::response text(std::string body, bool keep = true) {
    loopback_http::response r{bh::status::ok, 11};
    r.body() = std::move(body);
    r.keep_alive(keep);
    return r;
}

// Fetches every URL in turn through the pool, in one io_context (a connection is reused where it was opened).
std::vector<result<net::outbound_response>> fetch_all(net::connection_pool& pool,
                                                      std::vector<std::string> urls) {
    auto task = [&]() -> asio::awaitable<std::vector<result<net::outbound_response>>> {
        std::vector<result<net::outbound_response>> out;
        for (auto const& u : urls) {
            auto aw = pool.fetch({"GET", u, {}, ""}, net::outbound_options{});
            out.push_back(co_await std::move(aw));
        }
        co_return out;
    };
    return run_awaitable(task());
}

TEST(ConnectionPool, RequestsToOneOriginShareAConnection) {
    loopback_http server([](auto const& req) { return text(std::string(req.target())); });
    net::connection_pool pool;
    auto got = fetch_all(pool, {server.url("/a"), server.url("/b"), server.url("/c")});
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0]->body, "/a");
    EXPECT_EQ(got[1]->body, "/b");
    EXPECT_EQ(got[2]->body, "/c");
    EXPECT_EQ(pool.opened(), 1u);
    EXPECT_EQ(server.accepted(), 1);
}

TEST(ConnectionPool, AKeptConnectionTheServerDroppedIsReplacedOnce) {
    loopback_http server([](auto const& req) { return text(std::string(req.target())); }, 1);
    net::connection_pool pool;
    auto got = fetch_all(pool, {server.url("/a"), server.url("/b")});
    ASSERT_TRUE(got[0]) << got[0].error().what;
    ASSERT_TRUE(got[1]) << got[1].error().what;
    EXPECT_EQ(got[1]->body, "/b");
    EXPECT_EQ(pool.opened(), 2u);
    EXPECT_EQ(server.arrivals().size(), 2u) << "the request was sent once on the new connection";
}

// A kept connection on which a reply came back garbled: the request may have been acted on, so it is not
// sent again (only a connection closed before any answer is).
TEST(ConnectionPool, AGarbledAnswerOnAKeptConnectionIsNotSentAgain) {
    loopback_http server([](auto const&) { return text("ok"); }, 0, "junk");
    net::connection_pool pool;
    auto got = fetch_all(pool, {server.url("/a"), server.url("/b")});
    ASSERT_TRUE(got[0]);
    EXPECT_FALSE(got[1]);
    EXPECT_EQ(server.arrivals().size(), 2u) << "the second request was sent once";
}

// Origins no one asks for again (a webhook receiver used once) do not keep their sockets: a later request
// through the pool closes the connections idle past keep_idle.
TEST(ConnectionPool, ConnectionsIdlePastTheirTimeAreClosedByTheNextRequest) {
    loopback_http once([](auto const&) { return text("a"); });
    loopback_http later([](auto const&) { return text("b"); });
    net::connection_pool pool(16, std::chrono::seconds(1));
    // Read inside the io_context's life: its end closes every idle connection anyway.
    auto task = [&]() -> asio::awaitable<std::pair<int, int>> {
        auto aw_a = pool.fetch({"GET", once.url("/a"), {}, ""}, net::outbound_options{});
        auto a = co_await std::move(aw_a);
        EXPECT_TRUE(a);
        auto aw_b = pool.fetch({"GET", later.url("/b"), {}, ""}, net::outbound_options{});
        auto b = co_await std::move(aw_b);
        EXPECT_TRUE(b);
        int const young = once.ended();  // both idle and young: none closed
        auto aw_wait = net::sleep_for(std::chrono::milliseconds(1100));
        co_await std::move(aw_wait);
        auto aw_c = pool.fetch({"GET", later.url("/c"), {}, ""}, net::outbound_options{});
        auto c = co_await std::move(aw_c);
        EXPECT_TRUE(c);
        for (int i = 0; i < 50 && once.ended() == 0; ++i) {
            auto aw_tick = net::sleep_for(std::chrono::milliseconds(10));
            co_await std::move(aw_tick);
        }
        co_return std::pair<int, int>{young, once.ended()};
    };
    auto const [young, old] = run_awaitable(task());
    EXPECT_EQ(young, 0);
    EXPECT_EQ(old, 1) << "the connection to the origin used once was closed while the pool lives on";
}

TEST(ConnectionPool, AConnectionTheServerClosesIsNotKept) {
    loopback_http server([](auto const&) { return text("x", false); });
    net::connection_pool pool;
    auto got = fetch_all(pool, {server.url("/a"), server.url("/b")});
    ASSERT_TRUE(got[0] && got[1]);
    EXPECT_EQ(pool.opened(), 2u);
    EXPECT_EQ(server.accepted(), 2);
}

TEST(ConnectionPool, AnUnreachableOriginIsAnError) {
    unsigned short port = 0;
    {
        asio::io_context ioc;
        tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
        port = a.local_endpoint().port();
    }
    net::connection_pool pool;
    auto got = fetch_all(pool, {"http://127.0.0.1:" + std::to_string(port) + "/"});
    ASSERT_FALSE(got[0]);
    EXPECT_EQ(got[0].error().code, errc::external_service);
}

TEST(CaSession, RequestsAreSpacedToTheConfiguredRate) {
    loopback_http server([](auto const&) { return text("{}"); });
    acme::ca_session session(server.url("/dir"), {}, acme::ca_limits{20, 0, 300}, nullptr);
    auto task = [&]() -> asio::awaitable<int> {
        int ok = 0;
        for (int i = 0; i < 6; ++i) {
            auto aw = session.fetch({"GET", server.url("/x"), {}, ""});
            auto r = co_await std::move(aw);
            ok += r ? 1 : 0;
        }
        co_return ok;
    };
    EXPECT_EQ(run_awaitable(task()), 6);
    auto const at = server.arrivals();
    ASSERT_EQ(at.size(), 6u);
    // 20 per second: each request starts 50 ms after the one before (a slow machine only spaces them more).
    EXPECT_GE(at.back() - at.front(), std::chrono::milliseconds(5 * 50 - 15));
    EXPECT_GT(session.stats().paused_ms, 0u);
}

// While the rate is spent, a request of an order a user waits for goes before the renewals' waiting ones.
TEST(CaSession, UrgentRequestsGoBeforeWaitingRenewals) {
    loopback_http server([](auto const&) { return text("{}"); });
    acme::ca_session session(server.url("/dir"), {}, acme::ca_limits{10, 0, 300}, nullptr);
    asio::io_context ioc;
    int done = 0;
    auto one = [&](std::string path, bool urgent) -> asio::awaitable<void> {
        auto aw = session.fetch({"GET", server.url(path), {}, ""}, urgent);
        auto r = co_await std::move(aw);
        done += r ? 1 : 0;
    };
    for (int i = 0; i < 6; ++i) {
        asio::co_spawn(ioc, one("/renewal-" + std::to_string(i), false), asio::detached);
    }
    asio::steady_timer t(ioc);
    t.expires_after(std::chrono::milliseconds(30));
    t.async_wait([&](boost::system::error_code) { asio::co_spawn(ioc, one("/user", true), asio::detached); });
    ioc.run();
    EXPECT_EQ(done, 7);
    auto const order = server.targets();
    auto const at = std::find(order.begin(), order.end(), "/user") - order.begin();
    EXPECT_LE(at, 2) << "sent after at most the renewal that was on its way and the one let go meanwhile";
}

// A fake CA at `base`: its directory, a nonce on every answer, and /order/1, whose first POST is answered
// `status` with `Retry-After: retry_after` and an ACME problem of `type`, later ones with the order.
loopback_http::response fake_ca(loopback_http::request const& req, std::string const& base,
                                std::atomic<int>& order_posts, bh::status status, char const* retry_after,
                                std::string const& type) {
    loopback_http::response r{bh::status::ok, 11};
    r.set("Replay-Nonce", "n" + std::to_string(order_posts.load()));
    std::string const target(req.target());
    if (target == "/dir") {
        r.body() = R"({"newNonce":")" + base + R"(/nonce","newAccount":")" + base + R"(/acct","newOrder":")" +
                   base + R"(/order"})";
    } else if (target == "/order/1" && order_posts.fetch_add(1) == 0) {
        r.result(status);
        r.set("Retry-After", retry_after);
        r.set("Content-Type", "application/problem+json");
        r.body() = R"({"type":"urn:ietf:params:acme:error:)" + type + R"(","detail":"wait"})";
    } else if (target == "/order/1") {
        r.body() = R"({"status":"pending","authorizations":[],"finalize":")" + base + R"(/fin"})";
    } else if (req.method() != bh::verb::head) {
        r.body() = "{}";
    }
    return r;
}

TEST(CaSession, ARateLimitedRequestIsSentAgainAfterTheCasRetryAfter) {
    std::atomic<int> order_posts{0};
    std::string base;
    loopback_http server([&](loopback_http::request const& req) {
        return fake_ca(req, base, order_posts, bh::status::too_many_requests, "1", "rateLimited");
    });
    base = server.url("");
    auto session = std::make_shared<acme::ca_session>(server.url("/dir"), net::outbound_options{},
                                                      acme::ca_limits{}, nullptr);
    acme::client c(session, crypto::generate_private_key_pem(crypto::key_algorithm::ecdsa_p256));
    c.set_kid(base + "/acct/1");
    auto got = run_awaitable(c.get_order(base + "/order/1"));
    ASSERT_TRUE(got) << got.error().what;
    EXPECT_EQ(got->status, "pending");
    EXPECT_EQ(order_posts.load(), 2);
    EXPECT_EQ(session->stats().rate_limited, 1u);
    auto const at = server.arrivals();
    ASSERT_GE(at.size(), 2u);
    EXPECT_GE(at.back() - at[at.size() - 2], std::chrono::milliseconds(990))
        << "sent again after Retry-After";
}

// A 503 with Retry-After holds every order to the CA; a rateLimited answer (one account's or one set of
// names' limit) holds only its own order: another request meanwhile goes at once.
TEST(CaSession, A503HoldsTheWholeCaButARateLimitOnlyItsOrder) {
    for (bool const overloaded : {true, false}) {
        std::atomic<int> order_posts{0};
        std::string base;
        loopback_http server([&](loopback_http::request const& req) {
            return overloaded
                       ? fake_ca(req, base, order_posts, bh::status::service_unavailable, "2",
                                 "serverInternal")
                       : fake_ca(req, base, order_posts, bh::status::too_many_requests, "2", "rateLimited");
        });
        base = server.url("");
        auto session = std::make_shared<acme::ca_session>(server.url("/dir"), net::outbound_options{},
                                                          acme::ca_limits{}, nullptr);
        acme::client c(session, crypto::generate_private_key_pem(crypto::key_algorithm::ecdsa_p256));
        c.set_kid(base + "/acct/1");
        asio::io_context ioc;
        bool order_ok = false;
        auto order = [&]() -> asio::awaitable<void> {
            auto aw = c.get_order(base + "/order/1");
            auto r = co_await std::move(aw);
            order_ok = r.has_value();
        };
        auto other = [&]() -> asio::awaitable<void> {
            asio::steady_timer t(co_await asio::this_coro::executor);
            t.expires_after(std::chrono::milliseconds(300));
            co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
            auto aw = session->fetch({"GET", base + "/other", {}, ""});
            (void)co_await std::move(aw);
        };
        asio::co_spawn(ioc, order(), asio::detached);
        asio::co_spawn(ioc, other(), asio::detached);
        ioc.run();
        EXPECT_TRUE(order_ok) << "sent again after the wait";
        auto const targets = server.targets();
        auto const other_at = std::find(targets.begin(), targets.end(), "/other") - targets.begin();
        auto const retry_at =
            std::find(targets.rbegin(), targets.rend(), "/order/1").base() - targets.begin() - 1;
        std::string seen;
        auto const times = server.arrivals();
        for (std::size_t i = 0; i < targets.size(); ++i) {
            seen += targets[i] + "@" +
                    std::to_string(
                        std::chrono::duration_cast<std::chrono::milliseconds>(times[i] - times[0]).count()) +
                    " ";
        }
        if (overloaded) {
            // The other request went only when the CA's 2-s hold ended (with the order's retry, in either
            // order: both wait for the same moment).
            ASSERT_LT(static_cast<std::size_t>(other_at), times.size()) << seen;
            EXPECT_GE(times[static_cast<std::size_t>(other_at)] - times[0], std::chrono::milliseconds(1900))
                << "the whole CA waited: " << seen;
            EXPECT_GE(retry_at, 0) << seen;
        } else {
            EXPECT_LT(other_at, retry_at) << "only the rate-limited order waited: " << seen;
        }
    }
}

// Orders to one CA share its nonces: a nonce from one order's answer serves the next request of any order,
// none is used twice, and a CA that rejects a nonce (badNonce, as pebble does at random) gets the request
// again with the fresh nonce of the rejection.
TEST(CaSession, OrdersShareNoncesNeverUseOneTwiceAndGetPastBadNonce) {
    std::mutex mu;
    int issued = 0;
    int heads = 0;
    int posts = 0;
    int reused = 0;
    int rejected = 0;
    std::set<std::string> fresh;  // issued and not used yet
    std::string base;
    loopback_http server([&](loopback_http::request const& req) {
        loopback_http::response r{bh::status::ok, 11};
        std::lock_guard lock(mu);
        r.set("Replay-Nonce", "nonce-" + std::to_string(++issued));
        fresh.insert("nonce-" + std::to_string(issued));
        std::string const target(req.target());
        if (target == "/dir") {
            r.body() = R"({"newNonce":")" + base + R"(/nonce","newAccount":")" + base +
                       R"(/acct","newOrder":")" + base + R"(/order"})";
            return r;
        }
        if (req.method() == bh::verb::head) {
            ++heads;
            return r;
        }
        ++posts;
        auto const jws = boost::json::parse(req.body()).as_object();
        auto const header = acme::base64url_decode(std::string(jws.at("protected").as_string()));
        std::string const nonce(boost::json::parse(header.value_or("{}")).at("nonce").as_string());
        bool const known = fresh.erase(nonce) == 1;
        reused += known ? 0 : 1;
        if (!known || posts % 3 == 0) {
            rejected += 1;
            r.result(bh::status::bad_request);
            r.set("Content-Type", "application/problem+json");
            r.body() = R"({"type":"urn:ietf:params:acme:error:badNonce","detail":"try again"})";
            return r;
        }
        r.body() = R"({"status":"pending","authorizations":[],"finalize":")" + base + R"(/fin"})";
        return r;
    });
    base = server.url("");
    auto session = std::make_shared<acme::ca_session>(server.url("/dir"), net::outbound_options{},
                                                      acme::ca_limits{}, nullptr);
    acme::client a(session, crypto::generate_private_key_pem(crypto::key_algorithm::ecdsa_p256));
    acme::client b(session, crypto::generate_private_key_pem(crypto::key_algorithm::ecdsa_p256));
    a.set_kid(base + "/acct/a");
    b.set_kid(base + "/acct/b");
    asio::io_context ioc;
    int ok = 0;
    auto orders = [&](acme::client& c) -> asio::awaitable<void> {
        for (int i = 0; i < 10; ++i) {
            auto aw = c.get_order(base + "/order/" + std::to_string(i));
            auto r = co_await std::move(aw);
            ok += r ? 1 : 0;
        }
    };
    asio::co_spawn(ioc, orders(a), asio::detached);
    asio::co_spawn(ioc, orders(b), asio::detached);
    ioc.run();
    std::lock_guard lock(mu);
    EXPECT_EQ(ok, 20);
    EXPECT_GT(rejected, 0) << "badNonce answers were met and got past";
    EXPECT_EQ(reused, 0) << "no nonce was sent twice";
    EXPECT_LE(heads, 2) << "the nonces of answers served the next requests of both orders";
}

TEST(CaSession, AWaitLongerThanTheLimitFailsTheAttemptRetryable) {
    loopback_http server([](auto const&) { return text("{}"); });
    acme::ca_session session(server.url("/dir"), {}, acme::ca_limits{0, 0, 5}, nullptr);
    session.pause_for(std::chrono::seconds(60));
    auto got = run_awaitable(session.fetch({"GET", server.url("/x"), {}, ""}));
    ASSERT_FALSE(got);
    EXPECT_TRUE(acme::retryable(got.error()));
    EXPECT_GE(got.error().params.at("retry_after").as_int64(), 55);
    EXPECT_TRUE(server.arrivals().empty());
}

}  // namespace
}  // namespace certctrl::test
