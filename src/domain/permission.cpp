#include "certctrl/domain/permission.hpp"

#include "certctrl/core/ids.hpp"

#include <algorithm>

namespace certctrl::domain {

std::vector<std::string_view> const& known_obtypes() {
    static std::vector<std::string_view> const v = {
        "certificates",           "devices", "acme_accounts", "cas",
        "dns_providers",          "apikeys", "audit",         "ForDeviceAuthenticate",
        "ForInstallConfigUpdate", "domains", "webhooks"};
    return v;
}

std::vector<std::string_view> const& known_actions() {
    static std::vector<std::string_view> const v = {"read",   "write",  "issue",        "update",
                                                    "delete", "assign", "authenticate", "validate",
                                                    "revoke", "export", "exec"};
    return v;
}

result<bool> check_grantable(std::vector<permission> const& perms) {
    static std::vector<std::pair<std::string_view, std::vector<std::string_view>>> const grantable = {
        {"certificates", {"read", "write", "issue", "assign", "export"}},
        {"devices", {"read", "write", "exec"}},
        {"acme_accounts", {"read", "write", "issue"}},
        {"cas", {"read", "write", "issue"}},
        {"dns_providers", {"read", "write"}},
        {"apikeys", {"read", "write"}},
        {"audit", {"read"}},
        {"domains", {"read", "write"}},
        {"webhooks", {"read", "write"}},
        {"ForDeviceAuthenticate", {"authenticate", "validate", "revoke"}},
        {"ForInstallConfigUpdate", {"update", "exec"}},
    };
    for (auto const& p : perms) {
        auto it = std::find_if(grantable.begin(), grantable.end(),
                               [&](auto const& g) { return g.first == p.obtype; });
        if (it == grantable.end()) {
            return make_error(errc::bad_request, "obtype '" + p.obtype + "' cannot be granted",
                              {{"field", "permissions"}});
        }
        for (auto const& a : p.actions) {
            if (std::find(it->second.begin(), it->second.end(), a) == it->second.end()) {
                std::string allowed;
                for (auto const& x : it->second) {
                    allowed += (allowed.empty() ? "" : ", ") + std::string(x);
                }
                return make_error(
                    errc::bad_request,
                    "action '" + a + "' means nothing for " + p.obtype + " (it takes " + allowed + ")",
                    {{"field", "permissions"}, {"scope", p.to_string()}});
            }
        }
    }
    return true;
}

std::string permission::to_string() const {
    std::string s = obtype + ":" + obid + "[";
    for (std::size_t i = 0; i < actions.size(); ++i) {
        s += (i ? "," : "") + actions[i];
    }
    return s + "]";
}

namespace {

bool contains(std::vector<std::string_view> const& v, std::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

result<permission> validate(permission p, std::string const& where) {
    if (!contains(known_obtypes(), p.obtype)) {
        return make_error(errc::bad_request, where + ": unknown obtype '" + p.obtype + "'");
    }
    if (p.obid != "*" && !parse_positive_id(p.obid)) {
        return make_error(errc::bad_request, where + ": obid must be \"*\" or a positive integer id");
    }
    if (p.actions.empty()) {
        return make_error(errc::bad_request, where + ": actions must not be empty");
    }
    std::vector<std::string> unique;
    for (auto& a : p.actions) {
        if (!contains(known_actions(), a)) {
            return make_error(errc::bad_request, where + ": unknown action '" + a + "'");
        }
        if (std::find(unique.begin(), unique.end(), a) == unique.end()) {
            unique.push_back(a);
        }
    }
    p.actions = std::move(unique);
    return p;
}

// "read,issue" -> {"read", "issue"} (validate() checks each).
std::vector<std::string> split_actions(std::string_view rest) {
    std::vector<std::string> out;
    while (!rest.empty()) {
        auto comma = rest.find(',');
        out.emplace_back(rest.substr(0, comma));
        if (comma == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(comma + 1);
    }
    return out;
}

// Older names of obtypes (the documents' legacy `certs.read` style): stored under the current name.
std::string canonical_obtype(std::string const& t) {
    static std::vector<std::pair<std::string_view, std::string_view>> const aliases = {
        {"certs", "certificates"},
        {"cert", "certificates"},
        {"certificate", "certificates"},
        {"device", "devices"},
        {"acme", "acme_accounts"},
        {"acme-accounts", "acme_accounts"},
        {"acme_account", "acme_accounts"},
        {"ca", "cas"},
        {"dns", "dns_providers"},
        {"dns-providers", "dns_providers"},
        {"keys", "apikeys"},
        {"api_keys", "apikeys"},
        {"domain", "domains"},
        {"webhook", "webhooks"}};
    for (auto const& [from, to] : aliases) {
        if (t == from) {
            return std::string(to);
        }
    }
    return t;
}

// The legacy scope style `certs.read` (also `certs.read,write`): every object of that type, those actions.
std::optional<permission> legacy_scope(std::string_view s) {
    auto const dot = s.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 >= s.size() ||
        s.find(':') != std::string_view::npos || s.find('[') != std::string_view::npos) {
        return std::nullopt;
    }
    permission p;
    p.obtype = canonical_obtype(std::string(s.substr(0, dot)));
    p.obid = "*";
    p.actions = split_actions(s.substr(dot + 1));
    return p;
}

}  // namespace

result<std::vector<permission>> parse_permissions(boost::json::value const& v) {
    if (!v.is_array()) {
        return make_error(errc::bad_request, "permissions must be an array");
    }
    auto const& arr = v.get_array();
    if (arr.size() > 100) {
        return make_error(errc::bad_request, "permissions: at most 100 entries");
    }
    std::vector<permission> out;
    for (std::size_t i = 0; i < arr.size(); ++i) {
        std::string const where = "permissions[" + std::to_string(i) + "]";
        if (arr[i].is_string()) {
            // A scope string: `obtype:obid[actions]`, or the legacy `certs.read`.
            auto p = parse_scope(arr[i].get_string());
            if (!p) {
                return p.error();
            }
            out.push_back(std::move(*p));
            continue;
        }
        if (!arr[i].is_object()) {
            return make_error(errc::bad_request,
                              where + " must be an object {obtype, obid, actions} or a scope string");
        }
        auto const& o = arr[i].get_object();
        permission p;
        auto const* obtype = o.if_contains("obtype");
        if (obtype == nullptr || !obtype->is_string()) {
            return make_error(errc::bad_request, where + ".obtype must be a string");
        }
        p.obtype = canonical_obtype(std::string(obtype->get_string()));
        auto const* obid = o.if_contains("obid");
        if (obid == nullptr) {
            return make_error(errc::bad_request, where + ".obid is required (\"*\" or an id)");
        }
        if (obid->is_string()) {
            p.obid = std::string(obid->get_string());
        } else if (obid->is_int64() && obid->get_int64() > 0) {
            p.obid = std::to_string(obid->get_int64());
        } else {
            return make_error(errc::bad_request, where + ".obid must be \"*\" or a positive integer id");
        }
        auto const* actions = o.if_contains("actions");
        if (actions == nullptr || !actions->is_array()) {
            return make_error(errc::bad_request, where + ".actions must be an array of strings");
        }
        for (auto const& a : actions->get_array()) {
            if (!a.is_string()) {
                return make_error(errc::bad_request, where + ".actions must be an array of strings");
            }
            p.actions.emplace_back(a.get_string());
        }
        for (auto const& kv : o) {
            if (kv.key() != "obtype" && kv.key() != "obid" && kv.key() != "actions") {
                return make_error(errc::bad_request,
                                  where + ": unknown field '" + std::string(kv.key()) + "'");
            }
        }
        auto valid = validate(std::move(p), where);
        if (!valid) {
            return valid.error();
        }
        out.push_back(std::move(*valid));
    }
    return out;
}

result<permission> parse_scope(std::string_view s) {
    if (auto legacy = legacy_scope(s)) {
        return validate(std::move(*legacy), "scope '" + std::string(s) + "'");
    }
    auto const colon = s.find(':');
    auto const open = s.find('[');
    if (colon == std::string_view::npos || open == std::string_view::npos || open < colon ||
        s.back() != ']') {
        return make_error(errc::bad_request,
                          "scope '" + std::string(s) + "' is not of the form obtype:obid[action,...]");
    }
    permission p;
    p.obtype = canonical_obtype(std::string(s.substr(0, colon)));
    p.obid = std::string(s.substr(colon + 1, open - colon - 1));
    p.actions = split_actions(s.substr(open + 1, s.size() - open - 2));
    return validate(std::move(p), "scope '" + std::string(s) + "'");
}

boost::json::array to_json(std::vector<permission> const& perms) {
    boost::json::array arr;
    for (auto const& p : perms) {
        boost::json::array actions;
        for (auto const& a : p.actions) {
            actions.emplace_back(a);
        }
        arr.push_back(
            boost::json::object{{"obtype", p.obtype}, {"obid", p.obid}, {"actions", std::move(actions)}});
    }
    return arr;
}

bool allows(std::vector<permission> const& perms, std::string_view obtype, std::optional<std::int64_t> id,
            std::string_view action) {
    std::string const id_text = id ? std::to_string(*id) : std::string();
    return std::any_of(perms.begin(), perms.end(), [&](permission const& p) {
        return p.obtype == obtype && (p.obid == "*" || (id && p.obid == id_text)) &&
               std::find(p.actions.begin(), p.actions.end(), action) != p.actions.end();
    });
}

bool covers(std::vector<permission> const& held, std::vector<permission> const& wanted) {
    for (auto const& w : wanted) {
        std::optional<std::int64_t> id;
        if (w.obid != "*") {
            id = parse_positive_id(w.obid);
        }
        for (auto const& a : w.actions) {
            // A "*" wish needs a "*" grant; an id wish is covered by that id or "*".
            if (!allows(held, w.obtype, id, a)) {
                return false;
            }
        }
    }
    return true;
}

}  // namespace certctrl::domain
