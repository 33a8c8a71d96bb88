#pragma once
// Units of work: a service runs several repository calls on one pooled connection, in one transaction (or one
// read), with one hop to the database pool. Repositories are sets of statements over the `work` they are
// given; they hold no business rules and never call back into services.

#include "certctrl/core/error.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>
#include <optional>
#include <type_traits>

namespace certctrl::repo {

/// One pooled connection lent to a unit of work. Opaque above the repositories: only their MySQL statement
/// sets can reach the connection behind it. Valid for the duration of the unit's function only.
class work {
  public:
    work(work const&) = delete;
    work& operator=(work const&) = delete;

  protected:
    work() = default;
    ~work() = default;
};

/// Runs units of work on the database pool. The function `fn(work&) -> result<T>` runs on a pool thread: it
/// may block on statements and do light CPU work, never await. `transact` wraps it in one transaction that
/// commits when it returns a value and rolls back when it returns an error or throws (an SQL exception
/// becomes the mapped error: duplicate key -> conflict, lost connection -> database). `read` runs it without
/// a transaction. Either way the outcome reaches the awaiting coroutine on its own executor, after the
/// commit.
class store {
  public:
    virtual ~store() = default;

    template <class Fn>
    auto transact(Fn fn) {
        return run(true, std::move(fn));
    }
    template <class Fn>
    auto read(Fn fn) {
        return run(false, std::move(fn));
    }

    /// A submitted unit (type-erased function and waiting coroutine), driven by the implementation.
    class unit {
      public:
        virtual ~unit() = default;
        /// Runs the function on `w`; true when it returned a value (the transaction may commit).
        virtual bool run(work& w) = 0;
        /// Sets the outcome to `e` (no connection, an exception, a failed commit).
        virtual void fail(app_error e) = 0;
        /// Hands the outcome to the waiting coroutine; called exactly once, last.
        virtual void complete() = 0;
    };

    /// Queues `u` for a pool thread. A full or stopped pool completes it at once with an error.
    virtual void submit(bool transactional, std::unique_ptr<unit> u) = 0;

  private:
    template <class Fn, class Handler>
    class unit_impl final : public unit {
      public:
        using value_type = std::invoke_result_t<Fn&, work&>;  // a result<T>

        unit_impl(Fn fn, Handler h)
            : fn_(std::move(fn)),
              handler_(std::move(h)),
              guard_(boost::asio::make_work_guard(boost::asio::get_associated_executor(handler_))) {}

        bool run(work& w) override {
            out_.emplace(fn_(w));
            return out_->has_value();
        }
        void fail(app_error e) override { out_.emplace(std::move(e)); }
        void complete() override {
            auto ex = guard_.get_executor();
            boost::asio::post(ex, [h = std::move(handler_), r = std::move(*out_)]() mutable {
                std::move(h)(std::move(r));
            });
            guard_.reset();  // after the post, so the executor never runs out of work in between
        }

      private:
        Fn fn_;
        Handler handler_;
        boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>> guard_;
        std::optional<value_type> out_;
    };

    template <class Fn>
    auto run(bool transactional, Fn fn) {
        using value_type = std::invoke_result_t<Fn&, work&>;
        return boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(value_type)>(
            [this, transactional](auto handler, Fn f) {
                using impl = unit_impl<Fn, decltype(handler)>;
                submit(transactional, std::make_unique<impl>(std::move(f), std::move(handler)));
            },
            boost::asio::use_awaitable, std::move(fn));
    }
};

}  // namespace certctrl::repo
