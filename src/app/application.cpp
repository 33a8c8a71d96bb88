#include "certctrl/app/application.hpp"

#include "certctrl/db/migrations.hpp"
#include "certctrl/db/pool.hpp"
#include "certctrl/handlers/health.hpp"
#include "certctrl/http/metrics.hpp"
#include "certctrl/http/server.hpp"
#include "certctrl/repo/mysql.hpp"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <fstream>
#include <iostream>
#include <thread>

namespace certctrl::app {

namespace asio = boost::asio;

void setup_logging(config::log_config const& cfg) {
    spdlog::set_level(spdlog::level::from_str(cfg.level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%t] %v");
}

namespace {

// Runs migrations (or just checks the schema) on a dedicated connection. Returns an exit code.
int prepare_schema(db::pool const& pool, bool apply) {
    try {
        auto conn = pool.connect();
        if (apply) {
            auto done = db::migrate(*conn);
            if (!done) {
                spdlog::critical("migration failed: {}", done.error().what);
                return done.error().code == errc::conflict ? exit_schema : exit_failure;
            }
            for (auto const& f : *done) {
                spdlog::info("applied {}", f);
            }
            return exit_ok;
        }
        auto st = db::check_schema(*conn);
        if (!st) {
            spdlog::critical("schema check failed: {}", st.error().what);
            return exit_schema;
        }
        if (st->newer_than_known()) {
            spdlog::critical(
                "database schema version {} is newer than this binary knows ({}); refusing to start",
                st->applied, st->known);
            return exit_schema;
        }
        if (!st->pending.empty()) {
            spdlog::warn("{} migration(s) pending; /ready answers 503 until `certctrl-server migrate` runs",
                         st->pending.size());
        }
        return exit_ok;
    } catch (sql::SQLException const& e) {
        spdlog::critical("database {}:{}/{}: {} (error {})", pool.settings().host, pool.settings().port,
                         pool.settings().name, e.what(), e.getErrorCode());
        return exit_failure;
    }
}

void add_pool_gauges(http::metrics& m, db::pool& pool) {
    m.add_source([&pool](std::string& out) {
        auto s = pool.current_stats();
        out += "# HELP certctrl_db_pool_size Database connections (threads) in the pool.\n";
        out += "# TYPE certctrl_db_pool_size gauge\n";
        out += fmt::format("certctrl_db_pool_size {}\n", s.size);
        out += "# HELP certctrl_db_pool_in_use Database pool threads running a job.\n";
        out += "# TYPE certctrl_db_pool_in_use gauge\n";
        out += fmt::format("certctrl_db_pool_in_use {}\n", s.in_use);
        out += "# HELP certctrl_db_pool_waiting Database jobs queued for a free connection.\n";
        out += "# TYPE certctrl_db_pool_waiting gauge\n";
        out += fmt::format("certctrl_db_pool_waiting {}\n", s.waiting);
    });
}

}  // namespace

int migrate(config::config const& cfg) {
    db::pool pool(cfg.database);
    int rc = prepare_schema(pool, true);
    if (rc == exit_ok) {
        std::cout << "schema is at version " << db::latest_known_version() << "\n";
    }
    return rc;
}

int serve(config::config const& cfg, serve_options const& opts) {
    db::pool pool(cfg.database);
    if (int rc = prepare_schema(pool, cfg.database.migrate_on_start); rc != exit_ok) {
        return rc;
    }

    asio::io_context ioc(static_cast<int>(cfg.server.threads));
    http::metrics metrics;
    add_pool_gauges(metrics, pool);
    auto health = repo::make_mysql_health_repository(pool);

    http::router api_routes;
    handlers::add_health_routes(api_routes, *health);
    bool const separate_metrics = !cfg.metrics.listen_address.empty();
    if (!separate_metrics && !cfg.metrics.token.empty()) {
        handlers::add_metrics_route(api_routes, metrics, cfg.metrics.token);
    }

    http::server api(ioc, cfg.server, api_routes, metrics, "api");
    http::router metrics_routes;
    std::unique_ptr<http::server> metrics_server;
    try {
        api.listen(cfg.server.listen_address, cfg.server.port);
        if (separate_metrics) {
            handlers::add_metrics_route(metrics_routes, metrics, cfg.metrics.token);
            metrics_server =
                std::make_unique<http::server>(ioc, cfg.server, metrics_routes, metrics, "metrics");
            metrics_server->listen(cfg.metrics.listen_address, cfg.metrics.port);
        }
    } catch (boost::system::system_error const& e) {
        spdlog::critical("cannot listen: {}", e.what());
        return exit_failure;
    }
    api.start();
    spdlog::info("listening on {}:{}", cfg.server.listen_address, api.port());
    if (metrics_server) {
        metrics_server->start();
        spdlog::info("metrics on {}:{}", cfg.metrics.listen_address, metrics_server->port());
    }
    if (opts.port_file) {
        std::ofstream(*opts.port_file) << api.port() << "\n";
    }

    // Shutdown: stop accepting, let in-flight requests finish, then stop the io_context once every
    // connection closed or the grace period ran out.
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    asio::steady_timer drain(ioc);
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> poll_drain = [&] {
        std::size_t open = api.open_connections() + (metrics_server ? metrics_server->open_connections() : 0);
        if (open == 0 || std::chrono::steady_clock::now() >= deadline) {
            if (open != 0) {
                spdlog::warn("shutdown grace period over with {} connection(s) open", open);
            }
            ioc.stop();
            return;
        }
        drain.expires_after(std::chrono::milliseconds(20));
        drain.async_wait([&](boost::system::error_code) { poll_drain(); });
    };
    signals.async_wait([&](boost::system::error_code ec, int sig) {
        if (ec) {
            return;
        }
        spdlog::info("signal {} received: shutting down", sig);
        deadline = std::chrono::steady_clock::now() + cfg.server.shutdown_grace;
        api.begin_shutdown();
        if (metrics_server) {
            metrics_server->begin_shutdown();
        }
        poll_drain();
    });

    std::vector<std::thread> threads;
    for (unsigned i = 1; i < cfg.server.threads; ++i) {
        threads.emplace_back([&ioc] { ioc.run(); });
    }
    ioc.run();
    for (auto& t : threads) {
        t.join();
    }
    pool.stop();
    spdlog::info("stopped");
    return exit_ok;
}

}  // namespace certctrl::app
