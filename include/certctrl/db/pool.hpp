#pragma once

#include "certctrl/config/config.hpp"
#include "certctrl/core/error.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sql {
class Connection;
class SQLException;
}  // namespace sql

namespace certctrl::db {

class statement_cache;

/// Maps a Connector/C++ exception to the public error table: duplicate key -> conflict, lost or
/// unreachable server, deadlock, lock timeout -> database (503), anything else -> internal.
app_error map_sql_error(sql::SQLException const& e);

/// True for MySQL client/server error numbers that mean the connection is gone or unusable.
bool is_connection_error(int mysql_errno);

/// A fixed set of threads, each owning one MySQL connection (made lazily, re-made when lost).
/// Blocking Connector/C++ calls run only here; coroutines reach it through async_offload().
class pool {
  public:
    /// Gauges for /metrics.
    struct stats {
        std::size_t size;
        std::size_t in_use;
        std::size_t waiting;
    };

    /// A unit of work run on a pool thread with its connection (nullptr if none could be made).
    class job {
      public:
        virtual ~job() = default;
        /// Runs with a live connection, or with `conn == nullptr` and `err` set when none is available.
        virtual void run(sql::Connection* conn, app_error const* err) = 0;
        /// True after a run() that lost its connection before anything was committed and did not finish:
        /// the pool runs it again on a new connection (to another node of a cluster when that one is gone).
        virtual bool wants_new_connection() const { return false; }
    };

    /// Starts `cfg.pool_size` threads; no connection is made until work arrives.
    explicit pool(config::database_config cfg);
    ~pool();
    pool(pool const&) = delete;
    pool& operator=(pool const&) = delete;

    /// Queues a job. When the queue is full or the pool stopped, the job runs at once on the caller's
    /// thread with an `unavailable`/`database` error and no connection.
    void submit(std::unique_ptr<job> j);

    /// Finishes queued jobs, then joins the threads. Idempotent.
    void stop();

    stats current_stats() const;
    config::database_config const& settings() const { return cfg_; }

    /// Opens a new connection with this pool's settings (also used by migrate): to the endpoint that answered
    /// last, else to each of database.hosts in turn (a node that is not ready for queries, such as a Galera
    /// node outside the primary component, counts as failed). Throws sql::SQLException (the last one).
    std::unique_ptr<sql::Connection> connect(bool multi_statements = false) const;

  private:
    // `endpoint`: an index into endpoints_, or npos for the Unix socket.
    std::unique_ptr<sql::Connection> connect_to(std::size_t endpoint, bool multi_statements) const;
    // A pool thread's connection and the statements prepared on it (dropped together).
    struct live_connection {
        std::unique_ptr<sql::Connection> conn;
        std::unique_ptr<statement_cache> cache;
        void attach(std::unique_ptr<sql::Connection> c);
        void drop();
    };
    void thread_main();
    void run_one(std::unique_ptr<job> j, live_connection& live,
                 std::chrono::steady_clock::time_point& last_used);

    config::database_config cfg_;
    std::vector<std::pair<std::string, std::uint16_t>> endpoints_;  // database.hosts, or host and port
    mutable std::atomic<std::size_t> preferred_{0};                 // the endpoint that answered last
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::deque<std::unique_ptr<job>> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
    std::atomic<std::size_t> in_use_{0};
    // While the server is unreachable, threads fail fast instead of each waiting out a connect timeout.
    std::atomic<std::int64_t> last_connect_failure_ms_{0};
    std::atomic<bool> probing_{false};
    std::atomic<bool> down_{false};  // the last connect attempt failed
};

namespace detail {

template <class Fn, class Handler>
class offload_job final : public pool::job {
  public:
    using value_type = std::invoke_result_t<Fn&, sql::Connection&>;  // a result<T>

    offload_job(Fn fn, Handler h)
        : fn_(std::move(fn)),
          handler_(std::move(h)),
          work_(boost::asio::make_work_guard(boost::asio::get_associated_executor(handler_))) {}

    void run(sql::Connection* conn, app_error const* err) override {
        value_type r = conn != nullptr ? fn_(*conn) : value_type(*err);
        auto ex = work_.get_executor();
        boost::asio::post(
            ex, [h = std::move(handler_), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
        work_.reset();  // after the post, so the executor never runs out of work in between
    }

  private:
    Fn fn_;
    Handler handler_;
    boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>> work_;
};

app_error current_exception_to_error();

/// Records the MySQL error number a job ended with, so its pool thread can drop a dead connection.
void note_job_error(int mysql_errno);

template <class Fn>
auto run_guarded(Fn& fn, sql::Connection& c) -> std::invoke_result_t<Fn&, sql::Connection&> {
    try {
        return fn(c);
    } catch (...) {
        return current_exception_to_error();
    }
}

/// Runs fn(conn) and turns any exception escaping it into an error value.
template <class Fn>
auto guarded(Fn fn) {
    return [fn = std::move(fn)](sql::Connection& c) mutable -> std::invoke_result_t<Fn&, sql::Connection&> {
        return run_guarded(fn, c);
    };
}

}  // namespace detail

/// Runs `fn(sql::Connection&) -> result<T>` on a pool thread and completes on the caller's executor.
/// Exceptions thrown by `fn` (sql::SQLException included) become error values; `fn` must not keep
/// the connection. A transaction is one such function.
template <class Fn, class CompletionToken>
auto async_offload(pool& p, Fn fn, CompletionToken&& token) {
    using value_type = std::invoke_result_t<Fn&, sql::Connection&>;
    return boost::asio::async_initiate<CompletionToken, void(value_type)>(
        [&p](auto handler, Fn f) {
            auto g = detail::guarded(std::move(f));
            using job_t = detail::offload_job<decltype(g), decltype(handler)>;
            p.submit(std::make_unique<job_t>(std::move(g), std::move(handler)));
        },
        token, std::move(fn));
}

}  // namespace certctrl::db
