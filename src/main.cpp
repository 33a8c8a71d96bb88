// certctrl-server: command-line entry point. Everything else lives in the layer libraries.
#include "certctrl/app/application.hpp"
#include "certctrl/config/config.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "certctrl_git_commit.hpp"  // CERTCTRL_GIT_COMMIT, generated at every build

#ifndef CERTCTRL_VERSION
#define CERTCTRL_VERSION "0.0.0"
#endif

namespace {

constexpr char const* usage = R"(Usage: certctrl-server [COMMAND] --config FILE [OPTIONS]

Commands:
  serve        Serve the HTTP API (default). Migrates on start when database.migrate_on_start is true.
  migrate      Apply pending database migrations and exit.
  rewrap-keys  Re-wrap certificate data keys and re-seal stored secrets under the current master key
               version (rotation: see docs/operator-guide.md).
  user add     Create an active user:  --email E --password-stdin [--admin]
  user disable Disable a user: --email E. Its sessions and API keys stop working on every instance within a
               second; `user enable --email E` lets it back in.
  apikey add   Create an API key for a user and print its token once:
               --email E --name N [--scope 'obtype:obid[action,...]']... [--expires-in SECONDS]

Options:
  --config FILE      JSON config file (see config/certctrl.example.json). Required.
  --port-file FILE   serve: write the bound port to FILE once listening (useful with port 0).
  --help             Show this help.
  --version          Show the version.

Secrets are read from the environment variables or files named in the config
(database.password_env / password_file, crypto.master_key_env / master_key_file).

Exit codes: 0 ok, 1 runtime failure, 2 bad usage, config or input, 3 schema newer than this binary.
)";

int usage_error(std::string const& msg) {
    std::cerr << "certctrl-server: " << msg << "\n\n" << usage;
    return certctrl::app::exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    std::string command = "serve";
    std::size_t first_option = 0;
    if (!args.empty() && (args[0] == "serve" || args[0] == "migrate" || args[0] == "rewrap-keys")) {
        command = args[0];
        first_option = 1;
    } else if (args.size() >= 2 && ((args[0] == "user" || args[0] == "apikey") && args[1] == "add")) {
        command = args[0] + " add";
        first_option = 2;
    } else if (args.size() >= 2 && args[0] == "user" && (args[1] == "disable" || args[1] == "enable")) {
        command = "user " + args[1];
        first_option = 2;
    }
    std::optional<std::string> config_path;
    std::optional<std::string> email;
    std::optional<std::string> name;
    std::vector<std::string> scopes;
    std::int64_t expires_in = 365 * 24 * 3600;
    bool password_stdin = false;
    bool admin = false;
    certctrl::app::serve_options serve_opts;
    for (std::size_t i = first_option; i < args.size(); ++i) {
        auto const& a = args[i];
        auto value = [&]() -> std::optional<std::string> {
            if (i + 1 >= args.size()) {
                return std::nullopt;
            }
            return args[++i];
        };
        if (a == "--help" || a == "-h") {
            std::cout << usage;
            return certctrl::app::exit_ok;
        }
        if (a == "--version") {
            std::cout << "certctrl-server " << CERTCTRL_VERSION << " (" << CERTCTRL_GIT_COMMIT << ")\n";
            return certctrl::app::exit_ok;
        }
        std::optional<std::string>* target = nullptr;
        std::optional<std::string> scratch;
        if (a == "--config") {
            target = &config_path;
        } else if (a == "--port-file" && command == "serve") {
            target = &scratch;
        } else if (a == "--email" && (command.rfind("user ", 0) == 0 || command == "apikey add")) {
            target = &email;
        } else if (a == "--name" && command == "apikey add") {
            target = &name;
        } else if ((a == "--scope" || a == "--expires-in") && command == "apikey add") {
            target = &scratch;
        } else if (a == "--password-stdin" && command == "user add") {
            password_stdin = true;
            continue;
        } else if (a == "--admin" && command == "user add") {
            admin = true;
            continue;
        } else {
            return usage_error("unknown argument '" + a + "' for " + command);
        }
        *target = value();
        if (!*target) {
            return usage_error(a + " needs a value");
        }
        if (a == "--port-file") {
            serve_opts.port_file = *scratch;
        } else if (a == "--scope") {
            scopes.push_back(*scratch);
        } else if (a == "--expires-in") {
            auto const& s = *scratch;
            auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), expires_in);
            if (ec != std::errc{} || ptr != s.data() + s.size()) {
                return usage_error("--expires-in needs a number of seconds");
            }
        }
    }
    if (!config_path) {
        return usage_error("--config FILE is required");
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
        if (command == "rewrap-keys") {
            return certctrl::app::rewrap_keys(cfg);
        }
        if (command == "user add") {
            if (!email || !password_stdin) {
                return usage_error("user add needs --email E and --password-stdin");
            }
            std::string password;
            std::getline(std::cin, password);
            return certctrl::app::user_add(cfg, *email, password, admin);
        }
        if (command == "user disable" || command == "user enable") {
            if (!email) {
                return usage_error(command + " needs --email E");
            }
            return certctrl::app::user_set_status(cfg, *email,
                                                  command == "user disable" ? "DISABLED" : "ACTIVE");
        }
        if (command == "apikey add") {
            if (!email || !name) {
                return usage_error("apikey add needs --email E and --name N");
            }
            return certctrl::app::apikey_add(cfg, *email, *name, scopes, expires_in);
        }
        return certctrl::app::serve(cfg, serve_opts);
    } catch (std::exception const& e) {
        spdlog::critical("fatal: {}", e.what());
        return certctrl::app::exit_failure;
    }
}
