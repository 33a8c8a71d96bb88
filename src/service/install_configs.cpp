#include "certctrl/service/install_configs.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/random.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace certctrl::service {

namespace {

std::string installs_hash_of(boost::json::array const& installs) {
    return hex_encode(crypto::sha256(boost::json::serialize(installs)));
}

app_error no_device() {
    return make_error(errc::not_found, "Device not found");
}

result<boost::json::array> installs_of(boost::json::object const& body) {
    if (auto const* v = body.if_contains("installs")) {
        return parse_installs(*v);
    }
    if (auto const* s = body.if_contains("installs_json"); s && s->is_string()) {
        boost::system::error_code ec;
        auto v = boost::json::parse(s->get_string(), ec);
        if (ec) {
            return make_error(errc::bad_request, "installs_json is not JSON", {{"field", "installs_json"}});
        }
        return parse_installs(v);
    }
    return make_error(errc::bad_request, "installs (an array of install items) is required",
                      {{"field", "installs"}});
}

result<std::optional<std::string>> script_of(boost::json::object const& body) {
    auto const* s = body.if_contains("after_update_script");
    if (!s || s->is_null()) {
        return std::optional<std::string>{};
    }
    if (!s->is_string() || s->get_string().size() > 256 * 1024) {
        return make_error(errc::bad_request, "after_update_script must be text (at most 256 KiB) or null",
                          {{"field", "after_update_script"}});
    }
    return std::optional<std::string>(std::string(s->get_string()));
}

std::string note_of(boost::json::object const& body) {
    auto const* n = body.if_contains("change_note");
    return n && n->is_string() ? std::string(n->get_string()).substr(0, 512) : std::string();
}

// The patches of an install-config-update body (an array, or {patches, after_update_script?}) and the script
// when the body sets one.
struct patch_request {
    boost::json::array patches;
    std::optional<std::optional<std::string>> script;
};

result<patch_request> patch_request_of(boost::json::value const& body) {
    patch_request out;
    if (body.is_array()) {
        out.patches = body.get_array();
        return out;
    }
    if (body.is_object() && body.get_object().if_contains("patches") &&
        body.get_object().at("patches").is_array()) {
        out.patches = body.get_object().at("patches").get_array();
        if (body.get_object().if_contains("after_update_script")) {
            CERTCTRL_TRY(s, script_of(body.get_object()));
            out.script = std::move(s);
        }
        return out;
    }
    return make_error(errc::bad_request, "body must be an array of patches or {patches:[...]}",
                      {{"field", "patches"}});
}

// Applies the patches to `installs`: items matched by (ob_type, ob_id[, id]) take the allowed fields.
// Errors: bad_request (malformed patch), not_found (a patch matches nothing).
result<boost::json::array> apply_patches(boost::json::array installs, boost::json::array const& patches) {
    static char const* const allowed[] = {"type", "enabled", "cmd", "cmd_argv", "timeout_ms", "env"};
    for (std::size_t i = 0; i < patches.size(); ++i) {
        auto const& pv = patches[i];
        std::string const where = "patches[" + std::to_string(i) + "]";
        if (!pv.is_object() || !pv.get_object().if_contains("ob_type") ||
            !pv.get_object().if_contains("ob_id")) {
            return make_error(errc::bad_request, where + " needs ob_type and ob_id", {{"field", where}});
        }
        auto const& p = pv.get_object();
        bool matched = false;
        for (auto& item : installs) {
            auto& o = item.as_object();
            if (o.if_contains("ob_type") == nullptr || o.at("ob_type") != p.at("ob_type") ||
                o.if_contains("ob_id") == nullptr || o.at("ob_id") != p.at("ob_id")) {
                continue;
            }
            if (p.if_contains("id") && (!o.if_contains("id") || o.at("id") != p.at("id"))) {
                continue;
            }
            for (char const* f : allowed) {
                if (auto const* v = p.if_contains(f)) {
                    o[f] = *v;
                }
            }
            matched = true;
        }
        if (!matched) {
            return make_error(errc::not_found, where + " matches no install item", {{"field", where}});
        }
    }
    return parse_installs(installs);
}

// The parts of a config that run commands on the agent, as text ("" when there are none): exec items whole,
// cmd/cmd_argv/env of any item, and the after-update script.
std::string commands_of(boost::json::array const& installs, std::optional<std::string> const& script) {
    boost::json::array parts;
    for (auto const& item : installs) {
        if (!item.is_object()) {
            continue;
        }
        auto const& o = item.get_object();
        if (auto const* t = o.if_contains("type"); t && *t == "exec") {
            parts.push_back(o);
            continue;
        }
        boost::json::object part;
        for (char const* f : {"cmd", "cmd_argv", "env"}) {
            if (auto const* v = o.if_contains(f);
                v && !v->is_null() && !(v->is_string() && v->get_string().empty()) &&
                !(v->is_array() && v->get_array().empty()) && !(v->is_object() && v->get_object().empty())) {
                part[f] = *v;
            }
        }
        if (!part.empty()) {
            part["ob_type"] = o.if_contains("ob_type") ? o.at("ob_type") : nullptr;
            part["ob_id"] = o.if_contains("ob_id") ? o.at("ob_id") : nullptr;
            parts.push_back(std::move(part));
        }
    }
    if (script && !script->empty()) {
        parts.push_back(boost::json::object{{"after_update_script", *script}});
    }
    return parts.empty() ? std::string() : boost::json::serialize(parts);
}

}  // namespace

bool runs_commands(boost::json::array const& installs, std::optional<std::string> const& script) {
    return !commands_of(installs, script).empty();
}

result<bool> install_config_service::check_commands(repo::work& w, std::int64_t device_id,
                                                    boost::json::array const& installs,
                                                    std::optional<std::string> const& script,
                                                    command_policy const& policy) const {
    std::string const after = commands_of(installs, script);
    if (after.empty()) {
        return true;  // removing commands needs no more than writing the config
    }
    auto cur = r_.install_configs->current(w, device_id, false);
    if (cur && commands_of(cur->installs, cur->after_update_script) == after) {
        return true;  // the commands stay as they are
    }
    if (!policy.allowed) {
        return make_error(
            errc::forbidden,
            "Install items that run commands (exec, cmd, cmd_argv, env, after_update_script) are "
            "turned off on this server (devices.allow_commands)",
            {{"field", "installs"}});
    }
    if (policy.may_exec && !policy.may_exec(device_id)) {
        std::string const scope = "devices:" + std::to_string(device_id) + "[exec]";
        return make_error(errc::forbidden,
                          "The API key lacks the scope " + scope +
                              " to set install items that run commands (exec, cmd, cmd_argv, env, "
                              "after_update_script)",
                          {{"scope", scope}});
    }
    return true;
}

repo::install_config install_config_service::write(repo::work& w, std::int64_t user_id,
                                                   std::int64_t device_id, boost::json::array const& installs,
                                                   std::optional<std::string> const& script,
                                                   std::string const& updated_by,
                                                   std::string const& change_note, std::int64_t now) const {
    auto cur = r_.install_configs->current(w, device_id, true);
    repo::install_config out;
    if (cur) {
        out = std::move(*cur);
        out.version += 1;
    } else {
        out.version = 1;
        out.device_id = device_id;
        out.user_id = user_id;
        out.created_at = now;
    }
    out.installs = installs;
    out.installs_hash = installs_hash_of(installs);
    out.after_update_script = script;
    out.updated_by = updated_by;
    out.updated_at = now;
    if (cur) {
        r_.install_configs->update(w, out);
    } else {
        out.id = r_.install_configs->insert(w, out);
    }
    r_.install_configs->add_history(w, out, change_note);
    // A bounded history per device (and so per user, with the device quota): the oldest versions go.
    if (history_kept_ > 0 && out.version > static_cast<int>(history_kept_)) {
        r_.install_configs->prune_history(w, device_id, out.version - static_cast<int>(history_kept_));
    }
    boost::json::object ref{{"config_id", out.id},
                            {"version", out.version},
                            {"installs_hash_b64", base64_encode(*hex_decode(out.installs_hash))}};
    signals_.emit(w, device_id, "install.updated", ref);
    return out;
}

void install_config_service::add_default_item(repo::work& w, std::int64_t user_id, std::int64_t device_id,
                                              std::int64_t cert_id, std::string const& domain_name,
                                              std::int64_t now) const {
    auto cur = r_.install_configs->current(w, device_id, true);
    boost::json::array installs = cur ? cur->installs : boost::json::array{};
    for (auto const& item : installs) {
        auto const* o = item.if_object();
        if (o && o->if_contains("ob_type") && o->at("ob_type") == "cert" && o->if_contains("ob_id") &&
            o->at("ob_id") == cert_id) {
            return;
        }
    }
    installs.push_back(domain::default_cert_install_item(cert_id, domain_name));
    write(w, user_id, device_id, installs, cur ? cur->after_update_script : std::nullopt, "server",
          "certificate " + std::to_string(cert_id) + " assigned", now);
}

task<repo::install_config> install_config_service::get(std::int64_t user_id, std::int64_t device_id) {
    return r_.db->read([this, user_id, device_id](repo::work& w) -> result<repo::install_config> {
        if (!r_.devices->get(w, user_id, device_id)) {
            return no_device();
        }
        if (auto c = r_.install_configs->current(w, device_id, false)) {
            return std::move(*c);
        }
        repo::install_config empty;
        empty.device_id = device_id;
        empty.user_id = user_id;
        empty.installs_hash = installs_hash_of(boost::json::array{});
        return empty;
    });
}

task<repo::page<repo::install_config>> install_config_service::history(std::int64_t user_id,
                                                                       std::int64_t device_id,
                                                                       repo::page_query q) {
    return r_.db->read(
        [this, user_id, device_id, q](repo::work& w) -> result<repo::page<repo::install_config>> {
            if (!r_.devices->get(w, user_id, device_id)) {
                return no_device();
            }
            return r_.install_configs->history(w, device_id, q);
        });
}

task<repo::install_config> install_config_service::store(std::int64_t user_id, std::int64_t device_id,
                                                         boost::json::array installs,
                                                         std::optional<std::string> script,
                                                         std::string updated_by, std::string change_note,
                                                         command_policy policy) {
    return r_.db->transact([this, user_id, device_id, installs = std::move(installs),
                            script = std::move(script), updated_by = std::move(updated_by),
                            change_note = std::move(change_note),
                            policy = std::move(policy)](repo::work& w) -> result<repo::install_config> {
        if (!r_.devices->lock_owned(w, user_id, device_id)) {
            return no_device();
        }
        CERTCTRL_TRY(allowed, check_commands(w, device_id, installs, script, policy));
        (void)allowed;
        return write(w, user_id, device_id, installs, script, updated_by, change_note, unix_now());
    });
}

task<repo::install_config> install_config_service::put(std::int64_t user_id, std::int64_t device_id,
                                                       boost::json::object body, std::string updated_by,
                                                       command_policy policy) {
    auto installs = installs_of(body);
    if (!installs) {
        co_return installs.error();
    }
    auto script = script_of(body);
    if (!script) {
        co_return script.error();
    }
    auto op = store(user_id, device_id, std::move(*installs), std::move(*script), std::move(updated_by),
                    note_of(body), std::move(policy));
    co_return co_await std::move(op);
}

task<repo::install_config> install_config_service::restore(std::int64_t user_id, std::int64_t device_id,
                                                           int version, std::string change_note,
                                                           std::string updated_by, command_policy policy) {
    if (version < 1) {
        co_return make_error(errc::bad_request, "version must be a positive integer", {{"field", "version"}});
    }
    if (change_note.empty()) {
        change_note = "restored version " + std::to_string(version);
    }
    auto op = r_.db->transact([this, user_id, device_id, version, &change_note, &updated_by,
                               &policy](repo::work& w) -> result<repo::install_config> {
        if (!r_.devices->lock_owned(w, user_id, device_id)) {
            return no_device();
        }
        auto old = r_.install_configs->version(w, user_id, device_id, version);
        if (!old) {
            return make_error(errc::not_found, "No such install config version", {{"field", "version"}});
        }
        CERTCTRL_TRY(allowed, check_commands(w, device_id, old->installs, old->after_update_script, policy));
        (void)allowed;
        return write(w, user_id, device_id, old->installs, old->after_update_script, updated_by, change_note,
                     unix_now());
    });
    co_return co_await std::move(op);
}

task<repo::install_config> install_config_service::patch(std::int64_t user_id, std::string device_public_id,
                                                         boost::json::value body, std::string updated_by,
                                                         command_policy policy) {
    auto request = patch_request_of(body);
    if (!request) {
        co_return request.error();
    }
    auto op = r_.db->transact([this, user_id, &device_public_id, &request, &updated_by,
                               &policy](repo::work& w) -> result<repo::install_config> {
        auto dev = r_.devices->by_public_id(w, user_id, device_public_id);
        if (!dev || !r_.devices->lock_owned(w, user_id, dev->id)) {
            return no_device();
        }
        auto cur = r_.install_configs->current(w, dev->id, true);
        CERTCTRL_TRY(installs, apply_patches(cur ? cur->installs : boost::json::array{}, request->patches));
        std::optional<std::string> script = cur ? cur->after_update_script : std::nullopt;
        if (request->script) {
            script = *request->script;
        }
        CERTCTRL_TRY(allowed, check_commands(w, dev->id, installs, script, policy));
        (void)allowed;
        return write(w, user_id, dev->id, installs, script, updated_by, "install-config-update", unix_now());
    });
    co_return co_await std::move(op);
}

// ------------------------------------------------------------------------------------- install items

result<boost::json::array> parse_installs(boost::json::value const& v) {
    if (!v.is_array()) {
        return make_error(errc::bad_request, "installs must be an array", {{"field", "installs"}});
    }
    auto const& a = v.get_array();
    if (a.size() > 200) {
        return make_error(errc::bad_request, "at most 200 install items", {{"field", "installs"}});
    }
    boost::json::array out;
    for (std::size_t i = 0; i < a.size(); ++i) {
        std::string const where = "installs[" + std::to_string(i) + "]";
        auto fail = [&](std::string what) {
            return make_error(errc::bad_request, where + ": " + what, {{"field", where}});
        };
        if (!a[i].is_object()) {
            return fail("must be an object");
        }
        auto o = a[i].get_object();
        auto const* type = o.if_contains("type");
        if (!type || !type->is_string() ||
            (type->get_string() != "copy" && type->get_string() != "exec" &&
             type->get_string() != "import_ca")) {
            return fail("type must be copy, exec or import_ca");
        }
        if (auto const* ob = o.if_contains("ob_type");
            ob && (!ob->is_string() || (ob->get_string() != "cert" && ob->get_string() != "ca"))) {
            return fail("ob_type must be cert or ca");
        }
        if (auto const* id = o.if_contains("ob_id"); id && !(id->is_int64() && id->get_int64() > 0)) {
            return fail("ob_id must be a positive integer");
        }
        auto strings = [](boost::json::value const* x) {
            if (!x) {
                return true;
            }
            if (!x->is_array()) {
                return false;
            }
            return std::all_of(x->get_array().begin(), x->get_array().end(),
                               [](auto const& s) { return s.is_string(); });
        };
        auto const* from = o.if_contains("from");
        auto const* to = o.if_contains("to");
        if (!strings(from) || !strings(to)) {
            return fail("from and to must be arrays of strings");
        }
        if (type->get_string() == "copy") {
            if (!from || !to || from->get_array().size() != to->get_array().size() ||
                from->get_array().empty()) {
                return fail("a copy item needs from and to of the same, non-zero length");
            }
            for (auto const& p : to->get_array()) {
                auto const& s = p.get_string();
                if (s.empty() || (s[0] != '/' && !(s.size() > 2 && s[1] == ':'))) {
                    return fail("to holds absolute paths");
                }
            }
        }
        if (auto const* cmd = o.if_contains("cmd"); cmd && !cmd->is_string() && !strings(cmd)) {
            return fail("cmd must be a string or an array of strings");
        }
        if (auto const* t = o.if_contains("timeout_ms"); t && !(t->is_int64() && t->get_int64() >= 0)) {
            return fail("timeout_ms must be a non-negative integer");
        }
        if (auto const* e = o.if_contains("env"); e && !e->is_object()) {
            return fail("env must be an object");
        }
        if (!o.if_contains("enabled")) {
            o["enabled"] = true;
        }
        out.push_back(std::move(o));
    }
    return out;
}

}  // namespace certctrl::service
