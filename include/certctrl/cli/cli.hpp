#pragma once
// `certctrl`, the command-line client of the API: profiles in ~/.config/certctrl/config.json, one command per
// resource action, tables for people and JSON for scripts, documented exit codes.

#include "certctrl/core/error.hpp"

#include <boost/json/value.hpp>

#include <filesystem>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace certctrl::cli {

/// The exit codes (`certctrl --help` lists them).
enum exit_code : int {
    exit_ok = 0,
    exit_failed = 1,     // the action ran and failed (an issuance ended FAILED)
    exit_usage = 2,      // bad command line or local configuration
    exit_auth = 3,       // 401 / 403
    exit_not_found = 4,  // 404
    exit_conflict = 5,   // 409
    exit_server = 6,     // 5xx
    exit_network = 7,    // the server could not be reached (or TLS failed)
    exit_rejected = 8,   // the server refused the request (400, 413, 415, 429, ...)
};

/// What the process gets from outside: environment variables, where profiles live, whether stdout is a
/// terminal.
struct environment {
    std::map<std::string, std::string> vars;
    std::filesystem::path config_file;  // the profiles file
    bool tty = false;
};

/// The profiles file of `vars`: $CERTCTRL_CONFIG, else $XDG_CONFIG_HOME/certctrl/config.json, else
/// $HOME/.config/certctrl/config.json.
std::filesystem::path default_config_file(std::map<std::string, std::string> const& vars);

/// One answer of the API.
struct api_answer {
    unsigned status = 0;
    boost::json::value body;  // null when the body is not JSON
    std::string raw;
    std::string set_cookie;
};

/// Where and as whom to call the API.
struct connection {
    std::string url;      // e.g. https://certs.example.com
    std::string api_key;  // Bearer token, or
    std::string cookie;   // a session cookie "name=value"
    std::string ca_file;  // extra roots to trust
};

/// One request. Errors: external_service (network, TLS, timeout), bad_request (unusable URL).
result<api_answer> call(connection const& c, std::string const& method, std::string const& path,
                        std::optional<boost::json::value> body = std::nullopt);

/// Runs the command line `args` (without the program name); returns the exit code.
int run(std::vector<std::string> const& args, environment const& env, std::istream& in, std::ostream& out,
        std::ostream& err);

}  // namespace certctrl::cli
