#include "certctrl/acme/ca_session.hpp"

#include "certctrl/acme/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

namespace certctrl::acme {

namespace asio = boost::asio;
namespace json = boost::json;

ca_session::ca_session(std::string directory_url, net::outbound_options opts, ca_limits limits,
                       std::shared_ptr<net::connection_pool> pool)
    : directory_url_(std::move(directory_url)),
      opts_(std::move(opts)),
      limits_(limits),
      pool_(pool ? std::move(pool) : std::make_shared<net::connection_pool>()) {}

struct ca_session::waiter {
    asio::steady_timer timer;
    bool released = false;
};

namespace {

// The time between two requests at the CA's rate (0: no limit).
std::chrono::steady_clock::duration spacing(ca_limits const& l) {
    return l.requests_per_second > 0 ? std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                           std::chrono::duration<double>(1.0 / l.requests_per_second))
                                     : std::chrono::steady_clock::duration::zero();
}

app_error paused_error(std::string const& directory_url, std::chrono::steady_clock::duration wait) {
    auto const s = std::chrono::duration_cast<std::chrono::seconds>(wait).count() + 1;
    return make_error(errc::external_service,
                      "The CA at " + directory_url + " asked to wait " + std::to_string(s) + " s",
                      {{"retryable", true}, {"retry_after", s}, {"acme_type", "rateLimited"}});
}

}  // namespace

net::awaitable<result<bool>> ca_session::admit(bool urgent) {
    auto const interval = spacing(limits_);
    auto const started = std::chrono::steady_clock::now();
    auto w = std::make_shared<waiter>(asio::steady_timer(co_await asio::this_coro::executor), false);
    bool start_pacer = false;
    {
        std::lock_guard lock(mu_);
        auto const now = std::chrono::steady_clock::now();
        if (next_slot_ - now > std::chrono::seconds(limits_.max_pause_seconds)) {
            co_return paused_error(directory_url_, next_slot_ - now);
        }
        if (urgent_.empty() && later_.empty() && now >= next_slot_) {
            next_slot_ = now + interval;  // free: go at once
            co_return true;
        }
        (urgent ? urgent_ : later_).push_back(w);
        w->timer.expires_at(std::chrono::steady_clock::time_point::max());
        start_pacer = !pacing_;
        pacing_ = true;
    }
    if (start_pacer) {  // outside the lock: co_spawn may run the pacer's first steps at once
        asio::co_spawn(w->timer.get_executor(), pace(), asio::detached);
    }
    while (true) {
        {
            std::lock_guard lock(mu_);
            if (w->released) {
                break;
            }
        }
        co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    paused_ms_.fetch_add(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started)
            .count()));
    co_return true;
}

// Lets the waiting requests go one per interval, the urgent lane first, until none waits.
net::awaitable<void> ca_session::pace() {
    auto const interval = spacing(limits_);
    asio::steady_timer t(co_await asio::this_coro::executor);
    while (true) {
        std::chrono::steady_clock::time_point until;
        {
            std::lock_guard lock(mu_);
            auto const now = std::chrono::steady_clock::now();
            if (urgent_.empty() && later_.empty()) {
                pacing_ = false;
                co_return;
            }
            if (now >= next_slot_) {
                auto& lane = urgent_.empty() ? later_ : urgent_;
                auto w = lane.front();
                lane.pop_front();
                w->released = true;
                w->timer.cancel();
                next_slot_ = now + interval;
                continue;
            }
            until = next_slot_;
        }
        t.expires_at(until);
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

net::awaitable<result<net::outbound_response>> ca_session::fetch(net::outbound_request req, bool urgent) {
    auto aw_admit = admit(urgent);
    auto admitted = co_await std::move(aw_admit);
    if (!admitted) {
        co_return admitted.error();
    }
    requests_.fetch_add(1);
    auto aw = pool_->fetch(std::move(req), opts_);
    co_return co_await std::move(aw);
}

void ca_session::pause_for(std::chrono::seconds s) {
    std::lock_guard lock(mu_);
    next_slot_ = std::max(next_slot_, std::chrono::steady_clock::now() + s);
}

std::optional<std::string> ca_session::take_nonce() {
    std::lock_guard lock(mu_);
    if (nonces_.empty()) {
        return std::nullopt;
    }
    std::string n = std::move(nonces_.back());
    nonces_.pop_back();
    return n;
}

void ca_session::give_nonce(std::string n) {
    std::lock_guard lock(mu_);
    // The newest are used first; the oldest go (a CA forgets nonces after a while).
    if (nonces_.size() >= 256) {
        nonces_.erase(nonces_.begin());
    }
    nonces_.push_back(std::move(n));
}

ca_session::counters ca_session::stats() const {
    return {requests_.load(), rate_limited_.load(), paused_ms_.load()};
}

namespace {

std::string str(json::object const& o, char const* k) {
    auto const* v = o.if_contains(k);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

}  // namespace

net::awaitable<result<directory>> ca_session::load_directory() {
    {
        std::lock_guard lock(mu_);
        if (dir_ && std::chrono::steady_clock::now() < dir_until_) {
            co_return *dir_;
        }
    }
    net::outbound_request req;
    req.url = directory_url_;
    auto aw = fetch(req);
    auto res = co_await std::move(aw);
    if (!res) {
        co_return res.error();
    }
    if (res->status != 200) {
        co_return problem_error(res->status, res->body, 0);
    }
    boost::system::error_code ec;
    auto v = json::parse(res->body, ec);
    if (ec || !v.is_object()) {
        co_return make_error(errc::external_service,
                             "The ACME directory at " + directory_url_ + " is not JSON");
    }
    auto const& o = v.get_object();
    directory d;
    d.new_nonce = str(o, "newNonce");
    d.new_account = str(o, "newAccount");
    d.new_order = str(o, "newOrder");
    d.renewal_info = str(o, "renewalInfo");
    if (auto const* meta = o.if_contains("meta"); meta != nullptr && meta->is_object()) {
        if (auto const* e = meta->get_object().if_contains("externalAccountRequired");
            e != nullptr && e->is_bool()) {
            d.eab_required = e->get_bool();
        }
    }
    if (d.new_nonce.empty() || d.new_account.empty() || d.new_order.empty()) {
        co_return make_error(errc::external_service, "The ACME directory at " + directory_url_ +
                                                         " lacks newNonce/newAccount/newOrder");
    }
    std::lock_guard lock(mu_);
    dir_ = d;
    dir_until_ = std::chrono::steady_clock::now() + std::chrono::hours(1);
    co_return d;
}

ca_sessions::ca_sessions(std::map<std::string, ca_limits> limits)
    : limits_(std::move(limits)), pool_(std::make_shared<net::connection_pool>()) {}

std::shared_ptr<ca_session> ca_sessions::get(std::string const& directory_url,
                                             net::outbound_options const& opts) {
    std::string const key = directory_url + "|" + opts.ca_file + "|" +
                            std::to_string(reinterpret_cast<std::uintptr_t>(opts.egress.get()));
    std::lock_guard lock(mu_);
    if (sessions_.size() >= 1024 && !sessions_.contains(key)) {
        // Directory URLs are the users' to choose: sessions no order uses any more are let go.
        std::erase_if(sessions_, [](auto const& kv) { return kv.second.use_count() == 1; });
    }
    auto& s = sessions_[key];
    if (!s) {
        auto const l = limits_.find(directory_url);
        s = std::make_shared<ca_session>(directory_url, opts, l == limits_.end() ? ca_limits{} : l->second,
                                         pool_);
    }
    return s;
}

std::vector<std::shared_ptr<ca_session>> ca_sessions::all() const {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<ca_session>> out;
    for (auto const& [k, s] : sessions_) {
        out.push_back(s);
    }
    return out;
}

}  // namespace certctrl::acme
