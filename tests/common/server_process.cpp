#include "server_process.hpp"

#include "process.hpp"

#include <signal.h>
#include <unistd.h>
#include <boost/json/serialize.hpp>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace certctrl::test {

std::string server_binary() {
    return CERTCTRL_SERVER_BINARY;
}

run_result run_server_command(std::vector<std::string> const& args, std::vector<std::string> const& env,
                              std::chrono::seconds timeout, std::string const& stdin_data) {
    temp_dir dir;
    std::vector<std::string> full{server_binary()};
    full.insert(full.end(), args.begin(), args.end());
    std::ofstream(dir.path() / "stdin") << stdin_data;
    // The master key make_config() names, as for server_process (a test may name another variable).
    std::vector<std::string> full_env = env;
    full_env.push_back("CERTCTRL_TEST_MASTER_KEY=" + test_master_key_hex());
    int pid = spawn_process(full, full_env, dir.path() / "out.log", dir.path() / "stdin");
    auto code = wait_process(pid, timeout);
    if (!code) {
        ::kill(pid, SIGKILL);
        wait_process(pid, std::chrono::seconds(5));
    }
    return run_result{code.value_or(-1000), read_file(dir.path() / "out.log")};
}

boost::json::object make_config(config::database_config const& db, boost::json::object const& overrides) {
    boost::json::object cfg{
        {"server",
         {{"listen_address", "127.0.0.1"},
          {"port", 0},
          {"threads", 2},
          {"read_timeout_ms", 5000},
          {"idle_timeout_ms", 10000},
          {"shutdown_grace_ms", 8000}}},
        {"database",
         {{"host", db.host},
          {"port", db.port},
          {"user", db.user},
          {"name", db.name},
          {"password_env", "CERTCTRL_TEST_SERVER_DB_PASSWORD"},
          {"pool_size", 2},
          {"connect_timeout_s", 1},
          {"read_timeout_s", 5},
          {"write_timeout_s", 5}}},
        {"log", {{"level", "info"}}},
        {"crypto", {{"master_key_env", "CERTCTRL_TEST_MASTER_KEY"}}},
        // The local test services (pebble, knot, stubs) listen on loopback.
        {"egress", {{"allow", boost::json::array{"127.0.0.0/8", "::1/128"}}}},
    };
    for (auto const& kv : overrides) {
        if (kv.value().is_object() && cfg.contains(kv.key()) && cfg[kv.key()].is_object()) {
            for (auto const& inner : kv.value().get_object()) {
                cfg[kv.key()].get_object()[inner.key()] = inner.value();
            }
        } else {
            cfg[kv.key()] = kv.value();
        }
    }
    return cfg;
}

server_process::server_process(boost::json::object const& config, std::string const& db_password,
                               std::vector<std::string> extra_env) {
    auto cfg_path = dir_.path() / "certctrl.json";
    std::ofstream(cfg_path) << boost::json::serialize(config);
    auto port_file = dir_.path() / "port";
    extra_env.push_back("CERTCTRL_TEST_SERVER_DB_PASSWORD=" + db_password);
    extra_env.push_back("CERTCTRL_TEST_MASTER_KEY=" + test_master_key_hex());
    pid_ = spawn_process(
        {server_binary(), "serve", "--config", cfg_path.string(), "--port-file", port_file.string()},
        extra_env, dir_.path() / "server.log");
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto code = wait_process(pid_, std::chrono::milliseconds(0))) {
            exit_code_ = *code;
            throw std::runtime_error("certctrl-server exited with " + std::to_string(*code) + ":\n" + log());
        }
        std::string p = read_file(port_file);
        if (!p.empty() && p.back() == '\n') {
            port_ = static_cast<std::uint16_t>(std::stoi(p));
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop(SIGKILL);
    throw std::runtime_error("certctrl-server did not start listening:\n" + log());
}

server_process::~server_process() {
    if (!exit_code_) {
        stop(SIGKILL, std::chrono::seconds(5));
    }
}

bool server_process::alive() const {
    return !exit_code_ && ::kill(pid_, 0) == 0;
}

int server_process::stop(int sig, std::chrono::milliseconds timeout) {
    if (exit_code_) {
        return *exit_code_;
    }
    ::kill(pid_, sig);
    auto code = wait_process(pid_, timeout);
    if (!code) {
        ::kill(pid_, SIGKILL);
        wait_process(pid_, std::chrono::seconds(5));
        exit_code_ = -1000;
        return -1000;
    }
    exit_code_ = *code;
    return *code;
}

std::string server_process::log() const {
    return read_file(dir_.path() / "server.log");
}

}  // namespace certctrl::test
