#include "certctrl/app/application.hpp"

#include "app_internal.hpp"
#include "certctrl/core/hex.hpp"

#include "certctrl/db/migrations.hpp"
#include "certctrl/db/pool.hpp"
#include "certctrl/dns/rfc2136.hpp"
#include "certctrl/handlers/access.hpp"
#include "certctrl/handlers/dashboard.hpp"
#include "certctrl/handlers/health.hpp"
#include "certctrl/handlers/routes.hpp"
#include "certctrl/http/io_pool.hpp"
#include "certctrl/http/metrics.hpp"
#include "certctrl/http/server.hpp"
#include "certctrl/repo/mysql.hpp"
#include "certctrl/service/acme_accounts.hpp"
#include "certctrl/service/devices.hpp"
#include "certctrl/service/dns_providers.hpp"
#include "certctrl/service/identity.hpp"
#include "certctrl/service/issuance.hpp"
#include "certctrl/service/resources.hpp"
#include "certctrl/worker/issuance_worker.hpp"
#include "certctrl/worker/webhook_sender.hpp"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

namespace certctrl::app {

namespace asio = boost::asio;

namespace {

// The message with CR, LF and other control characters escaped (\r, \n, \xNN): text from CAs, DNS
// servers or clients can never start a forged log line.
class escaped_message final : public spdlog::custom_flag_formatter {
  public:
    void format(spdlog::details::log_msg const& msg, std::tm const&, spdlog::memory_buf_t& dest) override {
        std::string const escaped = escape_log_text(std::string_view(msg.payload.data(), msg.payload.size()));
        dest.append(escaped.data(), escaped.data() + escaped.size());
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<escaped_message>();
    }
};

}  // namespace

void setup_logging(config::log_config const& cfg) {
    spdlog::set_level(spdlog::level::from_str(cfg.level));
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<escaped_message>('*').set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ [%t] %*");
    spdlog::set_formatter(std::move(formatter));
}

namespace detail {

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
            if (!st->usable()) {
                spdlog::critical("{}; refusing to start", st->newer_text());
                return exit_schema;
            }
            spdlog::info("{}", st->newer_text());
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

}  // namespace detail

namespace {

using detail::check_master_keys;
using detail::make_keyring;
using detail::prepare_schema;

// Every few minutes: delete expired sessions and old rate-limit counters, so the tables do not grow without
// bound. Runs until the io_context stops.
asio::awaitable<void> housekeeping(service::auth_service& auth, service::rate_limiter& limits,
                                   service::device_auth_service& devices) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        timer.expires_after(std::chrono::minutes(5));
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec) {
            co_return;
        }
        auto sessions_op = auth.purge_sessions();
        auto sessions = co_await std::move(sessions_op);
        auto counters_op = limits.purge();
        auto counters = co_await std::move(counters_op);
        auto devices_op = devices.purge();
        auto grants = co_await std::move(devices_op);
        if (!grants) {
            spdlog::warn("housekeeping (device grants and tokens) failed: {}", grants.error().what);
        }
        if (!sessions || !counters) {
            spdlog::warn("housekeeping failed: {}",
                         !sessions ? sessions.error().what : counters.error().what);
        } else if (*sessions + *counters > 0) {
            spdlog::info("housekeeping: removed {} sessions and {} rate-limit counters", *sessions,
                         *counters);
        }
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

// Everything the identity routes and commands need, built once from the config.
// Strict domain verification's TXT lookups: asked of the configured (or the system's) recursive resolver on
// the DNS pool, at most 10 seconds each.
service::txt_lookup txt_lookup_of(config::issuance_config const& cfg, service::bounded_pool& dns_io,
                                  bool cname = false) {
    auto const [host, port] = dns::resolver_address(cfg.domain_verification_resolver);
    return [host, port, &dns_io, cname](std::string fqdn) -> service::task<std::vector<std::string>> {
        auto query = [host, port, fqdn, cname] {  // named: see compute.hpp
            return cname ? dns::query_cname(host, port, fqdn, std::chrono::seconds(5), true)
                         : dns::query_txt(host, port, fqdn, std::chrono::seconds(5), true);
        };
        auto aw =
            service::run_bounded(dns_io, std::move(query),
                                 std::string(cname ? "The CNAME lookup of " : "The TXT lookup of ") + fqdn,
                                 std::chrono::seconds(10));
        co_return co_await std::move(aw);
    };
}

struct identity_stack {
    std::unique_ptr<repo::user_repository> users;
    std::unique_ptr<repo::session_repository> sessions;
    std::unique_ptr<repo::api_key_repository> keys;
    std::unique_ptr<repo::audit_repository> audit_log;
    std::unique_ptr<repo::rate_limit_repository> rates;
    std::unique_ptr<repo::auth_epoch_repository> epoch;
    service::audit_service audit;
    service::rate_limiter limits;
    service::principal_cache credentials;
    service::auth_service auth;
    service::api_key_service api_keys;

    identity_stack(db::pool& pool, service::bounded_pool& hashing, config::config const& cfg)
        : users(repo::make_mysql_user_repository(pool)),
          sessions(repo::make_mysql_session_repository(pool)),
          keys(repo::make_mysql_api_key_repository(pool)),
          audit_log(repo::make_mysql_audit_repository(pool)),
          rates(repo::make_mysql_rate_limit_repository(pool)),
          epoch(repo::make_mysql_auth_epoch_repository(pool)),
          audit(*audit_log),
          limits(*rates, cfg.rate_limits),
          credentials(*epoch),
          auth(*users, *sessions, audit, credentials, hashing, cfg.auth),
          api_keys(*keys, audit, credentials) {}
};

// Runs one coroutine of a command-line subcommand to completion against the configured database.
template <class Fn>
int run_command(config::config const& cfg, Fn fn) {
    db::pool pool(cfg.database);
    if (int rc = prepare_schema(pool, false); rc != exit_ok) {
        return rc;
    }
    asio::io_context ioc;
    service::bounded_pool hashing("password hashing", 1, 16);
    identity_stack stack(pool, hashing, cfg);
    int rc = exit_failure;
    auto main_task = [&]() -> asio::awaitable<void> {
        auto op = fn(stack);
        rc = co_await std::move(op);
    };
    asio::co_spawn(ioc, main_task, asio::detached);
    ioc.run();
    hashing.join();
    pool.stop();
    return rc;
}

int report(app_error const& e) {
    std::cerr << "certctrl-server: " << e.what << "\n";
    return e.code == errc::conflict || e.code == errc::bad_request ? exit_usage : exit_failure;
}

}  // namespace

int user_add(config::config const& cfg, std::string const& email, std::string const& password, bool admin) {
    return run_command(cfg, [&](identity_stack& s) -> asio::awaitable<int> {
        auto aw_2 = s.auth.create_user(email, password, admin);
        auto u = co_await std::move(aw_2);
        if (!u)
            co_return report(u.error());
        std::cout << "user " << u->id << " <" << u->email << ">" << (admin ? " (admin)" : "") << " created\n";
        co_return exit_ok;
    });
}

int user_set_status(config::config const& cfg, std::string const& email, std::string const& status) {
    return run_command(cfg, [&](identity_stack& s) -> asio::awaitable<int> {
        auto aw_find = s.users->find_by_email(email);
        auto u = co_await std::move(aw_find);
        if (!u)
            co_return report(u.error());
        if (!*u)
            co_return report(make_error(errc::bad_request, "no user with email " + email));
        auto aw_set = s.users->set_status((*u)->id, status);
        auto set = co_await std::move(aw_set);
        if (!set)
            co_return report(set.error());
        std::cout << "user " << (*u)->id << " <" << (*u)->email << "> " << status << "\n";
        co_return exit_ok;
    });
}

int apikey_add(config::config const& cfg, std::string const& email, std::string const& name,
               std::vector<std::string> const& scopes, std::int64_t expires_in_seconds) {
    return run_command(cfg, [&](identity_stack& s) -> asio::awaitable<int> {
        std::vector<domain::permission> perms;
        for (auto const& sc : scopes) {
            auto p = domain::parse_scope(sc);
            if (!p)
                co_return report(p.error());
            perms.push_back(std::move(*p));
        }
        auto aw_3 = s.users->find_by_email(email);
        auto u = co_await std::move(aw_3);
        if (!u)
            co_return report(u.error());
        if (!*u)
            co_return report(make_error(errc::bad_request, "no user with email " + email));
        domain::principal operator_principal;  // the operator acts with the user's full rights
        operator_principal.who = **u;
        auto aw_4 =
            s.api_keys.create(operator_principal, (*u)->id, name, expires_in_seconds, std::move(perms),
                              service::client_info{"cli", "certctrl-server apikey add", ""});
        auto k = co_await std::move(aw_4);
        if (!k)
            co_return report(k.error());
        std::cout << k->token << "\n";
        co_return exit_ok;
    });
}

int migrate(config::config const& cfg) {
    db::pool pool(cfg.database);
    int rc = prepare_schema(pool, true);
    if (rc == exit_ok) {
        std::cout << "schema is at version " << db::latest_known_version() << "\n";
    }
    return rc;
}

namespace {

// "host/pid": names this instance as the owner of the issuance rows it works on.
std::string instance_name() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) {
        std::strcpy(host, "unknown");
    }
    return std::string(host) + "/" + std::to_string(::getpid());
}

}  // namespace

int serve(config::config const& cfg, serve_options const& opts) {
    if (cfg.crypto.master_key.empty()) {
        // Certificate keys, CA keys and account secrets are only ever stored encrypted under it.
        spdlog::critical(
            "no master key: set the environment variable named by crypto.master_key_env ({}) or "
            "crypto.master_key_file to 64 hex characters (e.g. `openssl rand -hex 32`)",
            cfg.crypto.master_key_env);
        return exit_usage;
    }
    auto egress_made = net::egress_policy::make(cfg.egress.allow, cfg.egress.enforce);
    if (!egress_made) {
        spdlog::critical("{}", egress_made.error().what);
        return exit_usage;
    }
    auto const egress = std::make_shared<net::egress_policy const>(std::move(*egress_made));
    if (!cfg.egress.enforce) {
        spdlog::warn(
            "egress.enforce is false: user-supplied URLs and DNS servers may reach internal addresses");
    }
    db::pool pool(cfg.database);
    if (int rc = prepare_schema(pool, cfg.database.migrate_on_start); rc != exit_ok) {
        return rc;
    }
    if (int rc = check_master_keys(pool, make_keyring(cfg)); rc != exit_ok) {
        return rc;
    }

    // Made later, but declared before the I/O contexts so they outlive them: coroutines still suspended when
    // the contexts are destroyed (a socket or long-poll past the grace period) unregister from these as
    // their frames are destroyed.
    std::optional<service::device_sockets> sockets_slot;
    std::optional<service::device_service> device_slot;
    http::io_pool io(cfg.server.threads);
    asio::io_context& ioc = io.main();
    // Declared after the io_context, so its threads are joined before the io_context goes away.
    // CPU work (key generation, signing, password hashing) gets a thread per core.
    unsigned const cores = std::max(2u, std::thread::hardware_concurrency());
    // Three pools, so one kind of work cannot stall another: signing and key generation; password hashing
    // (logins); blocking DNS I/O (RFC 2136 updates and queries, which may wait on a server that never
    // answers).
    boost::asio::thread_pool cpu(cores);
    service::bounded_pool hashing("password hashing", cores, 64);
    service::bounded_pool dns_io("DNS", cfg.issuance.dns_threads, 4 * cfg.issuance.dns_threads);
    http::metrics metrics;
    add_pool_gauges(metrics, pool);
    auto health = repo::make_mysql_health_repository(pool);
    identity_stack identity(pool, hashing, cfg);
    std::vector<std::string> origins{handlers::origin_of(cfg.server.public_url)};
    for (auto const& o : cfg.auth.dashboard_origins) {
        origins.push_back(handlers::origin_of(o));
    }
    crypto::keyring keys = make_keyring(cfg);
    auto acme_repo = repo::make_mysql_acme_account_repository(pool);
    service::acme_account_service acme_accounts(*acme_repo, keys, cpu);
    auto dns_repo = repo::make_mysql_dns_provider_repository(pool);
    service::dns_provider_service dns_providers(*dns_repo, keys);
    auto repos = repo::make_mysql_repositories(pool);
    service::device_signals feed_signals(repos, cfg.devices.updates_kept_per_device);
    service::webhook_events hook_events(repos, cfg.webhooks);
    service::webhook_service hooks(repos, hook_events, keys, cfg.webhooks);
    service::device_keys wraps(repos, feed_signals, keys);
    service::install_config_service install_configs(repos, feed_signals,
                                                    cfg.devices.install_config_history_kept);
    service::ca_service cas(repos, feed_signals, keys, cpu);
    service::certificate_service certificates(repos, feed_signals, wraps, install_configs, hook_events,
                                              cfg.devices.max_devices_per_user);
    service::domain_service domains(repos, identity.audit, txt_lookup_of(cfg.issuance, dns_io),
                                    cfg.issuance.domain_verification == "dns_txt");
    domains.set_cname_lookup(txt_lookup_of(cfg.issuance, dns_io, true));
    service::issuance_service issuance(repos, wraps, keys, cpu, identity.limits, domains, hook_events);
    service::device_auth_service device_auth(repos, wraps, keys, cfg.devices, cfg.server.public_url);
    service::update_notifier notifier(repos, std::chrono::milliseconds(250));
    metrics.add_source([&notifier](std::string& out) {
        out += "# HELP certctrl_device_longpolls_waiting Device update long-polls waiting for a signal.\n";
        out += "# TYPE certctrl_device_longpolls_waiting gauge\n";
        out += fmt::format("certctrl_device_longpolls_waiting {}\n", notifier.waiting());
    });
    service::device_service& device_side =
        device_slot.emplace(repos, feed_signals, keys, notifier, cfg.devices, hook_events);
    service::device_sockets& sockets = sockets_slot.emplace(repos, std::chrono::milliseconds(500));
    metrics.add_source([&sockets](std::string& out) {
        out += "# HELP certctrl_device_websockets_open Device WebSockets open in this instance.\n";
        out += "# TYPE certctrl_device_websockets_open gauge\n";
        out += fmt::format("certctrl_device_websockets_open {}\n", sockets.size());
    });
    repo::claim_rules claim_rules{cfg.issuance.max_concurrent_per_user, {}};
    for (auto const& l : cfg.issuance.ca_limits) {
        claim_rules.max_per_ca[l.directory_url] = l.max_orders_in_flight;
    }
    worker::issue_jobs jobs(repos, feed_signals, std::move(claim_rules));
    // Made before anything serves: events stored by this instance wake its sender.
    worker::webhook_sender sender(ioc, hooks, hook_events, cfg.webhooks, instance_name(), egress);
    metrics.add_source([&sender](std::string& out) { sender.render_metrics(out); });
    if (cfg.webhooks.sender) {
        hook_events.on_stored([&sender] { sender.wake(); });
    }

    http::router api_routes;
    handlers::add_health_routes(api_routes, *health);
    handlers::add_openapi_route(api_routes);
    if (cfg.server.dashboard) {
        handlers::add_dashboard_routes(api_routes);
    }
    handlers::rendered_certificates rendered;
    metrics.add_source([&rendered](std::string& out) {
        out +=
            "# HELP certctrl_rendered_certificates_lookups_total Certificate list items found rendered at "
            "their row version, or rendered anew.\n";
        out += "# TYPE certctrl_rendered_certificates_lookups_total counter\n";
        out += fmt::format("certctrl_rendered_certificates_lookups_total{{result=\"hit\"}} {}\n",
                           rendered.hits());
        out += fmt::format("certctrl_rendered_certificates_lookups_total{{result=\"miss\"}} {}\n",
                           rendered.misses());
    });
    handlers::services handler_services{identity.auth,
                                        identity.api_keys,
                                        identity.limits,
                                        identity.audit,
                                        device_auth,
                                        device_side,
                                        install_configs,
                                        certificates,
                                        cas,
                                        issuance,
                                        acme_accounts,
                                        dns_providers,
                                        domains,
                                        sockets,
                                        hooks,
                                        rendered,
                                        cfg,
                                        origins};
    handlers::add_routes(api_routes, handler_services);
    bool const separate_metrics = !cfg.metrics.listen_address.empty();
    if (!separate_metrics && !cfg.metrics.token.empty()) {
        handlers::add_metrics_route(api_routes, metrics, cfg.metrics.token);
    }

    http::server api(io, cfg.server, api_routes, metrics, "api");
    // CORS for the dashboards of auth.dashboard_origins (and our own origin): they read answers with the
    // user's cookie; cookie writes still pass the access guard's Origin check.
    api.set_cors([&origins](std::string const& origin) {
        std::string const o = handlers::origin_of(origin);
        return std::find(origins.begin(), origins.end(), o) != origins.end();
    });
    // Without valid credentials a request's body is read only up to server.unauthenticated_body_limit_bytes.
    api.set_body_gate([&handler_services](http::request const& header) {
        return handlers::body_limit_for(header, handler_services);
    });
    http::router metrics_routes;
    std::unique_ptr<http::server> metrics_server;
    http::router challenge_routes;
    std::unique_ptr<http::server> challenge_server;
    try {
        api.listen(cfg.server.listen_address, cfg.server.port);
        if (cfg.issuance.http01_port != 0) {
            handlers::add_acme_challenge_route(challenge_routes, jobs);
            challenge_server =
                std::make_unique<http::server>(io, cfg.server, challenge_routes, metrics, "http01");
            challenge_server->listen(cfg.issuance.http01_listen_address, cfg.issuance.http01_port);
        }
        if (separate_metrics) {
            handlers::add_metrics_route(metrics_routes, metrics, cfg.metrics.token);
            metrics_server =
                std::make_unique<http::server>(io, cfg.server, metrics_routes, metrics, "metrics");
            metrics_server->listen(cfg.metrics.listen_address, cfg.metrics.port);
        }
    } catch (boost::system::system_error const& e) {
        spdlog::critical("cannot listen: {}", e.what());
        return exit_failure;
    }
    api.start();
    asio::co_spawn(ioc, housekeeping(identity.auth, identity.limits, device_auth), asio::detached);
    asio::co_spawn(ioc, notifier.run(), asio::detached);
    asio::co_spawn(ioc, sockets.run(), asio::detached);
    asio::co_spawn(ioc, identity.credentials.run(), asio::detached);
    metrics.add_source([&c = identity.credentials](std::string& out) {
        out +=
            "# HELP certctrl_credential_cache_lookups_total API key and session lookups, by where the answer "
            "came from.\n";
        out += "# TYPE certctrl_credential_cache_lookups_total counter\n";
        out += fmt::format("certctrl_credential_cache_lookups_total{{result=\"hit\"}} {}\n", c.hits());
        out += fmt::format("certctrl_credential_cache_lookups_total{{result=\"miss\"}} {}\n", c.misses());
        out += "# HELP certctrl_credential_cache_entries API keys and sessions held in memory.\n";
        out += "# TYPE certctrl_credential_cache_entries gauge\n";
        out += fmt::format("certctrl_credential_cache_entries {}\n", c.size());
    });
    asio::co_spawn(ioc, identity.limits.run(), asio::detached);
    spdlog::info("listening on {}:{}", cfg.server.listen_address, api.port());
    if (metrics_server) {
        metrics_server->start();
        spdlog::info("metrics on {}:{}", cfg.metrics.listen_address, metrics_server->port());
    }
    if (challenge_server) {
        challenge_server->start();
        spdlog::info("HTTP-01 challenges on {}:{}", cfg.issuance.http01_listen_address,
                     challenge_server->port());
    }
    worker::issuance_worker worker(ioc, jobs, issuance, dns_providers, keys, cpu, dns_io, cfg.issuance,
                                   instance_name(), egress);
    issuance.on_queued([&worker] { worker.wake(); });
    metrics.add_source([&worker](std::string& out) { worker.render_metrics(out); });
    worker.start();
    sender.start();
    if (opts.port_file) {
        std::ofstream(*opts.port_file) << api.port() << "\n";
    }

    // Shutdown: stop accepting, let in-flight requests finish, then stop the I/O contexts once every
    // connection closed or the grace period ran out.
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    asio::steady_timer drain(ioc);
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> poll_drain = [&] {
        std::size_t open = api.open_connections() +
                           (metrics_server ? metrics_server->open_connections() : 0) +
                           (challenge_server ? challenge_server->open_connections() : 0);
        if (open == 0 || std::chrono::steady_clock::now() >= deadline) {
            if (open != 0) {
                spdlog::warn("shutdown grace period over with {} connection(s) open", open);
            }
            io.stop();
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
        notifier
            .stop();  // long-polls answer now instead of holding their connections through the grace period
        worker.stop();
        sender.stop();
        if (metrics_server) {
            metrics_server->begin_shutdown();
        }
        if (challenge_server) {
            challenge_server->begin_shutdown();
        }
        poll_drain();
    });

    io.run();
    cpu.stop();
    cpu.join();
    hashing.join();
    dns_io.join();  // waits out a DNS call in flight (each is bounded by its timeout)
    pool.stop();
    spdlog::info("stopped");
    return exit_ok;
}

}  // namespace certctrl::app
