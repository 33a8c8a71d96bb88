// The device WebSocket (agent contract 6.3): the agent's default way of hearing about updates. The feed is
// the same table the HTTP poll reads, so any instance serves any device and the agent's resume_token (the
// last feed id it processed) continues it on another instance without a gap or a repeat.
//
// Server -> agent: lifecycle.hello {connection_id}; updates.signal with id = resume_token = feed id and the
// signal as payload; {"type":"pong"}. Agent -> server: lifecycle.hello_ack {connection_id, resume_token},
// updates.ack {id}, {"type":"ping"}. Nothing is streamed before the hello_ack.
#include "handlers.hpp"

#include "common.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/response.hpp"
#include "certctrl/service/device_sockets.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <random>

namespace certctrl::handlers {

namespace asio = boost::asio;
namespace bh = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr std::size_t page = 100;                             // signals read from the feed at a time
constexpr auto hello_ack_timeout = std::chrono::seconds(30);  // then 1008

// 0..999 ms: spreads retries (not a secret, so no CSPRNG).
std::int64_t jitter_ms() {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return static_cast<std::int64_t>(rng() % 1000);
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// The contract's envelope: {type:"event", name, ts_ms, payload}, with id and resume_token for signals.
std::string event(char const* name, json::object payload, std::string const& id = "") {
    json::object o{{"type", "event"}, {"name", name}, {"ts_ms", now_ms()}};
    if (!id.empty()) {
        o["id"] = id;
        o["resume_token"] = id;
    }
    o["payload"] = std::move(payload);
    return json::serialize(o);
}

// What the agent told us; touched on the connection's executor only.
struct socket_state {
    bool acked = false;
    std::string resume_token;
    std::string last_ack;  // the newest id the agent acknowledged
    std::int64_t device_id = 0;
    std::int64_t sent_through = 0;   // the newest feed id sent on this socket (an ack beyond it is a lie)
    std::int64_t noted_through = 0;  // the newest ack recorded
    bool reader_done = false;
    std::shared_ptr<service::update_notifier::waiter> waiter;  // the main loop's current wait
};

std::string string_at(json::object const& o, char const* name) {
    auto const* v = o.if_contains(name);
    if (v == nullptr) {
        return "";
    }
    if (v->is_string()) {
        return std::string(v->as_string());
    }
    if (v->is_int64()) {
        return std::to_string(v->as_int64());
    }
    return "";
}

asio::awaitable<void> read_loop(std::shared_ptr<http::websocket_channel> ch, std::shared_ptr<socket_state> st,
                                service::update_notifier& notifier, service::device_service& devices) {
    // Messages are cheap to send and some cost a database write: at most `burst` per 10 s.
    constexpr int burst = 300;
    auto window = std::chrono::steady_clock::now();
    int in_window = 0;
    for (;;) {
        auto op = ch->read();
        auto msg = co_await std::move(op);
        if (!msg) {
            break;
        }
        if (auto const now = std::chrono::steady_clock::now(); now - window > std::chrono::seconds(10)) {
            window = now;
            in_window = 0;
        }
        if (++in_window > burst) {
            ch->close(service::socket_close::protocol, "too many messages");
            break;
        }
        boost::system::error_code ec;
        json::value v = json::parse(*msg, ec);
        if (ec || !v.is_object()) {
            ch->close(service::socket_close::protocol, "messages must be JSON objects");
            break;
        }
        auto const& o = v.as_object();
        std::string const type = string_at(o, "type");
        std::string const name = string_at(o, "name");
        json::object payload;
        if (auto const* p = o.if_contains("payload"); p != nullptr && p->is_object()) {
            payload = p->as_object();
        }
        if (type == "ping" || name == "lifecycle.ping" || name == "ping") {
            ch->send(json::serialize(json::object{{"type", "pong"}, {"ts_ms", now_ms()}}));
        } else if (name == "lifecycle.hello_ack" || type == "hello_ack") {
            if (!st->acked) {
                st->acked = true;
                st->resume_token = string_at(payload, "resume_token");
                if (st->resume_token.empty()) {
                    st->resume_token = string_at(o, "resume_token");
                }
                if (st->waiter) {
                    notifier.interrupt(st->waiter);
                }
            }
        } else if (name == "updates.ack") {
            st->last_ack = string_at(o, "id");
            // Workers waiting for this agent (agent-hosted challenges) learn that it has the signal.
            std::int64_t acked = 0;
            auto const [p, ec2] =
                std::from_chars(st->last_ack.data(), st->last_ack.data() + st->last_ack.size(), acked);
            if (ec2 == std::errc() && p == st->last_ack.data() + st->last_ack.size() &&
                acked > st->noted_through && acked <= st->sent_through) {
                st->noted_through = acked;  // one write per newer ack, never more than the signals sent
                auto op_n = devices.note_received(st->device_id, acked);
                (void)co_await std::move(op_n);
            }
        }
        // pong and unknown messages are ignored (the contract's tunnel branch is optional).
    }
    st->reader_done = true;
    if (st->waiter) {
        notifier.interrupt(st->waiter);
    }
}

bool over(std::shared_ptr<http::websocket_channel> const& ch, socket_state const& st) {
    return ch->closing() || st.reader_done;
}

asio::awaitable<void> run_device_socket(services& s, std::shared_ptr<http::websocket_channel> ch,
                                        domain::principal p, std::string rid) {
    auto& notifier = s.devices.notifier();
    auto const ex = co_await asio::this_coro::executor;
    auto st = std::make_shared<socket_state>();
    std::string const connection_id = hex_encode(crypto::random_bytes(16));
    std::int64_t const device = p.device_id;
    // Closing from the registry (revoked, replaced) happens on another thread: handed to this executor.
    std::uint64_t const handle =
        s.sockets.open(device, p.device_session_id, [ch, st, &notifier](std::uint16_t code, std::string why) {
            asio::post(ch->executor(), [ch, st, &notifier, code, why = std::move(why)]() mutable {
                ch->close(code, std::move(why));
                if (st->waiter) {
                    notifier.interrupt(st->waiter);
                }
            });
        });
    struct registered {
        service::device_sockets& sockets;
        std::uint64_t handle;
        ~registered() { sockets.closed(handle); }
    } held{s.sockets, handle};

    json::object hello{{"connection_id", connection_id}};
    json::object hello_msg{{"type", "event"},
                           {"name", "lifecycle.hello"},
                           {"ts_ms", now_ms()},
                           {"connection_id", connection_id},  // where the legacy {type:"hello"} carried it
                           {"payload", std::move(hello)}};
    ch->send(json::serialize(hello_msg));
    st->device_id = device;
    asio::co_spawn(ex, read_loop(ch, st, notifier, s.devices), asio::detached);

    // The token's expiry on the steady clock: the socket ends there (4401) and the agent comes back with a
    // fresh token.
    auto const token_end = std::chrono::steady_clock::now() +
                           std::chrono::seconds(std::max<std::int64_t>(p.token_expires_at - unix_now(), 0));
    auto const wait_for = [&](std::chrono::steady_clock::time_point until) -> asio::awaitable<void> {
        auto op = notifier.wait(st->waiter, std::min(until, token_end));
        co_await std::move(op);
        notifier.unwatch(st->waiter);
        st->waiter.reset();
    };

    auto const ack_deadline = std::chrono::steady_clock::now() + hello_ack_timeout;
    while (!st->acked && !over(ch, *st)) {
        st->waiter = notifier.watch(ex, device);
        auto op = wait_for(ack_deadline);
        co_await std::move(op);
        auto const now = std::chrono::steady_clock::now();
        if (!st->acked && now >= ack_deadline) {
            ch->close(service::socket_close::protocol, "expected lifecycle.hello_ack");
        }
        if (!st->acked && now >= token_end) {
            ch->close(service::socket_close::token_expired, "access token expired");
        }
    }

    std::string cursor = st->resume_token;
    std::size_t sent = 0;
    int failures = 0;
    while (!over(ch, *st)) {
        if (std::chrono::steady_clock::now() >= token_end || notifier.stopping()) {
            ch->close(notifier.stopping() ? service::socket_close::going_away
                                          : service::socket_close::token_expired,
                      notifier.stopping() ? "server shutting down" : "access token expired");
            break;
        }
        // Watch before reading, so a signal committed in between wakes the wait below.
        st->waiter = notifier.watch(ex, device);
        auto op = s.devices.updates(device, cursor, page, 0, p.who.id, false);
        auto got = co_await std::move(op);
        if (!got && got.error().code == errc::updates_cursor_expired) {
            // The resume token is older than what the feed keeps (or not one of ours): the agent resyncs
            // everything, then the retained feed follows from its start.
            json::object ref;
            for (auto const& [k, v] : got.error().params) {
                ref[k] = v;
            }
            ch->send(event("updates.signal",
                           json::object{{"type", "state.resync_required"}, {"ts_ms", now_ms()}, {"ref", ref}},
                           "0"));
            cursor = "0";
            notifier.unwatch(st->waiter);
            st->waiter.reset();
            continue;
        }
        if (!got && got.error().code == errc::not_found) {
            ch->close(service::socket_close::revoked, "the device no longer exists");
            break;
        }
        if (!got) {
            // The database is busy or away: the socket stays, and the read is tried again after a pause that
            // grows (with jitter, so thousands of sockets do not come back in step).
            ++failures;
            if (failures == 1 || failures % 20 == 0) {
                spdlog::warn("rid={} device socket of device {}: {} (retrying)", rid, device,
                             got.error().what);
            }
            notifier.unwatch(st->waiter);
            st->waiter.reset();
            if (over(ch, *st)) {
                break;  // closed while the read failed
            }
            st->waiter = notifier.watch(ex, device);
            auto const pause = std::chrono::milliseconds(
                std::min<std::int64_t>(10000, 250LL << std::min(failures, 5)) / 2 + jitter_ms());
            auto pop = wait_for(std::chrono::steady_clock::now() + pause);
            co_await std::move(pop);
            continue;
        }
        failures = 0;
        for (auto const& sig : got->signals) {
            std::string const id = std::to_string(sig.id);
            ch->send(event("updates.signal",
                           json::object{{"type", sig.type}, {"ts_ms", sig.ts_ms}, {"ref", sig.ref}}, id));
            st->sent_through = std::max(st->sent_through, sig.id);
            ++sent;
        }
        cursor = got->cursor;
        if (!got->signals.empty()) {
            notifier.unwatch(st->waiter);
            st->waiter.reset();
            auto fl = ch->flush();
            co_await std::move(fl);
            continue;  // read on: more may be waiting
        }
        auto wop = wait_for(std::chrono::steady_clock::time_point::max());
        co_await std::move(wop);
    }
    if (st->waiter) {
        notifier.unwatch(st->waiter);
        st->waiter.reset();
    }
    spdlog::debug("rid={} device socket of device {} ends after {} signals (last ack {})", rid, device, sent,
                  st->last_ack.empty() ? "-" : st->last_ack);
}

}  // namespace

http::awaitable<http::response> device_websocket(http::request_context& ctx, services& s) {
    domain::principal const& p = *ctx.principal;
    // The device named by the path (/api/websocket/<id>) or the query (?device_id=) must be the token's own.
    std::optional<std::int64_t> named = ctx.params.id("device_id");
    if (!named) {
        if (auto q = http::query_value(ctx.query, "device_id")) {
            json::value v(*q);
            named = detail::int_of(&v);
            if (!named) {
                co_return http::json_error(
                    ctx.req,
                    make_error(errc::bad_request, "device_id must be a device id", {{"field", "device_id"}}));
            }
        }
    }
    if (named && *named != p.device_id) {
        co_return http::json_error(ctx.req,
                                   make_error(errc::forbidden, "The access token belongs to another device"));
    }
    if (!http::is_websocket_upgrade(ctx.req)) {
        co_return http::json_error(
            ctx.req,
            make_error(errc::bad_request,
                       "This route speaks WebSocket: send 'Connection: Upgrade' and 'Upgrade: websocket'"));
    }
    ctx.upgrade = [&s, p, rid = ctx.request_id](std::shared_ptr<http::websocket_channel> ch) {
        return run_device_socket(s, std::move(ch), p, rid);
    };
    co_return http::response{bh::status::switching_protocols, ctx.req.version()};
}

}  // namespace certctrl::handlers
