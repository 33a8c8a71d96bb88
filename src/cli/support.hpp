#pragma once
// The CLI's plumbing (internal to certctrl_cli): the command line, the profiles file, tables.

#include "certctrl/cli/cli.hpp"
#include "certctrl/core/error.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace certctrl::cli::detail {

/// A command line taken apart.
struct parsed {
    std::vector<std::string> words;                           // group, verb, ids
    std::map<std::string, std::vector<std::string>> values;   // --name value (repeatable)
    std::set<std::string> flags;                              // --wait, --help
    std::vector<std::pair<std::string, std::string>> fields;  // key=value (after group and verb)
};

/// Splits `args` into words, options, flags and fields. Errors: bad_request (unknown option, missing value).
result<parsed> parse_args(std::vector<std::string> const& args);

/// The profiles file as JSON ({} when absent or unreadable).
boost::json::object read_profiles(std::filesystem::path const& file);
/// Writes it whole through a temporary file of mode 0600 renamed into place (its folder 0700); `why` on
/// failure.
bool write_profiles(std::filesystem::path const& file, boost::json::object const& all, std::string& why);

/// A member as a table cell: times (`*_at`, not_before, not_after) as UTC dates, arrays joined, null "-".
std::string cell(std::string const& key, boost::json::value const* v);
/// Rows as an aligned table of `columns` (headers upper-cased).
void print_table(std::ostream& out, boost::json::array const& rows, std::vector<std::string> const& columns);
/// One object as "key: value" lines (long values summarised).
void print_record(std::ostream& out, boost::json::object const& o);

/// One run of a command: its arguments, streams, output mode and connection.
struct context {
    parsed p;
    environment const& env;
    std::istream& in;
    std::ostream& out;
    std::ostream& err;
    bool json_out = false;
    connection conn;
    std::string profile;

    std::string value(std::string const& name, std::string const& fallback = "") const {
        auto it = p.values.find(name);
        return it == p.values.end() || it->second.empty() ? fallback : it->second.back();
    }
    std::string var(std::string const& name) const {
        auto it = env.vars.find(name);
        return it == env.vars.end() ? std::string() : it->second;
    }
};

/// Reports a command-line mistake; exit_usage.
int usage_error(context& c, std::string const& what);
/// Reports the API's error in words (code, field); the exit code its status means.
int api_error(context& c, api_answer const& a);
/// Performs a request; on success hands its `data` (null for 204) to `done`, else reports the error.
int request(context& c, std::string const& method, std::string const& path,
            std::optional<boost::json::value> body,
            std::function<int(boost::json::value const&)> const& done);
/// Prints `data`: JSON with -o json, else a record.
int print_data(context& c, boost::json::value const& data);
/// The positive id in position `i` after group and verb.
std::optional<std::string> id_at(context& c, std::size_t i);
/// The request body: key=value fields (JSON values taken as JSON), or --data.
result<boost::json::value> body_of(context const& c);
/// GET of a list page (--limit, --cursor) as a table of `columns` or JSON.
int list(context& c, std::string path, std::vector<std::string> const& columns);
/// A request with body_of() as its body; prints the answer.
int with_body(context& c, std::string const& method, std::string const& path);
/// DELETE; prints "deleted".
int remove(context& c, std::string const& path);

/// certs issue/renew: `action` is "issues" or "renew"; --wait follows the row to its end (exit_failed when it
/// fails, with the CA's words).
int issue(context& c, std::string const& cert, std::string const& action);
/// certs export --out DIR: cert.pem, chain.pem, fullchain.pem, privkey.pem (0600), each complete before any
/// is renamed into place.
int export_files(context& c, std::string const& cert);
/// login: checks the credential, then stores it in the profile.
int login(context& c);

}  // namespace certctrl::cli::detail
