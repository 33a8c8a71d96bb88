#include "certctrl/db/pool.hpp"

#include "certctrl/db/statements.hpp"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <fmt/format.h>
#include <mysql_driver.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace certctrl::db {

namespace {

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// A connection unused for this long is pinged before use, so a server restart is noticed before a
// statement is sent rather than by failing the statement.
constexpr auto ping_after_idle = std::chrono::seconds(1);
// After a failed connect, threads fail fast for this long (at least) instead of each waiting out the
// connect timeout; only one thread probes the server at a time.
constexpr std::int64_t min_fail_fast_ms = 500;

}  // namespace

bool is_connection_error(int e) {
    switch (e) {
        case 1040:  // ER_CON_COUNT_ERROR
        case 1047:  // ER_UNKNOWN_COM_ERROR: a Galera node not ready for queries (outside the primary
                    // component)
        case 1053:  // ER_SERVER_SHUTDOWN
        case 1927:  // ER_CONNECTION_KILLED (MariaDB)
        case 2002:  // CR_CONNECTION_ERROR
        case 2003:  // CR_CONN_HOST_ERROR
        case 2005:  // CR_UNKNOWN_HOST
        case 2006:  // CR_SERVER_GONE_ERROR
        case 2013:  // CR_SERVER_LOST
        case 2055:  // CR_SERVER_LOST_EXTENDED
        case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8)
            return true;
        default:
            return false;
    }
}

app_error map_sql_error(sql::SQLException const& e) {
    int const code = e.getErrorCode();
    app_error err;
    if (code == 1062 || code == 1586) {  // ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME
        err = make_error(errc::conflict, "A resource with the same unique value already exists");
    } else if (code == 1452) {  // ER_NO_REFERENCED_ROW_2: points at a row that does not exist
        err = make_error(errc::not_found, "A referenced resource does not exist");
    } else if (code == 1451) {  // ER_ROW_IS_REFERENCED_2
        err = make_error(errc::conflict, "The resource is still referenced by other resources");
    } else if (is_connection_error(code) || code == 1205 || code == 1213 || code == 0) {
        // 1205 lock wait timeout, 1213 deadlock, 0: connector-side failure without a server code.
        err = make_error(errc::database, "Database unavailable, try again later");
    } else {
        err = make_error(errc::internal, "Internal server error");
    }
    // For the server log only: MySQL messages can quote the values of the statement.
    err.detail = fmt::format("SQL error {} ({}): {}", code, e.getSQLStateCStr(), e.what());
    return err;
}

namespace detail {

// The MySQL error number of the last exception a job on this pool thread turned into an error value,
// so the thread can tell a dead connection from an ordinary failure.
thread_local int last_job_errno = 0;

void note_job_error(int mysql_errno) {
    last_job_errno = mysql_errno;
}

app_error current_exception_to_error() {
    try {
        throw;
    } catch (sql::SQLException const& e) {
        last_job_errno = e.getErrorCode();
        return map_sql_error(e);
    } catch (app_error_exception const& e) {
        return e.error;
    } catch (std::exception const& e) {
        app_error err = make_error(errc::internal, "Internal server error");
        err.detail = std::string("exception in database job: ") + e.what();
        return err;
    } catch (...) {
        app_error err = make_error(errc::internal, "Internal server error");
        err.detail = "unknown exception in database job";
        return err;
    }
}

}  // namespace detail

pool::pool(config::database_config cfg) : cfg_(std::move(cfg)) {
    for (auto const& h : cfg_.hosts) {
        if (auto hp = config::split_host_port(h)) {  // every entry was checked at load
            endpoints_.push_back(std::move(*hp));
        }
    }
    if (endpoints_.empty()) {
        endpoints_.emplace_back(cfg_.host, cfg_.port);
    }
    // The driver instance must be created before threads use it (it is not thread-safe to create).
    sql::mysql::get_driver_instance();
    threads_.reserve(cfg_.pool_size);
    for (unsigned i = 0; i < cfg_.pool_size; ++i) {
        threads_.emplace_back([this] { thread_main(); });
    }
}

pool::~pool() {
    stop();
}

void pool::stop() {
    std::deque<std::unique_ptr<job>> abandoned;
    {
        std::lock_guard lock(mutex_);
        if (stopping_ && threads_.empty()) {
            return;
        }
        stopping_ = true;
        abandoned.swap(queue_);
    }
    cv_.notify_all();
    // Queued work is not run at shutdown: its callers get an error instead of a late write.
    app_error err = make_error(errc::unavailable, "Server is shutting down");
    for (auto& j : abandoned) {
        j->run(nullptr, &err);
    }
    for (auto& t : threads_) {
        if (t.joinable()) {
            t.join();
        }
    }
    threads_.clear();
}

void pool::submit(std::unique_ptr<job> j) {
    bool stopping = false;
    {
        std::unique_lock lock(mutex_);
        stopping = stopping_;
        if (!stopping && queue_.size() < cfg_.queue_limit) {
            queue_.push_back(std::move(j));
            lock.unlock();
            cv_.notify_one();
            return;
        }
    }
    app_error err = stopping ? make_error(errc::unavailable, "Server is shutting down")
                             : make_error(errc::database, "Database busy, try again later");
    j->run(nullptr, &err);
}

pool::stats pool::current_stats() const {
    std::lock_guard lock(mutex_);
    return stats{cfg_.pool_size, in_use_.load(), queue_.size()};
}

std::unique_ptr<sql::Connection> pool::connect(bool multi_statements) const {
    if (!cfg_.socket.empty() || endpoints_.size() == 1) {
        return connect_to(cfg_.socket.empty() ? 0 : std::string::npos, multi_statements);
    }
    // A cluster: the node that answered last first, then the others in order.
    std::size_t const first = preferred_.load();
    for (std::size_t k = 0;; ++k) {
        std::size_t const i = (first + k) % endpoints_.size();
        try {
            auto c = connect_to(i, multi_statements);
            // A node that is up but not part of the cluster's primary component refuses queries (1047):
            // another node will take them.
            std::unique_ptr<sql::Statement> st(c->createStatement());
            std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT 1"));
            if (i != first) {
                spdlog::warn("database: now using {}:{}", endpoints_[i].first, endpoints_[i].second);
            }
            preferred_ = i;
            return c;
        } catch (sql::SQLException const& e) {
            spdlog::warn("database connect to {}:{} failed: {} ({})", endpoints_[i].first,
                         endpoints_[i].second, e.what(), e.getErrorCode());
            if (k + 1 == endpoints_.size()) {
                throw;
            }
        }
    }
}

std::unique_ptr<sql::Connection> pool::connect_to(std::size_t endpoint, bool multi_statements) const {
    sql::ConnectOptionsMap opts;
    if (endpoint == std::string::npos) {
        opts["hostName"] = sql::SQLString("unix://" + cfg_.socket);
    } else {
        opts["hostName"] = sql::SQLString(endpoints_[endpoint].first);
        opts["port"] = static_cast<int>(endpoints_[endpoint].second);
    }
    opts["userName"] = sql::SQLString(cfg_.user);
    opts["password"] = sql::SQLString(cfg_.password);
    opts["schema"] = sql::SQLString(cfg_.name);
    opts["OPT_CONNECT_TIMEOUT"] = static_cast<int>(cfg_.connect_timeout_s);
    opts["OPT_READ_TIMEOUT"] = static_cast<int>(cfg_.read_timeout_s);
    opts["OPT_WRITE_TIMEOUT"] = static_cast<int>(cfg_.write_timeout_s);
    opts["OPT_RECONNECT"] = false;
    opts["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
    opts["CLIENT_MULTI_STATEMENTS"] = multi_statements;
    auto* driver = sql::mysql::get_driver_instance();
    std::unique_ptr<sql::Connection> c(driver->connect(opts));
    c->setAutoCommit(true);
    return c;
}

void pool::thread_main() {
    auto* driver = sql::mysql::get_driver_instance();
    driver->threadInit();
    live_connection live;
    auto last_used = std::chrono::steady_clock::now();
    for (;;) {
        std::unique_ptr<job> j;
        {
            std::unique_lock lock(mutex_);
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                break;  // stopping and drained
            }
            j = std::move(queue_.front());
            queue_.pop_front();
        }
        ++in_use_;
        run_one(std::move(j), live, last_used);
        --in_use_;
    }
    live.drop();
    driver->threadEnd();
}

void pool::live_connection::drop() {
    statement_cache::set_current(nullptr);
    cache.reset();  // statements before their connection
    conn.reset();
}

void pool::live_connection::attach(std::unique_ptr<sql::Connection> c) {
    drop();
    conn = std::move(c);
    cache = std::make_unique<statement_cache>(*conn);
    statement_cache::set_current(cache.get());
}

void pool::run_one(std::unique_ptr<job> j, live_connection& live,
                   std::chrono::steady_clock::time_point& last_used) {
    auto const now = std::chrono::steady_clock::now();
    try {
        if (live.conn &&
            (live.conn->isClosed() || (now - last_used > ping_after_idle && !live.conn->isValid()))) {
            live.drop();
        }
    } catch (sql::SQLException const&) {
        live.drop();
    }
    if (!live.conn) {
        // While the server is known to be down (the last connect failed), jobs fail fast for a window and
        // then only one thread at a time probes it; while it is up, every thread connects as it needs to.
        bool probing = false;
        if (down_.load()) {
            std::int64_t const window =
                std::max<std::int64_t>(min_fail_fast_ms, cfg_.connect_timeout_s * 1000);
            bool expected = false;
            if (now_ms() - last_connect_failure_ms_.load() < window ||
                !probing_.compare_exchange_strong(expected, true)) {
                app_error err = make_error(errc::database, "Database unavailable, try again later");
                j->run(nullptr, &err);
                return;
            }
            probing = true;
        }
        struct probe_done {
            std::atomic<bool>& flag;
            bool active;
            ~probe_done() {
                if (active)
                    flag = false;
            }
        } done{probing_, probing};
        try {
            live.attach(connect());
            down_ = false;
        } catch (sql::SQLException const& e) {
            last_connect_failure_ms_ = now_ms();
            down_ = true;
            if (endpoints_.size() == 1) {  // a cluster's connect() logged each node
                spdlog::warn("database connect to {}:{} failed: {} ({})", endpoints_[0].first,
                             endpoints_[0].second, e.what(), e.getErrorCode());
            }
            app_error err = map_sql_error(e);
            if (err.code == errc::internal) {
                err = make_error(errc::database, "Database unavailable, try again later");
            }
            j->run(nullptr, &err);
            return;
        }
    }
    detail::last_job_errno = 0;
    j->run(live.conn.get(), nullptr);
    last_used = std::chrono::steady_clock::now();
    // A job that hit a dead connection leaves it unusable; drop it so the next job reconnects. A job that
    // asks for it runs again at once on a new connection (it does so once: see unit_job).
    if (is_connection_error(detail::last_job_errno)) {
        live.drop();
        if (j->wants_new_connection()) {
            run_one(std::move(j), live, last_used);
        }
        return;
    }
    // A job that failed inside a transaction must not leave it open (with its locks) for the next job.
    try {
        if (live.cache->in_transaction()) {
            rollback_transaction(*live.conn);
        }
        if (!live.conn->getAutoCommit()) {
            live.conn->rollback();
            live.conn->setAutoCommit(true);
        }
    } catch (sql::SQLException const&) {
        live.drop();
    }
}

}  // namespace certctrl::db
