#pragma once

#include "test_env.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace certctrl::test {

/// The master key (64 hex) every test server gets through CERTCTRL_TEST_MASTER_KEY.
inline std::string test_master_key_hex() {
    return std::string(64, 'a');
}

/// Path of the certctrl-server binary under test (set by CMake).
std::string server_binary();

/// Result of running the binary to completion.
struct run_result {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};

/// Runs certctrl-server with `args` (and extra environment) and waits up to `timeout` for it to exit.
run_result run_server_command(std::vector<std::string> const& args, std::vector<std::string> const& env = {},
                              std::chrono::seconds timeout = std::chrono::seconds(30),
                              std::string const& stdin_data = "");

/// A config for `db` on port 0 with short timeouts; `overrides` is merged section by section.
boost::json::object make_config(config::database_config const& db, boost::json::object const& overrides = {});

/// The real server binary, started on a free port with a generated config. Its output goes to a log file.
class server_process {
  public:
    /// Starts `certctrl-server serve` and waits until it listens. The DB password is passed through the
    /// environment variable the config names. Throws when it does not come up (the log is in the message).
    server_process(boost::json::object const& config, std::string const& db_password,
                   std::vector<std::string> extra_env = {});
    ~server_process();
    server_process(server_process const&) = delete;
    server_process& operator=(server_process const&) = delete;

    std::uint16_t port() const { return port_; }
    int pid() const { return pid_; }
    bool alive() const;
    /// Sends `sig` and waits up to `timeout` for exit; returns the exit code (or -signal, or -1000 on
    /// timeout).
    int stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(15));
    /// Everything the server printed so far.
    std::string log() const;

  private:
    temp_dir dir_;
    int pid_ = -1;
    std::uint16_t port_ = 0;
    std::optional<int> exit_code_;
};

}  // namespace certctrl::test
