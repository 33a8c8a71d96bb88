#pragma once
// A MariaDB Galera cluster on loopback for tests, run by the functions of scripts/lib/services.sh
// (galera_start, galera_node_stop, galera_node_start, galera_stop): started in a folder, stopped with the
// object. SQL runs as root on one node through its socket. The test target must define CERTCTRL_SOURCE_DIR.
#include "process.hpp"
#include "test_env.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace certctrl::test {

class galera_cluster {
  public:
    /// What a cluster needs that is not installed ("" when all is there: scripts/test.sh installs it).
    static std::string missing() {
        for (char const* need :
             {"/usr/lib/galera/libgalera_smm.so", "/usr/bin/mariadb-backup", "/usr/bin/socat"}) {
            if (!std::filesystem::exists(need)) {
                return need;
            }
        }
        return "";
    }

    /// Starts `nodes` nodes under `dir`; throws with the script's log when they do not come up.
    galera_cluster(std::filesystem::path dir, int nodes) : dir_(std::move(dir)) {
        std::filesystem::create_directories(dir_);
        if (shell("galera_start " + dir_.string() + " " + std::to_string(nodes), std::chrono::seconds(180)) !=
            0) {
            throw std::runtime_error("galera_start failed:\n" + log());
        }
        std::istringstream env(read_file(dir_ / "env"));
        for (std::string line; std::getline(env, line);) {
            if (line.rfind("GALERA_PORTS=", 0) == 0) {
                std::istringstream ports(line.substr(13));
                for (std::string p; std::getline(ports, p, ',');) {
                    ports_.push_back(static_cast<std::uint16_t>(std::stoi(p)));
                }
            }
        }
        if (ports_.size() != static_cast<std::size_t>(nodes)) {
            throw std::runtime_error("galera_start wrote no ports:\n" + log());
        }
    }
    ~galera_cluster() { shell("galera_stop " + dir_.string(), std::chrono::seconds(120)); }
    galera_cluster(galera_cluster const&) = delete;
    galera_cluster& operator=(galera_cluster const&) = delete;

    /// The SQL port of each node (node n is ports()[n - 1]).
    std::vector<std::uint16_t> const& ports() const { return ports_; }

    /// Stops node `n` (1-based) with `sig` (KILL, TERM); true when it is down.
    bool stop_node(int n, std::string const& sig) {
        return shell("galera_node_stop " + dir_.string() + " " + std::to_string(n) + " " + sig,
                     std::chrono::seconds(90)) == 0;
    }
    /// Starts node `n` again; it rejoins (IST, or SST with mariadb-backup). True when it is synced.
    bool start_node(int n) {
        return shell("galera_node_start " + dir_.string() + " " + std::to_string(n),
                     std::chrono::seconds(180)) == 0;
    }

    /// Runs `statement` as root on node `n`; its output (tab-separated rows, no headers).
    std::string sql(int n, std::string const& statement) const {
        auto const out = dir_ / ("sql-" + std::to_string(n) + ".out");
        int const pid = spawn_process(
            {"/usr/bin/mariadb", "--no-defaults", "-N", "-uroot",
             "--socket=" + (dir_ / ("n" + std::to_string(n)) / "mysqld.sock").string(), "-e", statement},
            {}, out);
        wait_process(pid, std::chrono::seconds(30));
        return read_file(out);
    }

    /// What the scripts printed.
    std::string log() const { return read_file(dir_ / "shell.log"); }

  private:
    int shell(std::string const& command, std::chrono::seconds limit) const {
        int const pid = spawn_process(
            {"/bin/bash", "-c", "source " CERTCTRL_SOURCE_DIR "/scripts/lib/services.sh && " + command}, {},
            dir_ / "shell.log");
        return wait_process(pid, limit).value_or(-1000);
    }

    std::filesystem::path dir_;
    std::vector<std::uint16_t> ports_;
};

}  // namespace certctrl::test
