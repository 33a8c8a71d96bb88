// The CLI's requests, and its actions beyond one request: issue --wait, export --out, login.
#include "support.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <thread>

namespace certctrl::cli::detail {

namespace json = boost::json;

int usage_error(context& c, std::string const& what) {
    c.err << "certctrl: " << what << " (see certctrl --help)\n";
    return exit_usage;
}

// The API's error in words, and the exit code its status means.
int api_error(context& c, api_answer const& a) {
    std::string what = "HTTP " + std::to_string(a.status);
    if (a.body.is_object()) {
        if (auto const* e = a.body.get_object().if_contains("error"); e && e->is_object()) {
            auto const& eo = e->get_object();
            if (auto const* w = eo.if_contains("what"); w && w->is_string()) {
                what = std::string(w->get_string());
            }
            if (auto const* code = eo.if_contains("code"); code && code->is_int64()) {
                what += " (error " + std::to_string(code->get_int64());
                if (auto const* params = eo.if_contains("params"); params && params->is_object()) {
                    if (auto const* f = params->get_object().if_contains("field"); f && f->is_string()) {
                        what += ", field " + std::string(f->get_string());
                    }
                }
                what += ")";
            }
        }
    }
    c.err << "certctrl: " << what << "\n";
    if (a.status == 401 || a.status == 403) {
        return exit_auth;
    }
    if (a.status == 404) {
        return exit_not_found;
    }
    if (a.status == 409) {
        return exit_conflict;
    }
    return a.status >= 500 ? exit_server : exit_rejected;
}

// A request that got no answer: a URL that cannot be used is a usage error, anything else the network.
int unreachable(context& c, app_error const& e) {
    c.err << "certctrl: cannot reach " << c.conn.url << ": " << e.what << "\n";
    return e.code == errc::bad_request ? exit_usage : exit_network;
}

// Performs a request; on success hands `data` to `done`, else reports the error.
int request(context& c, std::string const& method, std::string const& path, std::optional<json::value> body,
            std::function<int(json::value const&)> const& done) {
    auto a = call(c.conn, method, path, std::move(body));
    if (!a) {
        return unreachable(c, a.error());
    }
    if (a->status < 200 || a->status >= 300) {
        return api_error(c, *a);
    }
    json::value data = nullptr;
    if (a->body.is_object() && a->body.get_object().contains("data")) {
        data = a->body.get_object().at("data");
    }
    return done(a->status == 204 ? json::value(nullptr) : data);
}

int print_data(context& c, json::value const& data) {
    if (c.json_out) {
        c.out << json::serialize(data) << "\n";
    } else if (data.is_object()) {
        print_record(c.out, data.get_object());
    } else if (!data.is_null()) {
        c.out << json::serialize(data) << "\n";
    }
    return exit_ok;
}

// The id in position `i` of the words after group and verb.
std::optional<std::string> id_at(context& c, std::size_t i) {
    if (c.p.words.size() <= i + 2) {
        return std::nullopt;
    }
    auto const& w = c.p.words[i + 2];
    return parse_positive_id(w) ? std::optional<std::string>(w) : std::nullopt;
}

// key=value fields (a value that is JSON is taken as JSON: numbers, true, ["a","b"]), or --data.
result<json::value> body_of(context const& c) {
    if (auto d = c.value("data"); !d.empty()) {
        boost::system::error_code ec;
        auto v = json::parse(d, ec);
        if (ec || !v.is_object()) {
            return make_error(errc::bad_request, "--data must be a JSON object");
        }
        return v;
    }
    json::object o;
    for (auto const& [k, v] : c.p.fields) {
        boost::system::error_code ec;
        auto parsed_value = json::parse(v, ec);
        o[k] = ec || parsed_value.is_object() ? json::value(v) : parsed_value;
    }
    return json::value(std::move(o));
}

int list(context& c, std::string path, std::vector<std::string> const& columns) {
    path +=
        (path.find('?') == std::string::npos ? "?" : "&") + std::string("limit=") + c.value("limit", "50");
    if (auto cur = c.value("cursor"); !cur.empty()) {
        path += "&cursor=" + cur;
    }
    auto a = call(c.conn, "GET", path);
    if (!a) {
        return unreachable(c, a.error());
    }
    if (a->status != 200) {
        return api_error(c, *a);
    }
    auto const& body = a->body.as_object();  // throws on another kind of answer (run() reports it)
    if (c.json_out) {
        c.out << json::serialize(body.at("data")) << "\n";
        return exit_ok;
    }
    print_table(c.out, body.at("data").as_array(), columns);
    if (auto const* pg = body.if_contains("pagination"); pg && pg->is_object()) {
        auto const* more = pg->get_object().if_contains("has_more");
        auto const* cursor = pg->get_object().if_contains("cursor");
        if (more && more->is_bool() && more->get_bool() && cursor && cursor->is_string()) {
            c.err << "(more: --cursor " << std::string(cursor->get_string()) << ")\n";
        }
    }
    return exit_ok;
}

int with_body(context& c, std::string const& method, std::string const& path) {
    auto body = body_of(c);
    if (!body) {
        return usage_error(c, body.error().what);
    }
    return request(c, method, path, *body, [&](json::value const& d) { return print_data(c, d); });
}

int remove(context& c, std::string const& path) {
    return request(c, "DELETE", path, std::nullopt, [&](json::value const&) {
        if (!c.json_out) {
            c.out << "deleted\n";
        }
        return exit_ok;
    });
}

// POST .../issues or .../renew; with --wait, follows the history row to its end.
int issue(context& c, std::string const& cert, std::string const& action) {
    std::int64_t row = 0;
    std::string status;
    std::string message;
    int rc =
        request(c, "POST", "/apiv1/me/certificates/" + cert + "/" + action, json::object{},
                [&](json::value const& d) {
                    row = d.at("issue_history_id").as_int64();
                    status = std::string(d.at("status").as_string());
                    // An inline issuance (SELF_CA) has already ended, with its message.
                    if (auto const* m = d.as_object().if_contains("error_message"); m && m->is_string()) {
                        message = std::string(m->get_string());
                    }
                    return exit_ok;
                });
    if (rc != exit_ok) {
        return rc;
    }
    auto const t0 = std::chrono::steady_clock::now();
    while (c.p.flags.contains("wait") && (status == "PENDING" || status == "PROCESSING")) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        rc = request(c, "GET", "/apiv1/me/certificates/" + cert + "/issues?limit=20", std::nullopt,
                     [&](json::value const& d) {
                         for (auto const& r : d.as_array()) {
                             if (r.at("id").as_int64() == row) {
                                 status = std::string(r.at("status").as_string());
                                 if (auto const* m = r.get_object().if_contains("error_message");
                                     m && m->is_string()) {
                                     message = std::string(m->get_string());
                                 }
                             }
                         }
                         return exit_ok;
                     });
        if (rc != exit_ok) {
            return rc;
        }
        if (c.env.tty && !c.json_out) {
            auto const s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            c.err << "\r" << status << "  " << static_cast<int>(s) << " s   " << std::flush;
        }
    }
    if (c.env.tty && !c.json_out && c.p.flags.contains("wait")) {
        c.err << "\n";
    }
    if (c.json_out) {
        c.out << json::serialize(json::object{{"issue_history_id", row}, {"status", status}}) << "\n";
    } else {
        c.out << "issue " << row << ": " << status << "\n";
    }
    if (status == "FAILED" || status == "CANCELLED") {
        c.err << "certctrl: " << (message.empty() ? status : message) << "\n";
        return exit_failed;
    }
    return exit_ok;
}

namespace {

// Writes `text` to DIR/name with `mode` through a temporary file renamed into place.
bool put_file(std::filesystem::path const& dir, std::string const& name, std::string const& text,
              std::filesystem::perms mode,
              std::vector<std::pair<std::filesystem::path, std::filesystem::path>>& moves) {
    auto const tmp = dir / ("." + name + ".tmp");
    std::ofstream o(tmp, std::ios::trunc | std::ios::binary);
    if (!o) {
        return false;
    }
    std::error_code ec;
    std::filesystem::permissions(tmp, mode, std::filesystem::perm_options::replace, ec);
    o << text;
    o.close();
    moves.emplace_back(tmp, dir / name);
    return !ec && o.good();
}

}  // namespace

int export_files(context& c, std::string const& cert) {
    auto const dir = c.value("out");
    if (dir.empty() && !c.json_out) {
        return usage_error(c, "certs export needs --out DIR (or -o json to print the record with its key)");
    }
    return request(
        c, "GET", "/apiv1/me/certificates/" + cert + "/export", std::nullopt, [&](json::value const& d) {
            if (dir.empty()) {
                c.out << json::serialize(d) << "\n";
                return int(exit_ok);
            }
            auto key = base64_decode(std::string(d.at("privkey").as_string()));
            if (!key) {
                c.err << "certctrl: the server's key is not base64\n";
                return int(exit_server);
            }
            std::error_code ec;
            std::filesystem::create_directories(dir, ec);
            using p = std::filesystem::perms;
            auto const pub = p::owner_read | p::owner_write | p::group_read | p::others_read;
            std::vector<std::pair<std::filesystem::path, std::filesystem::path>> moves;
            bool ok = put_file(dir, "privkey.pem", *key, p::owner_read | p::owner_write, moves) &&
                      put_file(dir, "cert.pem", std::string(d.at("leaf_pem").as_string()), pub, moves) &&
                      put_file(dir, "chain.pem", std::string(d.at("chain_pem").as_string()), pub, moves) &&
                      put_file(dir, "fullchain.pem", std::string(d.at("fullchain").as_string()), pub, moves);
            // Every file is complete before any is renamed into place: a deploy hook never sees a half.
            for (auto const& [from, to] : moves) {
                if (ok) {
                    std::filesystem::rename(from, to, ec);
                    ok = !ec;
                } else {
                    std::filesystem::remove(from, ec);
                }
            }
            if (!ok) {
                c.err << "certctrl: cannot write the files in " << dir << "\n";
                return int(exit_failed);
            }
            c.out << "wrote " << dir << "/{cert,chain,fullchain,privkey}.pem\n";
            return int(exit_ok);
        });
}

int login(context& c) {
    auto const url = c.value("url", c.var("CERTCTRL_URL"));
    if (url.empty()) {
        return usage_error(c, "login needs --url");
    }
    connection conn{url, c.value("api-key", c.var("CERTCTRL_API_KEY")), "", c.value("ca-file")};
    if (conn.api_key.empty()) {
        auto const email = c.value("email");
        if (email.empty()) {
            return usage_error(c, "login needs --api-key KEY or --email EMAIL (password on stdin)");
        }
        std::string password;
        bool const typed = &c.in == &std::cin && ::isatty(STDIN_FILENO) != 0;
        termios saved{};
        if (typed) {
            // Asked for on the terminal without echo; from a pipe it is read as it comes.
            c.err << "Password: " << std::flush;
            ::tcgetattr(STDIN_FILENO, &saved);
            termios quiet = saved;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        }
        std::getline(c.in, password);
        if (typed) {
            ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
            c.err << "\n";
        }
        auto a = call(conn, "POST", "/auth/general", json::object{{"email", email}, {"password", password}});
        if (!a) {
            c.err << "certctrl: cannot reach " << url << ": " << a.error().what << "\n";
            return exit_network;
        }
        if (a->status != 200 || a->set_cookie.empty()) {
            return api_error(c, *a);
        }
        conn.cookie = a->set_cookie.substr(0, a->set_cookie.find(';'));
    }
    // The credential is checked before it is stored (403, a key without certificate scopes, is still a key).
    auto probe = call(conn, "GET", "/apiv1/me/certificates?limit=1");
    if (!probe) {
        c.err << "certctrl: cannot reach " << url << ": " << probe.error().what << "\n";
        return exit_network;
    }
    if (probe->status == 401) {
        return api_error(c, *probe);
    }
    auto all = read_profiles(c.env.config_file);
    json::object profile{{"url", url}};
    if (!conn.api_key.empty()) {
        profile["api_key"] = conn.api_key;
    } else {
        profile["cookie"] = conn.cookie;
    }
    if (!conn.ca_file.empty()) {
        profile["ca_file"] = conn.ca_file;
    }
    if (!all["profiles"].is_object()) {
        all["profiles"] = json::object{};
    }
    all["profiles"].get_object()[c.profile] = std::move(profile);
    all["current"] = c.profile;
    std::string why;
    if (!write_profiles(c.env.config_file, all, why)) {
        c.err << "certctrl: " << why << "\n";
        return exit_failed;
    }
    c.out << "logged in to " << url << " as profile " << c.profile << "\n";
    return exit_ok;
}

}  // namespace certctrl::cli::detail
