#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <type_traits>

namespace certctrl::service {

/// Runs the CPU-heavy `fn()` (password hashing, key generation) on `pool` and resumes the awaiting
/// coroutine on its own executor, so I/O threads never block. `fn` must not throw.
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
                    R r = f();
                    auto ex = work.get_executor();
                    boost::asio::post(
                        ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
                    work.reset();
                });
        },
        boost::asio::use_awaitable, std::move(fn));
}

}  // namespace certctrl::service
