// Creating and changing certificate records on both prefixes: create (S0's "Issue new certificate" issues
// when it says "auto_renew": true), PATCH/PUT with the rules of certificate_service::update, and
// {"action":"verify_domain"} for a dns-01-delegated certificate's CNAMEs.
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

#include <algorithm>

namespace certctrl::handlers {

using detail::cert_param;
using detail::cert_view;
using detail::subject_user;

namespace {

app_error no_delegation() {
    return make_error(
        errc::bad_request,
        "challenge dns-01-delegated needs a delegation domain on this server (issuance.delegation)",
        {{"field", "challenge"}});
}

}  // namespace

http::awaitable<http::response> create_certificate(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto input = domain::parse_certificate_input(*body);
    if (!input)
        co_return http::json_error(ctx.req, input.error());
    if (input->challenge == "dns-01-delegated" && s.cfg.issuance.delegation.domain.empty())
        co_return http::json_error(ctx.req, no_delegation());
    // Seed S0 calls this "Issue new certificate" and its example says "auto_renew": true: such a create also
    // queues the first issuance (answering issue_history_id). Without it (S1) only the record is made, and
    // the client's POST .../issues starts the one issuance.
    auto const* said = body->if_contains("auto_renew");
    bool const issue_now = said != nullptr && said->is_bool() && said->as_bool();
    std::int64_t const user = subject_user(ctx);
    if (issue_now && ctx.principal && ctx.principal->is_api_key() &&
        !domain::allows(ctx.principal->permissions, "certificates", std::nullopt, "issue")) {
        auto aw_deny =
            deny(ctx, s, user,
                 "The API key lacks the scope certificates:*[issue] (\"auto_renew\": true also issues)");
        co_return co_await std::move(aw_deny);
    }
    auto aw_c = s.certificates.create(user, std::move(*input));
    auto made = co_await std::move(aw_c);
    if (!made)
        co_return http::error_response(ctx, made.error());
    if (!issue_now) {
        co_return detail::one_response(ctx, *made, cert_view{true, s.cfg.issuance.delegation.domain});
    }
    auto aw_i = s.issuance.request(user, made->id, "issue", detail::issue_gate(ctx));
    auto issued = co_await std::move(aw_i);
    if (!issued) {
        // Nothing half-done: the record goes again, and the client sees why the issuance was refused.
        auto aw_rm = s.certificates.remove(user, made->id);
        (void)co_await std::move(aw_rm);
        if (issued.error().code == errc::forbidden && issued.error().params.contains("scope")) {
            auto aw_deny = deny(ctx, s, user, issued.error().what);
            co_return co_await std::move(aw_deny);
        }
        co_return http::error_response(ctx, issued.error());
    }
    domain::certificate const& rec = issued->cert ? *issued->cert : *made;
    std::string out = "{\"data\":";
    http::json_writer w(out);
    w.begin_object();
    detail::write_cert_members(w, rec, true, false);
    detail::write_delegation(w, rec, s.cfg.issuance.delegation.domain);
    w.member("issue_history_id", issued->row.id).member("issue_status", issued->row.status);
    w.member("issue_attempt_number", issued->row.attempt);
    w.end_object();
    out += '}';
    co_return http::json_text(ctx.req, std::move(out));
}

namespace {

// PUT .../certificates/:id {"action":"verify_domain"} (agent contract 3.3): 204 when every name's
// _acme-challenge record is a CNAME to the certificate's delegation target, else 409 naming the missing ones.
http::awaitable<http::response> verify_delegation(http::request_context& ctx, services& s) {
    auto aw = s.certificates.get(subject_user(ctx), cert_param(ctx));
    auto c = co_await std::move(aw);
    if (!c)
        co_return http::error_response(ctx, c.error());
    std::string const& domain = s.cfg.issuance.delegation.domain;
    if (c->challenge != "dns-01-delegated" || domain.empty())
        co_return http::json_error(
            ctx.req,
            make_error(errc::bad_request,
                       "verify_domain checks the _acme-challenge CNAMEs of a dns-01-delegated certificate; "
                       "this one's challenge is " +
                           (c->challenge.empty() ? std::string("auto") : c->challenge),
                       {{"field", "action"}}));
    std::vector<std::string> names;
    for (auto const& n : c->sans) {
        std::string const base = n.rfind("*.", 0) == 0 ? n.substr(2) : n;
        if (std::find(names.begin(), names.end(), base) == names.end()) {
            names.push_back(base);
        }
    }
    std::string const target = c->public_id + "." + domain;
    auto aw_m = s.domains.missing_delegations(names, target);
    auto missing = co_await std::move(aw_m);
    if (!missing)
        co_return http::error_response(ctx, missing.error());
    if (missing->empty())
        co_return http::no_content(ctx.req);
    boost::json::array list;
    for (auto const& m : *missing) {
        list.emplace_back(m);
    }
    co_return http::json_error(
        ctx.req,
        make_error(errc::conflict, "Not delegated yet: " + missing->front() + " must be a CNAME to " + target,
                   {{"missing", list}, {"target", target}}));
}

}  // namespace

http::awaitable<http::response> update_certificate(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    if (auto const* a = body->if_contains("action");
        a != nullptr && a->is_string() && a->get_string() == "verify_domain") {
        auto aw_v = verify_delegation(ctx, s);
        co_return co_await std::move(aw_v);
    }
    // Turning on server-side export lets the private key leave the server: an API key needs the scope that
    // allows it to receive one (certificates:<id>[export] under auth.export_requires_export_action).
    if (auto const* e = body->if_contains("server_decrypt_export");
        e != nullptr && e->is_bool() && e->as_bool()) {
        if (auto missing = detail::missing_export_scope(ctx, s, cert_param(ctx))) {
            auto aw_deny =
                deny(ctx, s, subject_user(ctx),
                     "The API key lacks the scope " + *missing + " (turning on server_decrypt_export)");
            co_return co_await std::move(aw_deny);
        }
    }
    if (auto const* c = body->if_contains("challenge"); c != nullptr && c->is_string() &&
                                                        c->get_string() == "dns-01-delegated" &&
                                                        s.cfg.issuance.delegation.domain.empty())
        co_return http::json_error(ctx.req, no_delegation());
    std::int64_t const user = subject_user(ctx);
    auto aw = s.certificates.update(user, cert_param(ctx), std::move(*body));
    auto u = co_await std::move(aw);
    if (!u)
        co_return http::error_response(ctx, u.error());
    if (std::find(u->changed.begin(), u->changed.end(), "server_decrypt_export") != u->changed.end()) {
        auto aw_audit =
            s.audit.record(user, "certificate.server_decrypt_export", "ok", detail::client_of(ctx),
                           boost::json::object{{"cert_id", u->cert.id},
                                               {"server_decrypt_export", u->cert.server_decrypt_export}});
        co_await std::move(aw_audit);
    }
    std::string out = "{\"data\":";
    http::json_writer w(out);
    w.begin_object();
    detail::write_cert_members(w, u->cert, true, false);
    detail::write_delegation(w, u->cert, s.cfg.issuance.delegation.domain);
    w.key("changed").begin_array();
    for (auto const& c : u->changed) {
        w.value(c);
    }
    w.end_array();
    w.member("reissue_required", u->reissue_required);
    w.end_object();
    out += '}';
    co_return http::json_text(ctx.req, std::move(out));
}

}  // namespace certctrl::handlers
