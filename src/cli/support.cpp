// The CLI's plumbing: the command line, the profiles file, tables.
#include "support.hpp"

#include "certctrl/core/ids.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace certctrl::cli::detail {

namespace json = boost::json;

namespace {

std::set<std::string> const flag_names = {"help", "wait", "password-stdin", "version"};
std::set<std::string> const value_names = {"url",    "api-key", "profile", "ca-file", "output", "limit",
                                           "cursor", "out",     "scope",   "data",    "email",  "status"};

std::string when(std::int64_t t) {
    return t <= 0 ? "-" : rfc3339_utc(t).substr(0, 16);
}

}  // namespace

// ----------------------------------------------------------------------------------------- command line

result<parsed> parse_args(std::vector<std::string> const& args) {
    parsed p;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string a = args[i];
        if (a == "-h") {
            a = "--help";
        } else if (a == "-o") {
            a = "--output";
        }
        if (a.rfind("--", 0) == 0) {
            std::string name = a.substr(2);
            std::optional<std::string> value;
            if (auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
            if (flag_names.contains(name) && !value) {
                p.flags.insert(name);
                continue;
            }
            if (!value_names.contains(name)) {
                return make_error(errc::bad_request, "unknown option --" + name);
            }
            if (!value) {
                if (i + 1 >= args.size()) {
                    return make_error(errc::bad_request, "--" + name + " needs a value");
                }
                value = args[++i];
            }
            p.values[name].push_back(*value);
        } else if (p.words.size() >= 2 && a.find('=') != std::string::npos && a.front() != '=') {
            auto eq = a.find('=');
            p.fields.emplace_back(a.substr(0, eq), a.substr(eq + 1));
        } else {
            p.words.push_back(a);
        }
    }
    return p;
}

// ------------------------------------------------------------------------------------------- profiles

json::object read_profiles(std::filesystem::path const& file) {
    std::ifstream in(file);
    if (!in) {
        return {};
    }
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code ec;
    auto v = json::parse(ss.str(), ec);
    return !ec && v.is_object() ? v.get_object() : json::object{};
}

// Written whole to a temporary file of mode 0600 and renamed over the old one.
bool write_profiles(std::filesystem::path const& file, json::object const& all, std::string& why) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    std::filesystem::permissions(file.parent_path(), std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::replace, ec);
    auto const tmp = file.string() + ".tmp";
    {
        std::ofstream o(tmp, std::ios::trunc);
        if (!o) {
            why = "cannot write " + tmp;
            return false;
        }
        std::filesystem::permissions(tmp,
                                     std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                     std::filesystem::perm_options::replace, ec);
        o << json::serialize(all) << "\n";
    }
    std::filesystem::rename(tmp, file, ec);
    if (ec) {
        why = "cannot replace " + file.string() + ": " + ec.message();
        return false;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------- output

std::string cell(std::string const& key, json::value const* v) {
    if (v == nullptr || v->is_null()) {
        return "-";
    }
    if (v->is_string()) {
        return std::string(v->get_string());
    }
    if (v->is_bool()) {
        return v->get_bool() ? "yes" : "no";
    }
    if (v->is_int64()) {
        bool const time = key.ends_with("_at") || key == "not_after" || key == "not_before";
        return time ? when(v->get_int64()) : std::to_string(v->get_int64());
    }
    if (v->is_array()) {
        std::string out;
        for (auto const& e : v->get_array()) {
            out += (out.empty() ? "" : ",") + cell("", &e);
        }
        return out.empty() ? "-" : out;
    }
    return json::serialize(*v);
}

void print_table(std::ostream& out, json::array const& rows, std::vector<std::string> const& columns) {
    std::vector<std::vector<std::string>> cells;
    std::vector<std::size_t> width;
    for (auto const& c : columns) {
        std::string h = c;
        std::transform(h.begin(), h.end(), h.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
        width.push_back(h.size());
        if (cells.empty()) {
            cells.emplace_back();
        }
        cells[0].push_back(h);
    }
    for (auto const& r : rows) {
        std::vector<std::string> line;
        for (std::size_t i = 0; i < columns.size(); ++i) {
            auto const* v = r.is_object() ? r.get_object().if_contains(columns[i]) : nullptr;
            line.push_back(cell(columns[i], v));
            width[i] = std::max(width[i], line.back().size());
        }
        cells.push_back(std::move(line));
    }
    for (auto const& line : cells) {
        std::string text;
        for (std::size_t i = 0; i < line.size(); ++i) {
            text += line[i];
            if (i + 1 < line.size()) {
                text += std::string(width[i] - line[i].size() + 2, ' ');
            }
        }
        out << text << "\n";
    }
}

void print_record(std::ostream& out, json::object const& o) {
    std::size_t width = 0;
    for (auto const& kv : o) {
        width = std::max(width, kv.key().size());
    }
    for (auto const& kv : o) {
        std::string value = cell(kv.key(), &kv.value());
        if (value.size() > 120 || value.find('\n') != std::string::npos) {
            value = "(" + std::to_string(value.size()) + " bytes; -o json shows it)";
        }
        out << std::string(kv.key()) << ":" << std::string(width - kv.key().size() + 1, ' ') << value << "\n";
    }
}

}  // namespace certctrl::cli::detail
