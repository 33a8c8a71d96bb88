#pragma once
// Runs the real `certctrl` client (its path set by CMake) with a private profiles file, stdout and stderr
// apart.
#include "process.hpp"
#include "test_env.hpp"

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace certctrl::test {

struct cli_result {
    int code = -1;
    std::string out;
    std::string err;
};

class cli_runner {
  public:
    /// Profiles live in `dir`/cli.json; `env` is added to every run (e.g. CERTCTRL_URL).
    explicit cli_runner(std::filesystem::path dir) : dir_(std::move(dir)) {}

    std::filesystem::path config_file() const { return dir_ / "cli.json"; }

    cli_result run(std::vector<std::string> const& args, std::string const& stdin_data = "",
                   std::vector<std::string> env = {}) const {
        auto const n = std::to_string(++runs_);
        auto const out = dir_ / ("cli-out." + n);
        auto const err = dir_ / ("cli-err." + n);
        std::ofstream(dir_ / "cli-in") << stdin_data;
        // stderr to its own file through the shell; the CLI itself is exec'd with the arguments as given.
        std::vector<std::string> full{"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>" + err.string(),
                                      CERTCTRL_CLI_BINARY};
        full.insert(full.end(), args.begin(), args.end());
        env.push_back("CERTCTRL_CONFIG=" + config_file().string());
        env.push_back("HOME=" + dir_.string());
        int const pid = spawn_process(full, env, out, dir_ / "cli-in");
        auto code = wait_process(pid, std::chrono::seconds(60));
        return cli_result{code.value_or(-1000), read(out), read(err)};
    }

  private:
    static std::string read(std::filesystem::path const& p) {
        std::ifstream in(p);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    std::filesystem::path dir_;
    mutable int runs_ = 0;
};

}  // namespace certctrl::test
