#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace certctrl::test {

/// fork/exec of `args` (args[0] is the program path) with `env` entries ("NAME=value") added, stdin from
/// /dev/null and stdout+stderr to the file `log`. Returns the child's pid.
int spawn_process(std::vector<std::string> args, std::vector<std::string> const& env,
                  std::filesystem::path const& log, std::filesystem::path const& stdin_file = "/dev/null");

/// Waits up to `timeout` for `pid` to exit: its exit code, -signal, or nullopt when still running.
std::optional<int> wait_process(int pid, std::chrono::milliseconds timeout);

}  // namespace certctrl::test
