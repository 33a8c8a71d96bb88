// The commands of `certctrl`: the command table, help, completion and the dispatch of a command line.
#include "certctrl/cli/cli.hpp"

#include "support.hpp"

#include "certctrl/core/ids.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <functional>
#include <iostream>
#include <set>

#include "certctrl_git_commit.hpp"  // CERTCTRL_GIT_COMMIT, generated at every build

#ifndef CERTCTRL_VERSION
#define CERTCTRL_VERSION "0.0.0"
#endif

namespace certctrl::cli {

namespace {

namespace json = boost::json;
using namespace detail;

// ------------------------------------------------------------------------------------------ the table

struct command {
    std::string group;
    std::string verb;
    std::string args;
    std::string help;
    bool needs_server = true;
    std::function<int(context&)> fn;
};

// ls/show/create/update/rm of a resource under /apiv1/me/<path>.
void resource(std::vector<command>& out, std::string const& group, std::string const& path,
              std::vector<std::string> const& columns, std::string const& what,
              std::string const& update_method, bool creates = true) {
    auto const base = "/apiv1/me/" + path;
    out.push_back({group, "ls", "", "List " + what + " (--limit, --cursor)", true,
                   [=](context& c) { return list(c, base, columns); }});
    out.push_back({group, "show", "ID", "Show one", true, [=](context& c) {
                       auto id = id_at(c, 0);
                       return id ? request(c, "GET", base + "/" + *id, std::nullopt,
                                           [&](json::value const& d) { return print_data(c, d); })
                                 : usage_error(c, group + " show needs an ID");
                   }});
    if (creates) {
        out.push_back({group, "create", "key=value... | --data JSON", "Create one", true,
                       [=](context& c) { return with_body(c, "POST", base); }});
    }
    if (!update_method.empty()) {
        out.push_back({group, "update", "ID key=value... | --data JSON", "Change one", true, [=](context& c) {
                           auto id = id_at(c, 0);
                           return id ? with_body(c, update_method, base + "/" + *id)
                                     : usage_error(c, group + " update needs an ID");
                       }});
    }
    out.push_back({group, "rm", "ID", "Delete one", true, [=](context& c) {
                       auto id = id_at(c, 0);
                       return id ? remove(c, base + "/" + *id) : usage_error(c, group + " rm needs an ID");
                   }});
}

// An action on one object: `verb ID` -> METHOD /apiv1/me/<path>/ID<suffix>.
command action(std::string const& group, std::string const& verb, std::string const& path,
               std::string const& method, std::string const& suffix, std::string const& help,
               bool lists = false, std::vector<std::string> columns = {}) {
    return {group, verb, "ID", help, true, [=](context& c) {
                auto id = id_at(c, 0);
                if (!id) {
                    return usage_error(c, group + " " + verb + " needs an ID");
                }
                auto const target = "/apiv1/me/" + path + "/" + *id + suffix;
                if (lists) {
                    return list(c, target, columns);
                }
                std::optional<json::value> body;
                if (method != "GET" && method != "DELETE") {
                    auto b = body_of(c);
                    if (!b) {
                        return usage_error(c, b.error().what);
                    }
                    body = *b;
                }
                return request(c, method, target, body,
                               [&](json::value const& d) { return print_data(c, d); });
            }};
}

std::vector<command> const& commands() {
    static std::vector<command> const table = [] {
        std::vector<command> t;
        std::vector<std::string> const cert_cols = {"id",        "domain_name", "status",
                                                    "not_after", "acct_id",     "key_dist_policy"};
        resource(t, "certs", "certificates", cert_cols, "certificates", "PATCH");
        t.push_back({"certs", "issue", "ID [--wait]",
                     "Issue (with --wait: until it ends; non-zero when it fails)", true, [](context& c) {
                         auto id = id_at(c, 0);
                         return id ? issue(c, *id, "issues") : usage_error(c, "certs issue needs an ID");
                     }});
        t.push_back({"certs", "renew", "ID [--wait]", "Renew (as issue)", true, [](context& c) {
                         auto id = id_at(c, 0);
                         return id ? issue(c, *id, "renew") : usage_error(c, "certs renew needs an ID");
                     }});
        t.push_back(
            action("certs", "history", "certificates", "GET", "/issues", "Issuance history", true,
                   {"id", "status", "kind", "attempt", "created_at", "completed_at", "error_message"}));
        t.push_back({"certs", "export", "ID --out DIR",
                     "Write cert.pem, chain.pem, fullchain.pem, privkey.pem (0600)", true, [](context& c) {
                         auto id = id_at(c, 0);
                         return id ? export_files(c, *id) : usage_error(c, "certs export needs an ID");
                     }});
        resource(t, "devices", "devices",
                 {"id", "name", "status", "platform", "agent_version", "last_seen_at"}, "devices", "", false);
        t.push_back({"devices", "assign", "DEVICE CERT", "Give a device a certificate", true, [](context& c) {
                         auto d = id_at(c, 0);
                         auto cert = id_at(c, 1);
                         if (!d || !cert) {
                             return usage_error(c, "devices assign needs DEVICE and CERT ids");
                         }
                         return request(c, "POST", "/apiv1/me/devices/" + *d + "/certificates",
                                        json::object{{"cert_id", std::stoll(*cert)}},
                                        [&](json::value const& v) { return print_data(c, v); });
                     }});
        t.push_back(
            {"devices", "unassign", "DEVICE CERT", "Take a certificate from a device", true, [](context& c) {
                 auto d = id_at(c, 0);
                 auto cert = id_at(c, 1);
                 return d && cert ? remove(c, "/apiv1/me/devices/" + *d + "/certificates/" + *cert)
                                  : usage_error(c, "devices unassign needs DEVICE and CERT ids");
             }});
        t.push_back(
            {"devices", "revoke", "ID", "Revoke a device (its tokens stop working)", true, [](context& c) {
                 auto d = id_at(c, 0);
                 return d ? request(c, "PUT", "/apiv1/me/devices/" + *d, json::object{{"status", "REVOKED"}},
                                    [&](json::value const& v) { return print_data(c, v); })
                          : usage_error(c, "devices revoke needs an ID");
             }});
        resource(t, "accounts", "acme-accounts", {"id", "name", "provider", "email", "ca_id"},
                 "ACME accounts", "PUT");
        resource(t, "cas", "cas", {"id", "name", "common_name", "not_after", "status"}, "CAs", "");
        resource(t, "dns-providers", "dns-providers", {"id", "name", "kind", "created_at"}, "DNS providers",
                 "PUT");
        t.push_back({"apikeys", "ls", "", "List API keys", true, [](context& c) {
                         return list(c, "/apiv1/me/apikeys",
                                     {"id", "name", "permissions", "expires_at", "last_used_at"});
                     }});
        t.push_back({"apikeys", "create", "name=NAME [expires_in_seconds=N] --scope SCOPE...",
                     "Create a key; its token is printed once", true, [](context& c) {
                         auto body = body_of(c);
                         if (!body) {
                             return usage_error(c, body.error().what);
                         }
                         auto& o = body->as_object();
                         if (!o.contains("expires_in_seconds")) {
                             o["expires_in_seconds"] = 90 * 86400;
                         }
                         if (auto it = c.p.values.find("scope"); it != c.p.values.end()) {
                             json::array scopes;
                             for (auto const& s : it->second) {
                                 scopes.emplace_back(s);
                             }
                             o["permissions"] = std::move(scopes);
                         }
                         return request(c, "POST", "/apiv1/me/apikeys", *body,
                                        [&](json::value const& v) { return print_data(c, v); });
                     }});
        t.push_back({"apikeys", "rm", "ID", "Delete a key", true, [](context& c) {
                         auto id = id_at(c, 0);
                         return id ? remove(c, "/apiv1/me/apikeys/" + *id)
                                   : usage_error(c, "apikeys rm needs an ID");
                     }});
        resource(t, "webhooks", "webhooks", {"id", "url", "events", "enabled", "created_at"}, "webhooks",
                 "PATCH");
        t.push_back(action("webhooks", "ping", "webhooks", "POST", "/ping", "Send a ping event"));
        t.push_back(action("webhooks", "rotate-secret", "webhooks", "POST", "/rotate-secret",
                           "A new signing secret (overlap_seconds=N keeps the old one signing)"));
        t.push_back(action(
            "webhooks", "deliveries", "webhooks", "GET", "/deliveries", "The delivery log", true,
            {"id", "event_type", "status", "attempts", "last_status_code", "created_at", "last_error"}));
        t.push_back({"audit", "ls", "", "The audit log", true, [](context& c) {
                         return list(c, "/apiv1/me/audit", {"id", "action", "outcome", "ip", "created_at"});
                     }});
        t.push_back({"login", "", "--url URL (--api-key KEY | --email EMAIL < password)",
                     "Check a credential and store it in the profile (--profile NAME)", false, login});
        t.push_back({"logout", "", "", "Forget the profile's credential", false, [](context& c) {
                         auto all = read_profiles(c.env.config_file);
                         if (auto* ps = all.if_contains("profiles"); ps && ps->is_object()) {
                             ps->get_object().erase(c.profile);
                         }
                         std::string why;
                         if (!write_profiles(c.env.config_file, all, why)) {
                             c.err << "certctrl: " << why << "\n";
                             return int(exit_failed);
                         }
                         c.out << "profile " << c.profile << " removed\n";
                         return int(exit_ok);
                     }});
        return t;
    }();
    return table;
}

void help(std::ostream& o, std::string const& group = "") {
    if (group.empty()) {
        o << "Usage: certctrl GROUP VERB [ARGS] [OPTIONS]\n\nCommands:\n";
    } else {
        o << "Usage: certctrl " << group << " VERB [ARGS] [OPTIONS]\n\n";
    }
    for (auto const& c : commands()) {
        if (!group.empty() && c.group != group) {
            continue;
        }
        std::string const name = c.group + (c.verb.empty() ? "" : " " + c.verb);
        std::string line = "  " + name + (c.args.empty() ? "" : " " + c.args);
        o << line << std::string(line.size() < 56 ? 56 - line.size() : 1, ' ') << c.help << "\n";
    }
    if (!group.empty()) {
        return;
    }
    o << R"(  completion bash                                       Print a bash completion script
  version                                               Print the version

Options:
  --url URL          The server (or CERTCTRL_URL, or the profile's)
  --api-key KEY      An API key (or CERTCTRL_API_KEY, or the profile's)
  --profile NAME     The profile to use or store (default: the current one, else "default")
  --ca-file FILE     Extra PEM roots to trust for the server
  -o json            JSON for scripts (the API's data member), instead of tables
  --limit N, --cursor C   Paging of lists
  -h, --help         This help; after a GROUP, that group's commands

Profiles live in $CERTCTRL_CONFIG, else ~/.config/certctrl/config.json (mode 0600).

Exit codes: 0 ok, 1 the action failed (an issuance ended FAILED), 2 usage, 3 not authenticated or not
allowed (401/403), 4 not found, 5 conflict (409), 6 server error (5xx), 7 network (unreachable, TLS),
8 refused by the server (400, 413, 415, 429).
)";
}

std::string completion_script() {
    std::map<std::string, std::string> verbs;
    for (auto const& c : commands()) {
        verbs[c.group] += (verbs[c.group].empty() ? "" : " ") + c.verb;
    }
    std::string groups;
    std::string cases;
    for (auto const& [g, v] : verbs) {
        groups += (groups.empty() ? "" : " ") + g;
        cases += "        " + g + ") COMPREPLY=($(compgen -W \"" + v + "\" -- \"$cur\")) ;;\n";
    }
    return "# bash completion for certctrl: source it, or put it in /etc/bash_completion.d/certctrl\n"
           "_certctrl() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]}\n"
           "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
           "        COMPREPLY=($(compgen -W \"" +
           groups +
           " completion version\" -- \"$cur\"))\n"
           "        return\n"
           "    fi\n"
           "    case ${COMP_WORDS[1]} in\n" +
           cases +
           "    esac\n"
           "}\n"
           "complete -F _certctrl certctrl\n";
}

}  // namespace

int run(std::vector<std::string> const& args, environment const& env, std::istream& in, std::ostream& out,
        std::ostream& err) {
    auto parsed_args = parse_args(args);
    if (!parsed_args) {
        err << "certctrl: " << parsed_args.error().what << " (see certctrl --help)\n";
        return exit_usage;
    }
    context c{std::move(*parsed_args), env, in, out, err, false, {}, {}};
    auto const& words = c.p.words;
    bool const asks_help = c.p.flags.contains("help");
    if (!words.empty() && asks_help && (words[0] == "version" || words[0] == "completion")) {
        out << (words[0] == "version"
                    ? "Usage: certctrl version\n  Print the version and the git commit it was built from\n"
                    : "Usage: certctrl completion bash\n  Print the bash completion script (source it, or "
                      "put it "
                      "in /etc/bash_completion.d/certctrl)\n");
        return exit_ok;
    }
    if (c.p.flags.contains("version") || (!words.empty() && words[0] == "version")) {
        out << "certctrl " << CERTCTRL_VERSION << " (" << CERTCTRL_GIT_COMMIT << ")\n";
        return exit_ok;
    }
    if (words.empty()) {
        help(c.p.flags.contains("help") ? out : err);
        return c.p.flags.contains("help") ? exit_ok : exit_usage;
    }
    if (words[0] == "completion") {
        out << completion_script();
        return exit_ok;
    }
    auto const output = c.value("output", "table");
    if (output != "table" && output != "json") {
        return usage_error(c, "-o takes json or table");
    }
    c.json_out = output == "json";
    command const* found = nullptr;
    bool group_known = false;
    for (auto const& cmd : commands()) {
        group_known = group_known || cmd.group == words[0];
        if (cmd.group == words[0] && (cmd.verb.empty() || (words.size() > 1 && cmd.verb == words[1]))) {
            found = &cmd;
            break;
        }
    }
    if (!found) {
        if (group_known) {
            help(c.p.flags.contains("help") ? out : err, words[0]);
            return c.p.flags.contains("help") ? exit_ok : exit_usage;
        }
        return usage_error(c, "unknown command '" + words[0] + "'");
    }
    if (c.p.flags.contains("help")) {
        out << "Usage: certctrl " << found->group << (found->verb.empty() ? "" : " " + found->verb) << " "
            << found->args << "\n  " << found->help << "\n";
        return exit_ok;
    }
    // The profile: --profile, else the current one, else "default"; flags and the environment win over it.
    auto const all = read_profiles(env.config_file);
    std::string current = "default";
    if (auto const* cur = all.if_contains("current"); cur && cur->is_string()) {
        current = std::string(cur->get_string());
    }
    c.profile = c.value("profile", current);
    json::object profile;
    if (auto const* ps = all.if_contains("profiles"); ps && ps->is_object()) {
        if (auto const* p = ps->get_object().if_contains(c.profile); p && p->is_object()) {
            profile = p->get_object();
        }
    }
    auto from_profile = [&](char const* key) {
        auto const* v = profile.if_contains(key);
        return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    c.conn.url = c.value("url", c.var("CERTCTRL_URL").empty() ? from_profile("url") : c.var("CERTCTRL_URL"));
    c.conn.api_key = c.value(
        "api-key", c.var("CERTCTRL_API_KEY").empty() ? from_profile("api_key") : c.var("CERTCTRL_API_KEY"));
    c.conn.cookie = c.conn.api_key.empty() ? from_profile("cookie") : "";
    c.conn.ca_file = c.value("ca-file", from_profile("ca_file"));
    if (found->needs_server && c.conn.url.empty()) {
        return usage_error(c, "no server: run certctrl login --url URL ... first, or set CERTCTRL_URL");
    }
    try {
        return found->fn(c);
    } catch (std::exception const& e) {
        // An answer without the members the command reads (another server, a proxy's page).
        err << "certctrl: unexpected answer from " << c.conn.url << " (" << e.what() << ")\n";
        return exit_server;
    }
}

}  // namespace certctrl::cli
