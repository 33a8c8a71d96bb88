#include "certctrl/service/device_sockets.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <unordered_set>

namespace certctrl::service {

namespace asio = boost::asio;

std::uint64_t device_sockets::open(std::int64_t device_id, std::int64_t session_id, closer close) {
    closer replaced;
    std::uint64_t handle = 0;
    {
        std::lock_guard lock(mu_);
        handle = ++next_;
        if (auto it = by_device_.find(device_id); it != by_device_.end()) {
            if (auto old = open_.find(it->second); old != open_.end()) {
                replaced = std::move(old->second.close);
                open_.erase(old);
            }
        }
        open_.emplace(handle, entry{device_id, session_id, std::move(close)});
        by_device_[device_id] = handle;
    }
    if (replaced) {
        replaced(socket_close::replaced, "replaced by a newer connection of this device");
    }
    return handle;
}

void device_sockets::closed(std::uint64_t handle) {
    std::lock_guard lock(mu_);
    auto it = open_.find(handle);
    if (it == open_.end()) {
        return;
    }
    if (auto d = by_device_.find(it->second.device_id); d != by_device_.end() && d->second == handle) {
        by_device_.erase(d);
    }
    open_.erase(it);
}

std::size_t device_sockets::size() const {
    std::lock_guard lock(mu_);
    return open_.size();
}

asio::awaitable<result<std::size_t>> device_sockets::check_once() {
    std::vector<std::int64_t> sessions;
    std::uint64_t asked_upto = 0;
    {
        std::lock_guard lock(mu_);
        asked_upto = next_;
        sessions.reserve(open_.size());
        for (auto const& [h, e] : open_) {
            sessions.push_back(e.session_id);
        }
    }
    if (sessions.empty()) {
        co_return std::size_t{0};
    }
    std::sort(sessions.begin(), sessions.end());
    sessions.erase(std::unique(sessions.begin(), sessions.end()), sessions.end());
    auto op = r_.db->read(
        [this, sessions = std::move(sessions)](repo::work& w) -> result<std::vector<std::int64_t>> {
            return r_.devices->live_sessions(w, sessions);
        });
    auto live = co_await std::move(op);
    if (!live) {
        co_return live.error();
    }
    std::unordered_set<std::int64_t> alive(live->begin(), live->end());
    // Only the sockets registered before the read are judged: a later one's session was checked at its
    // handshake, and may not be in `alive` only because it was not asked.
    std::vector<closer> dead;
    {
        std::lock_guard lock(mu_);
        for (auto it = open_.begin(); it != open_.end();) {
            if (!alive.contains(it->second.session_id) && it->first <= asked_upto) {
                dead.push_back(std::move(it->second.close));
                if (auto d = by_device_.find(it->second.device_id);
                    d != by_device_.end() && d->second == it->first) {
                    by_device_.erase(d);
                }
                it = open_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto& c : dead) {
        c(socket_close::revoked, "the device was revoked, its session ended or its user disabled");
    }
    co_return dead.size();
}

asio::awaitable<void> device_sockets::run() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        auto op = check_once();
        auto r = co_await std::move(op);
        if (!r) {
            spdlog::warn("device sockets: cannot re-check sessions: {}", r.error().what);
        }
        timer.expires_after(period_);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            co_return;
        }
    }
}

}  // namespace certctrl::service
