#include "certctrl/service/principal_cache.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace certctrl::service {

namespace asio = boost::asio;

bool principal_cache::trusted(clock::time_point now) const {
    auto const at = confirmed_at_.load();
    return at != 0 && now - clock::time_point(clock::duration(at)) < trust_for_;
}

std::optional<principal_cache::key_entry> principal_cache::key(std::string const& key_id) const {
    if (trusted()) {
        std::lock_guard lock(mu_);
        if (auto it = keys_.find(key_id); it != keys_.end()) {
            ++hits_;
            return it->second;
        }
    }
    ++misses_;
    return std::nullopt;
}

std::int64_t principal_cache::generation() const {
    std::lock_guard lock(mu_);
    return epoch_value_;
}

void principal_cache::put_key(std::string const& key_id, key_entry e, std::int64_t generation) {
    std::lock_guard lock(mu_);
    if (generation != epoch_value_) {
        return;
    }
    make_room();
    keys_[key_id] = std::move(e);
}

void principal_cache::drop_key(std::string const& key_id) {
    std::lock_guard lock(mu_);
    keys_.erase(key_id);
}

std::optional<repo::session_row> principal_cache::session(std::string const& token_hash) const {
    if (trusted()) {
        std::lock_guard lock(mu_);
        if (auto it = sessions_.find(token_hash); it != sessions_.end()) {
            ++hits_;
            return it->second;
        }
    }
    ++misses_;
    return std::nullopt;
}

void principal_cache::put_session(std::string const& token_hash, repo::session_row row,
                                  std::int64_t generation) {
    std::lock_guard lock(mu_);
    if (generation != epoch_value_) {
        return;
    }
    make_room();
    sessions_[token_hash] = std::move(row);
}

void principal_cache::drop_session(std::string const& token_hash) {
    std::lock_guard lock(mu_);
    sessions_.erase(token_hash);
}

void principal_cache::make_room() {
    // A full cache starts over: it only bounds memory, the next requests fill it again.
    if (keys_.size() + sessions_.size() >= capacity_) {
        keys_.clear();
        sessions_.clear();
    }
}

void principal_cache::confirm(std::int64_t epoch, clock::time_point when) {
    {
        std::lock_guard lock(mu_);
        if (epoch != epoch_value_) {
            keys_.clear();
            sessions_.clear();
            epoch_value_ = epoch;
        }
    }
    confirmed_at_ = when.time_since_epoch().count();
}

std::size_t principal_cache::size() const {
    std::lock_guard lock(mu_);
    return keys_.size() + sessions_.size();
}

asio::awaitable<void> principal_cache::run() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        // The time is taken before the query: what was cached before it was read is vouched for from then on.
        auto const asked = clock::now();
        auto op = epoch_.current();
        auto e = co_await std::move(op);
        if (e) {
            confirm(*e, asked);
        } else {
            spdlog::warn(
                "credential cache: cannot read the revocation epoch ({}); verifying from the database",
                e.error().what);
        }
        timer.expires_after(period_);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            co_return;
        }
    }
}

}  // namespace certctrl::service
