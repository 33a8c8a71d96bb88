#include "certctrl/service/rate_limiter.hpp"

#include "certctrl/core/ids.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace certctrl::service {

namespace asio = boost::asio;

result<bool> rate_limiter::check(limit which, std::string const& key) {
    return count(which, key, true);
}

result<bool> rate_limiter::peek(limit which, std::string const& key) {
    return count(which, key, false);
}

std::string client_budget_key(std::string_view ip) {
    boost::system::error_code ec;
    auto const addr = boost::asio::ip::make_address(std::string(ip), ec);
    if (ec || !addr.is_v6() || addr.to_v6().is_v4_mapped()) {
        return std::string(ip);
    }
    auto bytes = addr.to_v6().to_bytes();
    std::fill(bytes.begin() + 8, bytes.end(), 0);
    return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

void rate_limiter::refund(limit which, std::string const& key) {
    (void)count(which, key, false, true);
}

result<bool> rate_limiter::count(limit which, std::string const& key, bool spend, bool refund) {
    unsigned budget = 0;
    std::int64_t window = 60;
    char const* name = "api";
    switch (which) {
        case limit::auth:
            budget = cfg_.auth_per_minute;
            name = "auth";
            break;
        case limit::issuance:
            budget = cfg_.issuance_per_hour;
            window = 3600;
            name = "issuance";
            break;
        case limit::api:
            budget = cfg_.api_per_minute;
            break;
        case limit::anonymous:
            budget = cfg_.unauthenticated_per_minute;
            name = "anonymous";
            break;
        case limit::login_account:
            budget = cfg_.login_failures_per_account_per_hour;
            window = 3600;
            name = "login_account";
            break;
        case limit::device_flow:
            budget = cfg_.device_flow_per_minute;
            name = "device_flow";
            break;
        case limit::device_flow_polls:
            budget = cfg_.device_flow_per_minute * 10;
            name = "device_flow_polls";
            break;
        case limit::self_ca_issuance:
            budget = cfg_.self_ca_issuance_per_hour;
            window = 3600;
            name = "self_ca_issuance";
            break;
    }
    if (budget == 0) {
        return true;
    }
    std::int64_t const now = unix_now();
    std::int64_t const start = now - now % window;
    {
        std::lock_guard lock(mu_);
        auto& b = buckets_[std::string(name) + ":" + key];
        if (b.window_start != start) {
            b = bucket{start, window, 0, 0, now};
        }
        if (refund) {
            // Only what this instance has not shared yet (a count already synced stays: conservative).
            if (b.pending > 0) {
                --b.pending;
            }
            return true;
        }
        b.last_used = now;
        if (b.shared + b.pending < static_cast<std::int64_t>(budget)) {
            if (spend) {
                ++b.pending;
            }
            return true;
        }
    }
    std::int64_t const retry = std::max<std::int64_t>(1, start + window - now);
    return make_error(
        errc::rate_limited,
        "Rate limit '" + std::string(name) + "' exceeded: " + std::to_string(budget) + " requests per " +
            (window == 60 ? "minute" : "hour") + "; retry in " + std::to_string(retry) + " s",
        {{"limit", name}, {"budget", budget}, {"window_seconds", window}, {"retry_after", retry}});
}

asio::awaitable<result<bool>> rate_limiter::sync() {
    std::vector<repo::rate_count> deltas;
    std::vector<std::string> also_read;
    std::int64_t const now = unix_now();
    {
        std::lock_guard lock(mu_);
        for (auto it = buckets_.begin(); it != buckets_.end();) {
            auto& [name, b] = *it;
            if (b.window_start + b.window_s <= now) {
                it = buckets_.erase(it);  // its window is over: nothing to add or to read
                continue;
            }
            if (b.pending > 0) {
                deltas.push_back({name, b.window_start, b.pending});
            } else if (now - b.last_used < 2 * b.window_s) {
                also_read.push_back(name);  // in use here: learn what the other instances counted
            }
            ++it;
        }
    }
    if (deltas.empty() && also_read.empty()) {
        co_return true;
    }
    auto op = repo_.add(deltas, also_read);
    auto stored = co_await std::move(op);
    if (!stored) {
        co_return stored.error();  // the counts stay pending and go with the next sync
    }
    std::lock_guard lock(mu_);
    for (auto const& d : deltas) {
        auto it = buckets_.find(d.bucket);
        if (it != buckets_.end() && it->second.window_start == d.window_start) {
            it->second.pending -= d.count;  // what was counted meanwhile stays pending
        }
    }
    for (auto const& row : *stored) {
        auto it = buckets_.find(row.bucket);
        if (it != buckets_.end() && it->second.window_start == row.window_start) {
            it->second.shared = std::max(it->second.shared, row.count);
        }
    }
    co_return true;
}

asio::awaitable<void> rate_limiter::run() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        timer.expires_after(sync_period_);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        auto op = sync();
        auto r = co_await std::move(op);
        if (!r) {
            spdlog::warn("rate limits: sync with the database failed: {}", r.error().what);
        }
        if (ec) {
            co_return;
        }
    }
}

asio::awaitable<result<std::int64_t>> rate_limiter::purge() {
    auto op = repo_.purge(unix_now() - 2 * 3600);  // the longest window is an hour
    co_return co_await std::move(op);
}

}  // namespace certctrl::service
