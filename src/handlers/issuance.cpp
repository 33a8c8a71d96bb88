// Issuance routes on both prefixes: POST/GET .../certificates/:id/issues (+ the legacy /issues/history
// alias),
// .../issues/:issue_history_id/cancel, .../issue-result, .../renew and .../export.
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"

#include <algorithm>
#include <cctype>

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

using detail::cert_param;
using detail::subject_user;

boost::json::object history_json(domain::issue_row const& r) {
    return {{"id", r.id},
            {"cert_record_id", r.cert_id},
            {"cert_id", r.cert_id},
            {"issue_attempt_number", r.attempt},
            {"status", r.status},
            {"kind", r.kind},
            {"acme_order_id", r.acme_order_id},
            {"error_message", r.error_message},
            {"cancel_requested", r.cancel_requested},
            {"started_at", r.started_at},
            {"completed_at", r.completed_at},
            {"created_at", r.created_at},
            {"acct_id", r.acct_id ? boost::json::value(*r.acct_id) : boost::json::value(nullptr)},
            // When a queued row waits for its next attempt (backoff after a transient failure): the time it
            // runs again; null otherwise.
            {"retry_at", r.status == "PENDING" && r.run_after > r.created_at ? boost::json::value(r.run_after)
                                                                             : boost::json::value(nullptr)}};
}

// POST .../issues and .../renew: {issue_history_id, status}; an inline SELF_CA success adds the record in
// `cert` and, for clients of the older contract, the record's fields beside it.
// For an API key: the scope it lacks to issue from a SELF_CA account. A private CA is the user's own trust
// anchor, so certificates:*[issue] alone is not enough: the key needs acme_accounts:<acct_id>[issue|write]
// or cas:<ca_id>[issue|write].
std::optional<std::string> missing_private_ca_scope(domain::principal const& p,
                                                    domain::acme_account const& account) {
    for (char const* action : {"issue", "write"}) {
        if (domain::allows(p.permissions, "acme_accounts", account.id, action) ||
            (account.ca_id && domain::allows(p.permissions, "cas", *account.ca_id, action))) {
            return std::nullopt;
        }
    }
    return "acme_accounts:" + std::to_string(account.id) + "[issue]";
}

http::awaitable<http::response> request_issue(services& s, http::request_context& ctx, std::string kind) {
    auto aw =
        s.issuance.request(subject_user(ctx), cert_param(ctx), std::move(kind), detail::issue_gate(ctx));
    auto out = co_await std::move(aw);
    if (!out) {
        if (out.error().code == errc::forbidden && out.error().params.contains("scope")) {
            auto aw_deny = deny(ctx, s, subject_user(ctx), out.error().what);
            co_return co_await std::move(aw_deny);
        }
        co_return http::error_response(ctx, out.error());
    }
    std::string body = "{\"data\":";
    http::json_writer w(body);
    w.begin_object();
    if (out->cert) {
        detail::write_cert_members(w, *out->cert, true, true);
        w.key("cert");
        detail::cert_view{true}(w, *out->cert);
    }
    w.member("issue_history_id", out->row.id).member("status", out->row.status);
    w.member("issue_attempt_number", out->row.attempt);
    if (!out->row.error_message.empty()) {
        w.member("error_message", out->row.error_message);
    }
    w.end_object();
    body += '}';
    co_return http::json_text(ctx.req, std::move(body));
}

}  // namespace

std::function<std::optional<std::string>(domain::acme_account const&)> detail::issue_gate(
    http::request_context const& ctx) {
    std::function<std::optional<std::string>(domain::acme_account const&)> gate;
    if (ctx.principal && ctx.principal->is_api_key()) {
        gate = [&p = *ctx.principal](domain::acme_account const& a) {
            return missing_private_ca_scope(p, a);
        };
    }
    return gate;
}

namespace {

// The Host of a challenge request as an ACME identifier: lower-case, without port or trailing dot.
std::string challenge_host(http::request const& req) {
    auto it = req.find(bh::field::host);
    if (it == req.end()) {
        return {};
    }
    std::string host(it->value());
    if (auto colon = host.rfind(':'); colon != std::string::npos && host.find(']') == std::string::npos) {
        host.resize(colon);
    }
    if (!host.empty() && host.back() == '.') {
        host.pop_back();
    }
    std::transform(host.begin(), host.end(), host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return host;
}

}  // namespace

void add_acme_challenge_route(http::router& r, worker::issue_jobs& jobs) {
    r.add(bh::verb::get, "/.well-known/acme-challenge/{token}",
          [&jobs](http::request_context& ctx) -> http::awaitable<http::response> {
              // Only for the name the token's authorization is for: a token of one user's order is not
              // served to requests for another name that reaches this listener.
              auto aw = jobs.http_challenge(ctx.params.str("token").value_or(""), challenge_host(ctx.req));
              auto ka = co_await std::move(aw);
              if (!ka) {
                  co_return http::error_response(ctx, ka.error());
              }
              if (!*ka) {
                  co_return http::json_error(ctx.req, make_error(errc::not_found, "No such challenge token"));
              }
              http::response res{bh::status::ok, ctx.req.version()};
              res.set(bh::field::content_type, "text/plain");
              res.keep_alive(ctx.req.keep_alive());
              res.body() = std::move(**ka);
              res.prepare_payload();
              co_return res;
          });
}

http::awaitable<http::response> request_issuance(http::request_context& ctx, services& s) {
    auto aw = request_issue(s, ctx, "issue");
    co_return co_await std::move(aw);
}

http::awaitable<http::response> request_renewal(http::request_context& ctx, services& s) {
    auto aw = request_issue(s, ctx, "renew");
    co_return co_await std::move(aw);
}

http::awaitable<http::response> list_issue_history(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw = detail::respond_page(ctx, *page, s.issuance.history(subject_user(ctx), cert_param(ctx), *page),
                                   history_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> refuse_worker_callback(http::request_context& ctx, services& /*s*/) {
    co_return http::json_error(
        ctx.req, make_error(errc::forbidden,
                            "POST .../issues/history is the issuance workers' internal callback, not a user "
                            "route; use POST .../issues"));
}

http::awaitable<http::response> cancel_issuance(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(
        ctx,
        s.issuance.cancel(subject_user(ctx), cert_param(ctx), ctx.params.id("issue_history_id").value_or(0)),
        history_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_issue_result(http::request_context& ctx, services& s) {
    auto aw = s.issuance.result(subject_user(ctx), cert_param(ctx));
    auto aw2 = detail::respond_one(ctx, std::move(aw), detail::cert_view{true});
    co_return co_await std::move(aw2);
}

http::awaitable<http::response> export_certificate(http::request_context& ctx, services& s) {
    auto format = http::query_value(ctx.query, "format");
    if (format && *format != "zip" && *format != "json") {
        co_return http::json_error(
            ctx.req, make_error(errc::bad_request, "format must be json or zip", {{"param", "format"}}));
    }
    if (auto missing = detail::missing_export_scope(ctx, s, cert_param(ctx))) {
        auto aw_deny = deny(ctx, s, subject_user(ctx),
                            "The API key lacks the scope " + *missing + " (a private key export)");
        co_return co_await std::move(aw_deny);
    }
    if (detail::wants_zip(ctx)) {
        auto aw = s.issuance.zip_for(subject_user(ctx), cert_param(ctx));
        auto z = co_await std::move(aw);
        if (!z) {
            co_return http::error_response(ctx, z.error());
        }
        auto aw_audit = detail::audit_key_release(ctx, s, cert_param(ctx), "zip");
        co_await std::move(aw_audit);
        http::response res{bh::status::ok, ctx.req.version()};
        res.set(bh::field::content_type, "application/zip");
        res.set(bh::field::content_disposition,
                "attachment; filename=\"cert-" + std::to_string(z->cert_id) + ".zip\"");
        res.set("X-Export-Password", z->password);
        res.set(bh::field::cache_control, "no-store");
        res.keep_alive(ctx.req.keep_alive());
        res.body() = std::move(z->zip);
        res.prepare_payload();
        co_return res;
    }
    auto aw = s.issuance.export_for(subject_user(ctx), cert_param(ctx));
    auto m = co_await std::move(aw);
    if (!m) {
        co_return http::error_response(ctx, m.error());
    }
    auto aw_audit = detail::audit_key_release(ctx, s, cert_param(ctx), "export");
    co_await std::move(aw_audit);
    // The certificate record (S1: export "responds with the certificate record"), with S0's members: cert is
    // the full chain, leaf first (what nginx's ssl_certificate takes), privkey the base64 of the PEM key.
    std::string const full = m->leaf_pem + m->chain_pem;
    std::string body = "{\"data\":";
    http::json_writer w(body);
    w.begin_object();
    detail::write_cert_members(w, m->cert, false, false);
    w.member("cert", full).member("leaf_pem", m->leaf_pem).member("chain_pem", m->chain_pem);
    w.member("fullchain", full).member("chain", m->chain_pem);
    w.member("privkey", base64_encode(m->key_pem));
    w.end_object();
    body += '}';
    http::response res = http::json_text(ctx.req, std::move(body));
    res.set(bh::field::cache_control, "no-store");
    co_return res;
}

}  // namespace certctrl::handlers
