// certctrl: the command-line client. Everything but the process's environment lives in certctrl_cli.
#include "certctrl/cli/cli.hpp"

#include <unistd.h>

#include <iostream>

extern char** environ;

int main(int argc, char** argv) {
    certctrl::cli::environment env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string const kv(*e);
        auto const eq = kv.find('=');
        if (eq != std::string::npos) {
            env.vars[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
    }
    env.config_file = certctrl::cli::default_config_file(env.vars);
    env.tty = ::isatty(STDERR_FILENO) != 0;
    return certctrl::cli::run(std::vector<std::string>(argv + 1, argv + argc), env, std::cin, std::cout,
                              std::cerr);
}
