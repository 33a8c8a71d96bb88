// The device side after onboarding (agent contract 3.5, 3.6, 5, 6): the /apiv1/devices/self/... routes the
// agent calls with its access token, and the user-side install configs, device CAs, device bundles and device
// status.
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/permission.hpp"
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/response.hpp"

#include "certctrl/service/zip.hpp"
#include "common.hpp"
#include "handlers.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>

#include <algorithm>

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

using detail::cert_param;
using detail::device_json;
using detail::int_of;
using detail::str_or;
using detail::subject_user;

// The device a request is about: :device_id on the user-side routes, the token's device on /devices/self.
std::int64_t device_of(http::request_context const& ctx) {
    return ctx.params.id("device_id").value_or(ctx.principal ? ctx.principal->device_id : 0);
}

boost::json::object install_config_json(repo::install_config const& c) {
    boost::json::object o{{"id", c.id},
                          {"user_device_id", c.device_id},
                          {"version", c.version},
                          {"installs", c.installs},
                          {"installs_hash", c.installs_hash},
                          {"updated_by", c.updated_by},
                          {"created_at", c.created_at},
                          {"updated_at", c.updated_at}};
    o["after_update_script"] =
        c.after_update_script ? boost::json::value(*c.after_update_script) : boost::json::value(nullptr);
    if (!c.change_note.empty()) {
        o["change_note"] = c.change_note;
    }
    return o;
}

// The certificate detail a device fetches: the record with its PEM chain (leaf first) in the names the agent
// looks for (agent contract 5.3).
void device_cert_json(http::json_writer& w, repo::device_cert_material const& m) {
    w.begin_object();
    detail::write_cert_members(w, m.cert, true);
    auto blocks = crypto::split_certificates(m.cert.cert_pem);
    if (!blocks.empty()) {
        std::string chain;
        for (std::size_t i = 1; i < blocks.size(); ++i) {
            chain += blocks[i];
        }
        w.member("certificate_pem", blocks.front()).member("chain_pem", chain);
        w.member("fullchain_pem", m.cert.cert_pem);
        try {
            w.member("certificate_der_b64", base64_encode(crypto::certificate_der(blocks.front())));
        } catch (std::exception const&) {  // a stored PEM that does not parse: leave the DER out
        }
    }
    w.member("issued", m.issued).member("wrap_ready", m.enc_data_key && m.enc_data_key->size() == 80);
    w.end_object();
}

boost::json::object ca_bundle_json(domain::ca const& c) {
    auto parts = domain::split_algorithm(c.key_algorithm);
    boost::json::object o{{"id", c.id},
                          {"name", c.name},
                          {"serial_number", c.serial_number},
                          {"status", c.status},
                          {"algorithm", parts.family},
                          {"key_size", parts.key_size},
                          {"valid_days", c.valid_days},
                          {"not_before", c.not_before},
                          {"not_after", c.not_after},
                          {"ca_certificate_pem", c.cert_pem}};
    try {
        o["ca_certificate_der_b64"] = base64_encode(crypto::certificate_der(c.cert_pem));
    } catch (std::exception const&) {
    }
    return o;
}

// ?pack=download adds an attachment name; any other value of pack is refused.
result<bool> wants_download(http::request_context const& ctx) {
    auto pack = http::query_value(ctx.query, "pack");
    if (!pack) {
        return false;
    }
    if (*pack != "download") {
        return make_error(errc::bad_request, "pack must be 'download'", {{"field", "pack"}});
    }
    return true;
}

// The device-ready zip (S1): certificate.pem (leaf), chain.pem (issuers, when there are any), fullchain.pem,
// the key as the policy gives it to this device (private.key in plaintext, or sealed_key.json: the sealed
// deploy materials only the device's X25519 key opens) and meta.json.
result<std::string> bundle_zip(boost::json::object const& materials, domain::certificate const& cert,
                               std::int64_t device_id) {
    auto blocks = crypto::split_certificates(cert.cert_pem);
    if (blocks.empty()) {
        return make_error(errc::internal, "The stored certificate holds no PEM block");
    }
    std::string chain;
    for (std::size_t i = 1; i < blocks.size(); ++i) {
        chain += blocks[i];
    }
    std::vector<std::pair<std::string, std::string>> entries;
    entries.emplace_back("certificate.pem", blocks.front());
    if (!chain.empty()) {
        entries.emplace_back("chain.pem", chain);
    }
    entries.emplace_back("fullchain.pem", blocks.front() + chain);
    bool const plain = materials.if_contains("enc_scheme") && materials.at("enc_scheme") == "plaintext";
    std::string key_file;
    if (plain) {
        auto der = base64_decode(std::string(materials.at("private_key_der_b64").as_string()));
        if (!der) {
            return make_error(errc::internal, "The plaintext key is not base64");
        }
        key_file = "private.key";
        entries.emplace_back(key_file, crypto::private_key_pem_from_der(*der));
    } else {
        key_file = "sealed_key.json";
        entries.emplace_back(key_file, boost::json::serialize(materials));
    }
    boost::json::object meta{{"cert_id", cert.id},
                             {"device_id", device_id},
                             {"domain_name", cert.domain_name},
                             {"serial_number", cert.serial_number},
                             {"not_after", cert.not_after},
                             {"key_dist_policy", cert.key_dist_policy},
                             {"key_file", key_file},
                             {"enc_scheme", plain ? "plaintext" : "aes256gcm"}};
    entries.emplace_back("meta.json", boost::json::serialize(meta));
    try {
        return service::make_zip(entries);
    } catch (std::exception const& e) {
        return make_error(errc::internal, std::string("Cannot build the zip: ") + e.what());
    }
}

http::response with_download(http::response res, bool download, std::string const& name) {
    if (download) {
        res.set(bh::field::content_disposition, "attachment; filename=\"" + name + "\"");
    }
    res.set(bh::field::cache_control, "no-store");
    return res;
}

// Who may set install items that run commands: devices.allow_commands, and for an API key
// devices:<id>[exec] (on install-config-update also ForInstallConfigUpdate:*[exec]).
service::install_config_service::command_policy command_policy_of(http::request_context const& ctx,
                                                                  services const& s,
                                                                  bool update_route = false) {
    service::install_config_service::command_policy p;
    p.allowed = s.cfg.devices.allow_commands;
    if (ctx.principal && ctx.principal->is_api_key()) {
        p.may_exec = [perms = ctx.principal->permissions, update_route](std::int64_t device_id) {
            return domain::allows(perms, "devices", device_id, "exec") ||
                   (update_route && domain::allows(perms, "ForInstallConfigUpdate", std::nullopt, "exec"));
        };
    }
    return p;
}

// The answer to an install-config change: audited (install_config.update) when made; a missing exec scope
// is an audited denial.
http::awaitable<http::response> install_config_answer(http::request_context& ctx, services& s,
                                                      result<repo::install_config> c, bool with_message) {
    if (!c) {
        if (c.error().code == errc::forbidden && c.error().params.contains("scope")) {
            auto aw_deny = deny(ctx, s, subject_user(ctx), c.error().what);
            co_return co_await std::move(aw_deny);
        }
        co_return http::error_response(ctx, c.error());
    }
    boost::json::object detail{
        {"device_id", c->device_id},
        {"version", c->version},
        {"updated_by", c->updated_by},
        {"installs_hash", c->installs_hash},
        {"runs_commands", service::runs_commands(c->installs, c->after_update_script)}};
    auto aw_audit = s.audit.record(subject_user(ctx), "install_config.update", "ok", detail::client_of(ctx),
                                   std::move(detail));
    co_await std::move(aw_audit);
    boost::json::object data = install_config_json(*c);
    if (with_message) {
        data["message"] = "Install config updated to version " + std::to_string(c->version);
    }
    co_return http::json_data(ctx.req, std::move(data));
}

}  // namespace

http::awaitable<http::response> device_updates(http::request_context& ctx, services& s) {
    std::string cursor = http::query_value(ctx.query, "cursor").value_or("");
    if (auto inm = ctx.req.find(bh::field::if_none_match); inm != ctx.req.end()) {
        std::string v(inm->value());
        if (v.rfind("W/", 0) == 0) {
            v = v.substr(2);
        }
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
            v = v.substr(1, v.size() - 2);
        }
        if (!v.empty() && v != "*") {
            cursor = v;  // the header wins over the query
        }
    }
    std::int64_t limit = 20;
    std::int64_t wait = 0;
    for (auto [name, out, lo, hi] :
         {std::tuple<char const*, std::int64_t*, std::int64_t, std::int64_t>{"limit", &limit, 1, 100},
          {"wait", &wait, 0, 30}}) {
        if (auto q = http::query_value(ctx.query, name)) {
            boost::json::value v(*q);
            auto n = int_of(&v);
            if (!n || *n < lo || *n > hi)
                co_return http::json_error(
                    ctx.req, make_error(errc::bad_request,
                                        std::string(name) + " must be " + std::to_string(lo) + ".." +
                                            std::to_string(hi),
                                        {{"field", name}}));
            *out = *n;
        }
    }
    auto op = s.devices.updates(device_of(ctx), cursor, static_cast<std::size_t>(limit),
                                static_cast<unsigned>(wait), subject_user(ctx));
    auto b = co_await std::move(op);
    if (!b)
        co_return http::error_response(ctx, b.error());
    http::response res;
    if (b->signals.empty()) {
        res = http::no_content(ctx.req);
    } else {
        boost::json::array signals;
        for (auto const& sig : b->signals) {
            signals.push_back(
                boost::json::object{{"type", sig.type}, {"ts_ms", sig.ts_ms}, {"ref", sig.ref}});
        }
        res = http::json_data(ctx.req,
                              boost::json::object{{"cursor", b->cursor}, {"signals", std::move(signals)}});
    }
    res.set(bh::field::etag, "\"" + b->cursor + "\"");
    res.set(bh::field::cache_control, "no-store");
    if (s.cfg.devices.poll_interval_hint_seconds > 0) {
        res.set("X-Poll-Interval", std::to_string(s.cfg.devices.poll_interval_hint_seconds));
    }
    co_return res;
}

http::awaitable<http::response> get_install_config(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(ctx, s.install_configs.get(subject_user(ctx), device_of(ctx)),
                                  install_config_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_own_certificate(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(
        ctx, s.devices.certificate(subject_user(ctx), device_of(ctx), cert_param(ctx)), device_cert_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_deploy_materials(http::request_context& ctx, services& s) {
    auto op = s.devices.deploy_materials(subject_user(ctx), device_of(ctx), cert_param(ctx));
    auto m = co_await std::move(op);
    if (!m)
        co_return http::error_response(ctx, m.error());
    auto aw_audit = detail::audit_key_release(ctx, s, cert_param(ctx), "deploy_materials");
    co_await std::move(aw_audit);
    auto res = http::json_data(ctx.req, std::move(*m));
    res.set(bh::field::cache_control, "no-store");
    co_return res;
}

http::awaitable<http::response> get_ca_bundle(http::request_context& ctx, services& s) {
    auto download = wants_download(ctx);
    if (!download)
        co_return http::json_error(ctx.req, download.error());
    std::int64_t const ca_id = ctx.params.id("ca_id").value_or(0);
    auto op = s.devices.ca(subject_user(ctx), device_of(ctx), ca_id);
    auto c = co_await std::move(op);
    if (!c)
        co_return http::error_response(ctx, c.error());
    co_return with_download(http::json_data(ctx.req, ca_bundle_json(*c)), *download,
                            "ca_" + std::to_string(ca_id) + "_bundle.json");
}

http::awaitable<http::response> device_notify(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto op = s.devices.notify(device_of(ctx), std::move(*body), ctx.client_ip);
    auto ok = co_await std::move(op);
    if (!ok)
        co_return http::error_response(ctx, ok.error());
    co_return http::no_content(ctx.req);
}

http::awaitable<http::response> put_install_config(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto op =
        s.install_configs.put(subject_user(ctx), device_of(ctx), std::move(*body),
                              "user:" + std::to_string(ctx.principal->who.id), command_policy_of(ctx, s));
    auto c = co_await std::move(op);
    auto aw = install_config_answer(ctx, s, std::move(c), false);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> list_install_config_history(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw = detail::respond_page(
        ctx, *page, s.install_configs.history(subject_user(ctx), device_of(ctx), *page), install_config_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> restore_install_config(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto version = int_of(body->if_contains("version"));
    if (!version || *version < 1 || *version > INT32_MAX)
        co_return http::json_error(ctx.req,
                                   make_error(errc::bad_request, "version (a positive integer) is required",
                                              {{"field", "version"}}));
    auto op = s.install_configs.restore(
        subject_user(ctx), device_of(ctx), static_cast<int>(*version), str_or(*body, "change_note"),
        "user:" + std::to_string(ctx.principal->who.id), command_policy_of(ctx, s));
    auto c = co_await std::move(op);
    auto aw = install_config_answer(ctx, s, std::move(c), false);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> list_device_cas(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw = detail::respond_page(ctx, *page, s.devices.device_cas(subject_user(ctx), device_of(ctx), *page),
                                   ca_bundle_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> assign_device_ca(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto ca_id = int_of(body->if_contains("ca_id"));
    if (!ca_id || *ca_id <= 0)
        co_return http::json_error(
            ctx.req,
            make_error(errc::bad_request, "ca_id (a positive integer) is required", {{"field", "ca_id"}}));
    auto aw = detail::respond_done(ctx, s.devices.assign_ca(subject_user(ctx), device_of(ctx), *ca_id));
    co_return co_await std::move(aw);
}

http::awaitable<http::response> unassign_device_ca(http::request_context& ctx, services& s) {
    auto aw = detail::respond_done(
        ctx, s.devices.unassign_ca(subject_user(ctx), device_of(ctx), ctx.params.id("ca_id").value_or(0)));
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_device_bundle(http::request_context& ctx, services& s) {
    auto download = wants_download(ctx);
    if (!download)
        co_return http::json_error(ctx.req, download.error());
    std::int64_t const device_id = device_of(ctx);
    std::int64_t const cert_id = cert_param(ctx);
    auto op = s.devices.deploy_materials(subject_user(ctx), device_id, cert_id);
    auto m = co_await std::move(op);
    if (!m)
        co_return http::error_response(ctx, m.error());
    bool const plain = m->if_contains("enc_scheme") && m->at("enc_scheme") == "plaintext";
    if (plain) {
        // A plaintext key is an export: the key needs the scope /export needs.
        if (auto missing = detail::missing_export_scope(ctx, s, cert_id)) {
            auto aw_deny = deny(ctx, s, subject_user(ctx),
                                "The API key lacks the scope " + *missing + " (a plaintext key export)");
            co_return co_await std::move(aw_deny);
        }
    }
    auto cert_op = s.devices.certificate(subject_user(ctx), device_id, cert_id);
    auto cert = co_await std::move(cert_op);
    if (!cert)
        co_return http::error_response(ctx, cert.error());
    if (detail::wants_zip(ctx)) {
        auto zip = bundle_zip(*m, cert->cert, device_id);
        if (!zip)
            co_return http::error_response(ctx, zip.error());
        if (plain) {
            auto aw_audit = detail::audit_key_release(ctx, s, cert_id, "plaintext_bundle");
            co_await std::move(aw_audit);
        }
        http::response res{bh::status::ok, ctx.req.version()};
        res.set(bh::field::content_type, "application/zip");
        res.set(bh::field::content_disposition, "attachment; filename=\"cert_" + std::to_string(cert_id) +
                                                    "_device_" + std::to_string(device_id) + ".zip\"");
        res.set(bh::field::cache_control, "no-store");
        res.keep_alive(ctx.req.keep_alive());
        res.body() = std::move(*zip);
        res.prepare_payload();
        co_return res;
    }
    boost::json::object data = std::move(*m);
    data["cert_id"] = cert_id;
    data["device_id"] = device_id;
    data["domain_name"] = cert->cert.domain_name;
    data["fullchain_pem"] = cert->cert.cert_pem;
    data["serial_number"] = cert->cert.serial_number;
    if (plain) {
        auto aw_audit = detail::audit_key_release(ctx, s, cert_id, "plaintext_bundle");
        co_await std::move(aw_audit);
    }
    co_return with_download(http::json_data(ctx.req, std::move(data)), *download,
                            "cert_" + std::to_string(cert_id) + (plain ? "_plaintext.json" : "_bundle.json"));
}

// PUT .../devices/:device_id/agent-config {reason?, replace:[{file:"application"|"websocket", content:{}}]}:
// the contract's config.updated signal, which makes the agent rewrite its own configuration (its server URL
// included): as powerful as running a command there, so it needs what exec items need.
http::awaitable<http::response> push_agent_config(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    std::int64_t const device_id = device_of(ctx);
    if (!s.cfg.devices.allow_commands) {
        // (An API key needs devices:<id>[exec]: the route's scope.)
        auto aw_deny =
            deny(ctx, s, subject_user(ctx),
                 "devices.allow_commands is off on this server: agent configuration changes what the "
                 "agent runs and where it connects");
        co_return co_await std::move(aw_deny);
    }
    auto reason = detail::optional_string(*body, "reason", 200);
    if (!reason)
        co_return http::json_error(ctx.req, reason.error());
    auto const* replace = body->if_contains("replace");
    if (replace == nullptr || !replace->is_array() || replace->get_array().empty() ||
        replace->get_array().size() > 2)
        co_return http::json_error(
            ctx.req, make_error(errc::bad_request, "replace must be an array of 1-2 {file, content} entries",
                                {{"field", "replace"}}));
    boost::json::array files;
    std::vector<std::string> names;
    for (auto const& e : replace->get_array()) {
        std::string const where = "replace[" + std::to_string(files.size()) + "]";
        auto const* file = e.is_object() ? e.get_object().if_contains("file") : nullptr;
        auto const* content = e.is_object() ? e.get_object().if_contains("content") : nullptr;
        if (file == nullptr || !file->is_string() ||
            (file->get_string() != "application" && file->get_string() != "websocket"))
            co_return http::json_error(
                ctx.req, make_error(errc::bad_request, where + ".file must be application or websocket",
                                    {{"field", where + ".file"}}));
        if (content == nullptr || !content->is_object() ||
            boost::json::serialize(*content).size() > 16 * 1024)
            co_return http::json_error(
                ctx.req, make_error(errc::bad_request, where + ".content must be an object of at most 16 KiB",
                                    {{"field", where + ".content"}}));
        std::string const name(file->get_string());
        if (std::find(names.begin(), names.end(), name) != names.end())
            co_return http::json_error(ctx.req,
                                       make_error(errc::bad_request, where + ": " + name + " named twice",
                                                  {{"field", where + ".file"}}));
        names.push_back(name);
        files.push_back(boost::json::object{{"file", name}, {"content", *content}});
    }
    boost::json::object ref{{"replace", files}};
    if (!reason->empty()) {
        ref["reason"] = *reason;
    }
    auto op = s.devices.push_agent_config(subject_user(ctx), device_id, ref);
    auto ok = co_await std::move(op);
    if (!ok)
        co_return http::error_response(ctx, ok.error());
    boost::json::array listed;
    for (auto const& n : names) {
        listed.emplace_back(n);
    }
    auto aw_audit = s.audit.record(subject_user(ctx), "device.agent_config", "ok", detail::client_of(ctx),
                                   boost::json::object{{"device_id", device_id}, {"files", listed}});
    co_await std::move(aw_audit);
    co_return http::json_data(
        ctx.req,
        boost::json::object{
            {"device_id", device_id}, {"files", listed}, {"reason", *reason}, {"signal", "config.updated"}});
}

http::awaitable<http::response> update_device(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto status = detail::optional_string(*body, "status", 16);
    auto name = detail::optional_string(*body, "name", 128);
    if (!status)
        co_return http::json_error(ctx.req, status.error());
    if (!name)
        co_return http::json_error(ctx.req, name.error());
    std::string st = *status;
    std::transform(st.begin(), st.end(), st.begin(), [](unsigned char c) { return std::toupper(c); });
    if (!st.empty() && st != "ACTIVE" && st != "REVOKED" && st != "LOST")
        co_return http::json_error(
            ctx.req,
            make_error(errc::bad_request, "status must be ACTIVE, REVOKED or LOST", {{"field", "status"}}));
    auto aw = detail::respond_one(
        ctx, s.device_auth.update_device(subject_user(ctx), device_of(ctx), st, *name), device_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> patch_install_config(http::request_context& ctx, services& s) {
    auto const ct = ctx.req[bh::field::content_type];
    if (!http::is_json_content_type(ct))
        co_return http::json_error(
            ctx.req, make_error(errc::unsupported_media_type, "Content-Type must be application/json"));
    boost::system::error_code ec;
    auto body = boost::json::parse(ctx.req.body(), ec);
    if (ec)
        co_return http::json_error(ctx.req, make_error(errc::bad_request, "The body is not valid JSON"));
    auto pid = domain::normalize_uuid(ctx.params.str("device_public_id").value_or(""));
    if (!pid)
        co_return http::json_error(ctx.req, make_error(errc::bad_request, "device_public_id must be a UUID",
                                                       {{"field", "device_public_id"}}));
    auto op = s.install_configs.patch(subject_user(ctx), *pid, std::move(body),
                                      ctx.principal->is_api_key()
                                          ? "apikey:" + std::to_string(ctx.principal->api_key_id.value_or(0))
                                          : "user:" + std::to_string(ctx.principal->who.id),
                                      command_policy_of(ctx, s, true));
    auto c = co_await std::move(op);
    auto aw = install_config_answer(ctx, s, std::move(c), true);
    co_return co_await std::move(aw);
}

}  // namespace certctrl::handlers
