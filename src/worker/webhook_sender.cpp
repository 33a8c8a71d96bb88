#include "certctrl/worker/webhook_sender.hpp"

#include "certctrl/core/ids.hpp"
#include "certctrl/net/outbound.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <random>

namespace certctrl::worker {

namespace asio = boost::asio;

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

double jitter() {
    thread_local std::mt19937_64 gen{std::random_device{}()};
    return std::uniform_real_distribution<double>(0.5, 1.0)(gen);
}

}  // namespace

webhook_sender::webhook_sender(asio::io_context& ioc, service::webhook_service& hooks,
                               service::webhook_events const& events, config::webhooks_config const& cfg,
                               std::string instance_id, std::shared_ptr<net::egress_policy const> egress)
    : ioc_(ioc),
      hooks_(hooks),
      events_(events),
      cfg_(cfg),
      owner_("webhooks:" + std::move(instance_id)),
      egress_(std::move(egress)) {}

void webhook_sender::start() {
    running_ = true;
    if (cfg_.sender) {
        claim_timer_ = std::make_unique<asio::steady_timer>(ioc_);
        asio::co_spawn(ioc_, claim_loop(), asio::detached);
    }
    upkeep_timer_ = std::make_unique<asio::steady_timer>(ioc_);
    asio::co_spawn(ioc_, upkeep(), asio::detached);
}

void webhook_sender::stop() {
    running_ = false;
    for (auto* t : {claim_timer_.get(), upkeep_timer_.get()}) {
        if (t != nullptr) {
            asio::post(ioc_, [t] { t->cancel(); });
        }
    }
}

void webhook_sender::wake() {
    asio::post(ioc_, [this] {
        quick_retries_ = 3;
        wake_pending_ = true;
        if (claim_timer_) {
            claim_timer_->cancel();
        }
    });
}

asio::awaitable<void> webhook_sender::claim_loop() {
    // A claimed delivery is not due again before its lease ends: twice the attempt's timeout and a second,
    // so a sender that died mid-attempt leaves it to the others then, and a live one always finishes first.
    std::int64_t const lease_ms = 2 * static_cast<std::int64_t>(cfg_.timeout_ms) + 1000;
    // A database outage is logged once a minute, not per poll.
    std::chrono::steady_clock::time_point warned{};
    while (running_) {
        std::size_t const room =
            cfg_.concurrency - std::min<std::size_t>(cfg_.concurrency, in_flight_.load());
        std::size_t got = 0;
        std::size_t started = 0;
        if (room > 0) {
            // Users at their share of this sender are left out, so one user's slow receiver cannot hold
            // every slot while other users' events wait.
            repo::claim_filter out;
            for (auto const& [user, n] : per_user_) {
                if (n >= cfg_.max_in_flight_per_user && out.users.size() < repo::claim_filter::max) {
                    out.users.push_back(user);
                }
            }
            // Webhooks whose receiver keeps failing wait out their pause; then one more attempt decides.
            auto const now = std::chrono::steady_clock::now();
            std::size_t open = 0;
            for (auto const& [hook, b] : breakers_) {
                if (b.open_until > now) {
                    ++open;
                    if (out.webhooks.size() < repo::claim_filter::max) {
                        out.webhooks.push_back(hook);
                    }
                }
            }
            breakers_open_ = open;
            auto op = hooks_.claim(room, std::move(out), owner_, now_ms() + lease_ms);
            auto claimed = co_await std::move(op);
            if (!claimed) {
                if (now - warned > std::chrono::minutes(1)) {
                    warned = now;
                    spdlog::warn("webhooks: claiming deliveries failed: {}", claimed.error().what);
                }
            } else {
                got = claimed->size();
                std::vector<repo::due_delivery> over;
                for (auto& d : *claimed) {
                    auto& n = per_user_[d.hook.user_id];
                    if (n >= cfg_.max_in_flight_per_user) {
                        over.push_back(std::move(d));
                        continue;
                    }
                    ++n;
                    ++started;
                    ++in_flight_;
                    asio::co_spawn(ioc_, deliver(std::move(d)), asio::detached);
                }
                if (!over.empty()) {
                    auto aw_back = hooks_.release(std::move(over), owner_);
                    if (auto back = co_await std::move(aw_back); !back) {
                        spdlog::warn("webhooks: giving deliveries back failed: {}", back.error().what);
                    }
                }
            }
        }
        if (started > 0 && got == room) {
            continue;  // more may be due (not when every row went back: those users are still busy)
        }
        if (wake_pending_) {
            wake_pending_ = false;  // a slot freed or an event came during the claim
            continue;
        }
        auto wait = std::chrono::milliseconds(cfg_.poll_interval_ms);
        if (quick_retries_ > 0) {
            --quick_retries_;
            wait = std::chrono::milliseconds(5);
        }
        claim_timer_->expires_after(wait);
        co_await claim_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> webhook_sender::deliver(repo::due_delivery d) {
    std::int64_t const started = now_ms();
    repo::delivery_outcome o;
    if (!d.hook.enabled) {
        o.status = "FAILED";
        o.error = "The webhook was disabled";
    } else if (auto secrets = hooks_.secrets_of(d.hook, unix_now()); !secrets) {
        o.status = "PENDING";
        o.error = "The webhook's secret does not open (master key changed?)";
        spdlog::error("webhook {}: its secret does not open: {}", d.hook.id, secrets.error().detail);
    } else {
        std::int64_t const ts = unix_now();
        std::string signature;
        for (auto const& s : *secrets) {
            if (auto sig = service::sign_webhook(s, d.event_id, ts, d.payload)) {
                signature += (signature.empty() ? "" : " ") + *sig;
            }
        }
        net::outbound_request req;
        req.method = "POST";
        req.url = d.hook.url;
        req.headers = {{"Content-Type", "application/json"},
                       {"User-Agent", "certctrl-webhooks/1"},
                       {"webhook-id", d.event_id},
                       {"webhook-timestamp", std::to_string(ts)},
                       {"webhook-signature", signature}};
        req.body = d.payload;
        net::outbound_options opts;
        opts.ca_file = cfg_.ca_file;
        opts.timeout = std::chrono::milliseconds(cfg_.timeout_ms);
        opts.body_limit = cfg_.response_limit_bytes;
        opts.egress = egress_;
        opts.https_only = !cfg_.allow_http;
        auto op = connections_.fetch(std::move(req), std::move(opts));
        auto r = co_await std::move(op);
        if (r && r->status >= 200 && r->status < 300) {
            o.status = "SUCCESS";
            o.status_code = r->status;
        } else if (r) {
            o.status = "PENDING";
            o.status_code = r->status;
            o.error = "HTTP " + std::to_string(r->status) +
                      (r->status >= 300 && r->status < 400 ? " (redirects are not followed)" : "");
        } else {
            // A URL the policy refuses (or that no longer parses) will not get better by waiting.
            o.status = r.error().code == errc::bad_request ? "FAILED" : "PENDING";
            o.error = r.error().what;
        }
    }
    o.at = unix_now();
    if (o.status == "PENDING") {
        ++failed_attempts_;
        if (o.at >= d.expires_at) {
            o.status = "FAILED";
            o.error = "Gave up after " + std::to_string(d.attempt) + " attempts; the last: " + o.error;
        } else {
            o.next_attempt_ms = now_ms() + service::webhook_retry_delay_ms(cfg_, d.attempt, jitter());
        }
    }
    if (o.status == "SUCCESS") {
        breakers_.erase(d.hook.id);
    } else if (o.status_code || o.error.find("HTTP") != std::string::npos || o.status == "PENDING") {
        // The receiver failed (not a disabled webhook): count it, and pause the webhook after enough in a
        // row.
        auto& b = breakers_[d.hook.id];
        if (++b.failures >= cfg_.breaker_failures && b.open_until <= std::chrono::steady_clock::now()) {
            b.open_until = std::chrono::steady_clock::now() + std::chrono::seconds(cfg_.breaker_open_seconds);
            ++breaker_trips_;
            spdlog::info("webhook {}: {} failed attempts in a row; its deliveries pause for {} s", d.hook.id,
                         b.failures, cfg_.breaker_open_seconds);
        }
    }
    if (o.status == "SUCCESS") {
        ++delivered_;
    } else if (o.status == "FAILED") {
        ++given_up_;
        spdlog::warn("webhook {}: delivery {} of {} failed for good: {}", d.hook.id, d.id, d.event_type,
                     o.error);
    }
    attempt_ms_ += static_cast<std::uint64_t>(now_ms() - started);
    auto op = hooks_.finish(d.id, owner_, d.attempt, o);
    auto recorded = co_await std::move(op);
    if (!recorded) {
        spdlog::warn("webhook {}: recording delivery {} failed: {}", d.hook.id, d.id, recorded.error().what);
    }
    // Not in a destructor: a frame destroyed with the io_context at exit must not touch this sender.
    --in_flight_;
    if (auto it = per_user_.find(d.hook.user_id); it != per_user_.end() && --it->second == 0) {
        per_user_.erase(it);
    }
    wake_pending_ = true;  // the slot is free: fill it now rather than at the next poll
    if (claim_timer_) {
        claim_timer_->cancel();
    }
}

asio::awaitable<void> webhook_sender::upkeep() {
    std::int64_t next_expiry = 0;
    std::int64_t next_purge = 0;
    while (running_) {
        std::int64_t const now = unix_now();
        if (cfg_.expiry_check_seconds > 0 && now >= next_expiry) {
            next_expiry = now + cfg_.expiry_check_seconds;
            auto op = hooks_.warn_expiring(now);
            if (auto r = co_await std::move(op); !r) {
                spdlog::warn("webhooks: the expiry check failed: {}", r.error().what);
            }
            ++expiry_checks_;
        }
        if (now >= next_purge) {
            next_purge = now + 3600;
            auto op = hooks_.purge(now);
            if (auto r = co_await std::move(op); r && *r > 0) {
                spdlog::info("webhooks: {} old deliveries and events deleted", *r);
            }
        }
        auto op = hooks_.pending();
        if (auto r = co_await std::move(op)) {
            pending_ = *r;
        }
        upkeep_timer_->expires_after(std::chrono::seconds(
            std::clamp<std::int64_t>(cfg_.expiry_check_seconds == 0 ? 5 : cfg_.expiry_check_seconds, 1, 5)));
        co_await upkeep_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void webhook_sender::render_metrics(std::string& out) const {
    out += "# HELP certctrl_webhook_deliveries_total Delivery attempts of this instance by how they ended.\n";
    out += "# TYPE certctrl_webhook_deliveries_total counter\n";
    out +=
        "certctrl_webhook_deliveries_total{result=\"delivered\"} " + std::to_string(delivered_.load()) + "\n";
    out += "certctrl_webhook_deliveries_total{result=\"failed_attempt\"} " +
           std::to_string(failed_attempts_.load()) + "\n";
    out += "certctrl_webhook_deliveries_total{result=\"gave_up\"} " + std::to_string(given_up_.load()) + "\n";
    out +=
        "# HELP certctrl_webhook_attempt_seconds_total Time spent in delivery attempts by this instance.\n";
    out += "# TYPE certctrl_webhook_attempt_seconds_total counter\n";
    out += "certctrl_webhook_attempt_seconds_total " + std::to_string(attempt_ms_.load() / 1000.0) + "\n";
    out +=
        "# HELP certctrl_webhook_breaker_trips_total Times a webhook's failing receiver paused its "
        "deliveries "
        "in this instance.\n";
    out += "# TYPE certctrl_webhook_breaker_trips_total counter\n";
    out += "certctrl_webhook_breaker_trips_total " + std::to_string(breaker_trips_.load()) + "\n";
    out += "# HELP certctrl_webhook_breakers_open Webhooks whose deliveries are paused in this instance.\n";
    out += "# TYPE certctrl_webhook_breakers_open gauge\n";
    out += "certctrl_webhook_breakers_open " + std::to_string(breakers_open_.load()) + "\n";
    out += "# HELP certctrl_webhook_in_flight Delivery attempts running in this instance.\n";
    out += "# TYPE certctrl_webhook_in_flight gauge\n";
    out += "certctrl_webhook_in_flight " + std::to_string(in_flight_.load()) + "\n";
    out +=
        "# HELP certctrl_webhook_pending Deliveries of every instance not yet delivered or given up (read "
        "every few seconds).\n";
    out += "# TYPE certctrl_webhook_pending gauge\n";
    out += "certctrl_webhook_pending " + std::to_string(pending_.load()) + "\n";
    out +=
        "# HELP certctrl_webhook_events_total Events this instance wrote to the outbox (those of "
        "transactions that rolled back or ran again included).\n";
    out += "# TYPE certctrl_webhook_events_total counter\n";
    out += "certctrl_webhook_events_total " + std::to_string(events_.stored()) + "\n";
}

}  // namespace certctrl::worker
