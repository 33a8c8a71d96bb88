// certctrl-server: command-line entry point. Everything else lives in the layer libraries.
#include "certctrl/app/application.hpp"
#include "certctrl/config/config.hpp"

#include <spdlog/spdlog.h>

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#ifndef CERTCTRL_VERSION
#define CERTCTRL_VERSION "0.0.0"
#endif

namespace {

constexpr char const* usage = R"(Usage: certctrl-server [COMMAND] --config FILE [OPTIONS]

Commands:
  serve      Serve the HTTP API (default). Migrates on start when database.migrate_on_start is true.
  migrate    Apply pending database migrations and exit.

Options:
  --config FILE      JSON config file (see config/certctrl.example.json). Required.
  --port-file FILE   serve: write the bound port to FILE once listening (useful with port 0).
  --help             Show this help.
  --version          Show the version.

Secrets are read from the environment variables or files named in the config
(database.password_env / password_file, crypto.master_key_env / master_key_file).

Exit codes: 0 ok, 1 runtime failure, 2 bad usage or config, 3 schema newer than this binary.
)";

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string command = "serve";
    std::optional<std::string> config_path;
    certctrl::app::serve_options serve_opts;
    for (std::size_t i = 0; i < args.size(); ++i) {
        auto const& a = args[i];
        auto value = [&](std::string const& flag) -> std::optional<std::string> {
            if (i + 1 >= args.size()) {
                std::cerr << "certctrl-server: " << flag << " needs a value\n";
                return std::nullopt;
            }
            return args[++i];
        };
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            return certctrl::app::exit_ok;
        }
        if (a == "--version") {
            std::cout << "certctrl-server " << CERTCTRL_VERSION << "\n";
            return certctrl::app::exit_ok;
        }
        if (a == "--config") {
            config_path = value(a);
            if (!config_path)
                return certctrl::app::exit_usage;
        } else if (a == "--port-file") {
            auto v = value(a);
            if (!v)
                return certctrl::app::exit_usage;
            serve_opts.port_file = *v;
        } else if (i == 0 && (a == "serve" || a == "migrate")) {
            command = a;
        } else {
            std::cerr << "certctrl-server: unknown argument '" << a << "'\n\n" << usage;
            return certctrl::app::exit_usage;
        }
    }
    if (!config_path) {
        std::cerr << "certctrl-server: --config FILE is required\n\n" << usage;
        return certctrl::app::exit_usage;
    }
    certctrl::config::config cfg;
    try {
        cfg = certctrl::config::load(*config_path);
    } catch (certctrl::config::config_error const& e) {
        std::cerr << "certctrl-server: " << e.what() << "\n";
        return certctrl::app::exit_usage;
    }
    certctrl::app::setup_logging(cfg.log);
    try {
        if (command == "migrate") {
            return certctrl::app::migrate(cfg);
        }
        return certctrl::app::serve(cfg, serve_opts);
    } catch (std::exception const& e) {
        spdlog::critical("fatal: {}", e.what());
        return certctrl::app::exit_failure;
    }
}
