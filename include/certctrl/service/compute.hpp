#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "certctrl/core/error.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace certctrl::service {

namespace detail {
template <class T>
struct is_result : std::false_type {};
template <class T>
struct is_result<result<T>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

// What a job that threw gives its caller: an internal error, nothing, or an empty value (callers of the
// value-returning jobs treat empty as failure).
template <class R>
R failed_job(char const* what) {
    if constexpr (is_result<R>::value) {
        return make_error(errc::internal, "A background computation failed", {}, what);
    } else {
        return R{};
    }
}
}  // namespace detail

/// Runs the CPU-heavy `fn()` (password hashing, key generation) on `pool` and resumes the awaiting
/// coroutine on its own executor, so I/O threads never block. An exception from `fn` never escapes the pool
/// thread (it would end the process): the caller gets an internal error (result<T>), nothing (optional) or an
/// empty value.
/// Pass a named function object, not a lambda written inside the co_await: gcc 12 destroys temporaries of a
/// co_await expression twice.
template <class Fn>
auto async_compute(boost::asio::thread_pool& pool, Fn fn) {
    using R = std::invoke_result_t<Fn&>;
    return boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(R)>(
        [&pool](auto handler, Fn f) {
            auto work = boost::asio::make_work_guard(boost::asio::get_associated_executor(handler));
            boost::asio::post(
                pool, [h = std::move(handler), f = std::move(f), work = std::move(work)]() mutable {
                    std::optional<R> out;
                    try {
                        out.emplace(f());
                    } catch (std::exception const& e) {
                        out.emplace(detail::failed_job<R>(e.what()));
                    } catch (...) {
                        out.emplace(detail::failed_job<R>("unknown exception"));
                    }
                    R r = std::move(*out);
                    auto ex = work.get_executor();
                    boost::asio::post(
                        ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
                    work.reset();
                });
        },
        boost::asio::use_awaitable, std::move(fn));
}

/// A thread pool for one kind of blocking or CPU-heavy work (password hashing, DNS I/O), with a bound on what
/// it holds: past `max_pending` jobs queued or running, more are refused at once instead of waiting behind
/// them. One kind of work stalling (a DNS server that never answers) then cannot hold up another (logins).
class bounded_pool {
  public:
    bounded_pool(std::string name, unsigned threads, std::size_t max_pending)
        : name_(std::move(name)), pool_(threads == 0 ? 1 : threads), max_pending_(max_pending) {}

    std::string const& name() const { return name_; }
    boost::asio::thread_pool& pool() { return pool_; }
    /// Jobs queued or running (including ones whose caller stopped waiting).
    std::size_t pending() const { return pending_; }
    std::size_t max_pending() const { return max_pending_; }

    /// Takes a place for one job; false when full.
    bool try_acquire() {
        std::size_t n = pending_.load();
        do {
            if (n >= max_pending_) {
                return false;
            }
        } while (!pending_.compare_exchange_weak(n, n + 1));
        return true;
    }
    void release() { --pending_; }
    /// Stops taking jobs and waits for the running ones.
    void join() {
        pool_.stop();
        pool_.join();
    }

  private:
    std::string name_;
    boost::asio::thread_pool pool_;
    std::size_t max_pending_;
    std::atomic<std::size_t> pending_{0};
};

namespace detail {

template <class R>
struct bounded_job {
    bool done = false;  // set on the caller's executor: an answer went back (the result or the timeout)
    std::optional<R> out;
    boost::asio::steady_timer* timer = nullptr;  // the caller's, while it waits
};

}  // namespace detail

/// Runs `fn()` (which returns a result<T>) on `p` and gives its result on the caller's executor. Errors:
/// unavailable (503, retryable) when `p` is full; with a `deadline`, external_service (retryable) naming
/// `what` when `fn` has not finished by then (it runs on, and its result is dropped); internal when `fn`
/// throws. Pass a named function object (see async_compute).
template <class Fn>
boost::asio::awaitable<std::invoke_result_t<Fn&>> run_bounded(
    bounded_pool& p, Fn fn, std::string what,
    std::chrono::milliseconds deadline = std::chrono::milliseconds::max()) {
    using R = std::invoke_result_t<Fn&>;
    if (!p.try_acquire()) {
        co_return R(make_error(errc::unavailable, "Too much " + p.name() + " work in progress; try again",
                               {{"retryable", true}}));
    }
    auto ex = co_await boost::asio::this_coro::executor;
    auto job = std::make_shared<detail::bounded_job<R>>();
    boost::asio::steady_timer timer(ex);
    if (deadline == std::chrono::milliseconds::max()) {
        timer.expires_at(boost::asio::steady_timer::time_point::max());
    } else {
        timer.expires_after(deadline);
    }
    job->timer = &timer;
    boost::asio::post(p.pool(), [job, ex, fn = std::move(fn), &p]() mutable {
        std::optional<R> r;
        try {
            r.emplace(fn());
        } catch (std::exception const& e) {
            r.emplace(make_error(errc::internal, "Internal server error", {}, e.what()));
        } catch (...) {
            r.emplace(make_error(errc::internal, "Internal server error", {}, "unknown exception"));
        }
        p.release();
        boost::asio::post(ex, [job, r = std::move(r)]() mutable {
            if (job->done) {
                return;  // the caller stopped waiting
            }
            job->out = std::move(r);
            job->timer->cancel();
        });
    });
    auto aw = timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    co_await std::move(aw);
    job->done = true;
    job->timer = nullptr;
    if (job->out) {
        co_return std::move(*job->out);
    }
    co_return R(make_error(errc::external_service, what + " did not finish in time", {{"retryable", true}}));
}

}  // namespace certctrl::service
