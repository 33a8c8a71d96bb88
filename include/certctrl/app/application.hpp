#pragma once

#include "certctrl/config/config.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace certctrl::app {

/// Process exit codes of certctrl-server.
enum exit_code : int {
    exit_ok = 0,
    exit_failure = 1,  // runtime failure (database unreachable at migrate, bind failed, ...)
    exit_usage = 2,    // bad command line or invalid config
    exit_schema = 3,   // the database schema is newer than this binary, or an applied migration changed
};

/// Options of `serve` that are not part of the config file.
struct serve_options {
    std::optional<std::filesystem::path> port_file;  // written with the bound port once listening
};

/// Composition root: builds the pool, repositories, routes and listeners from the config, serves until
/// SIGTERM/SIGINT, then drains in-flight requests (bounded by server.shutdown_grace_ms). Returns an exit
/// code.
int serve(config::config const& cfg, serve_options const& opts);

/// Applies pending migrations and prints what was applied. Returns an exit code.
int migrate(config::config const& cfg);

/// Re-wraps every certificate data key and re-seals every stored secret under the current master key
/// version (crypto.master_key_version), reading older ones with crypto.retired_master_keys_file. Prints the
/// counts; exit 1 when something does not open with the configured keys.
int rewrap_keys(config::config const& cfg);

/// `user add`: creates an ACTIVE user (admin when asked). Returns an exit code (2 for a bad or taken email).
int user_add(config::config const& cfg, std::string const& email, std::string const& password, bool admin);

/// `user disable` / `user enable`: sets the user's status (DISABLED or ACTIVE); cached sessions and keys of a
/// disabled user end on every instance within a second. Returns an exit code (2 for an unknown email).
int user_set_status(config::config const& cfg, std::string const& email, std::string const& status);

/// `apikey add`: creates an API key for the user with `email` and prints the token (once) on stdout.
int apikey_add(config::config const& cfg, std::string const& email, std::string const& name,
               std::vector<std::string> const& scopes, std::int64_t expires_in_seconds);

/// Sets spdlog's level and pattern from the config.
void setup_logging(config::log_config const& cfg);

}  // namespace certctrl::app
