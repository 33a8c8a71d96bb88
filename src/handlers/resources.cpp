// Self-managed CAs, certificates, devices and assignments on both prefixes: /apiv1/users/:user_id/...
// (session) and /apiv1/me/... (session or API key). Path ids are named as the documents name them:
// :cert_id under /users, :certificate_id under /me.
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

#include "certctrl/core/ids.hpp"

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>
#include <unordered_map>

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace detail {

// The record of agent contract 4.1, plus the overview document's names (domain, acme_account_id, status).
// Heavy fields (cert, der, csr) only with ?detail=most; the encrypted key never.
char const* cert_status(bool has_certificate, std::int64_t not_after, std::int64_t now) {
    if (!has_certificate) {
        return "pending";
    }
    return not_after != 0 && not_after < now ? "expired" : "active";
}

void write_cert_head(http::json_writer& w, domain::certificate const& c) {
    w.member("id", c.id).member("user_id", c.user_id).member("public_id", c.public_id);
    w.member("domain_name", c.domain_name).member("domain", c.domain_name);
    w.key("sans").begin_array();
    for (auto const& s : c.sans) {
        w.value(s);
    }
    w.end_array();
    w.member("acct_id", c.acct_id).member("acme_account_id", c.acct_id);
    w.key("fallback_acct_ids").begin_array();
    for (auto id : c.fallback_acct_ids) {
        w.value(id);
    }
    w.end_array();
    w.member("dns_provider_id", c.dns_provider_id);
    w.member("key_algorithm", c.key_algorithm).member("key_dist_policy", c.key_dist_policy);
    w.member("server_decrypt_export", c.server_decrypt_export).member("auto_renew", c.auto_renew);
    w.member("client_auth", c.client_auth);
    w.member("challenge", c.challenge.empty() ? "auto" : c.challenge);
}

void write_cert_tail(http::json_writer& w, domain::certificate const& c) {
    w.member("serial_number", c.serial_number)
        .member("self_signed", c.self_signed)
        .member("verified", c.verified);
    w.member("organization", c.organization).member("organizational_unit", c.organizational_unit);
    w.member("country", c.country).member("state", c.state).member("locality", c.locality);
    w.member("not_before", c.not_before)
        .member("not_after", c.not_after)
        .member("has_private_key", c.has_key);
    w.member("dhparam", "");
    w.key("orders").begin_object().key("identifiers").begin_array();
    for (auto const& s : c.sans) {
        w.begin_object().member("type", "dns").member("value", s).end_object();
    }
    w.end_array().end_object();
    w.member("created_at", c.created_at).member("updated_at", c.updated_at);
}

void write_cert_members(http::json_writer& w, domain::certificate const& c, bool most, bool for_issue) {
    write_cert_head(w, c);
    if (!for_issue) {
        w.member("status", cert_status(c.has_certificate, c.not_after, unix_now()));
    }
    write_cert_tail(w, c);
    if (most) {
        if (!for_issue) {
            w.member("cert", c.cert_pem);
        }
        w.member("der", "").member("csr", c.csr_pem);
    }
}

void write_delegation(http::json_writer& w, domain::certificate const& c,
                      std::string const& delegation_domain) {
    if (c.challenge != "dns-01-delegated" || delegation_domain.empty()) {
        return;
    }
    std::string const target = c.public_id + "." + delegation_domain;
    w.key("acme_challenge_cname").begin_array();
    for (auto const& n : c.sans) {
        std::string const base = n.rfind("*.", 0) == 0 ? n.substr(2) : n;
        w.begin_object()
            .member("name", "_acme-challenge." + base)
            .member("type", "CNAME")
            .member("target", target);
        w.end_object();
    }
    w.end_array();
}

void cert_view::operator()(http::json_writer& w, domain::certificate const& c) const {
    w.begin_object();
    write_cert_members(w, c, most, false);
    write_delegation(w, c, delegation_domain);
    w.end_object();
}

// ?detail=most adds the heavy fields; any other value is refused so a typo is not silently ignored.
result<bool> detail_most(http::request_context const& ctx) {
    auto d = http::query_value(ctx.query, "detail");
    if (!d || d->empty()) {
        return false;
    }
    if (*d == "most") {
        return true;
    }
    return make_error(errc::bad_request, "detail must be 'most'", {{"param", "detail"}});
}

}  // namespace detail

namespace {

using detail::cert_param;
using detail::cert_view;
using detail::detail_most;
using detail::device_json;
using detail::path_id;
using detail::subject_user;

boost::json::object ca_json(domain::ca const& c) {
    auto parts = domain::split_algorithm(c.key_algorithm);
    return {{"id", c.id},
            {"user_id", c.user_id},
            {"name", c.name},
            {"algorithm", parts.family},
            {"key_size", parts.key_size},
            {"curve_name",
             parts.curve_name.empty() ? boost::json::value(nullptr) : boost::json::value(parts.curve_name)},
            {"key_algorithm", c.key_algorithm},
            {"common_name", c.subject.common_name},
            {"organization", c.subject.organization},
            {"organizational_unit", c.subject.organizational_unit},
            {"country", c.subject.country},
            {"state", c.subject.state},
            {"locality", c.subject.locality},
            {"subject", c.subject_line},
            {"valid_days", c.valid_days},
            {"max_path_length", c.path_length},
            {"key_usage", c.key_usage},
            {"serial_number", c.serial_number},
            {"enc_scheme", 1},
            {"ca_certificate_pem", c.cert_pem},
            {"status", c.status},
            {"issued_cert_count", c.issued_cert_count},
            {"last_used_at", c.last_used_at},
            {"not_before", c.not_before},
            {"not_after", c.not_after},
            {"created_at", c.created_at},
            {"updated_at", c.updated_at}};
}

boost::json::object assignment_json(domain::assignment const& a) {
    return {{"cert_id", a.cert_id},
            {"device_id", a.device_id},
            {"device_public_id", a.device_public_id},
            {"wrap_alg", a.wrap_alg},
            {"wrap_status", a.wrapped        ? "ready"
                            : a.wrap_pending ? "pending"
                                             : "none"},
            {"status", "assigned"},
            {"message", "Certificate " + std::to_string(a.cert_id) + " assigned to device " +
                            (a.device_public_id.empty() ? std::to_string(a.device_id) : a.device_public_id)},
            {"created_at", a.created_at}};
}

std::int64_t device_param(http::request_context const& ctx) {
    return ctx.params.id("device_id").value_or(0);
}

// A positive id from the body under `a` or `b`; nullopt when absent.
result<std::optional<std::int64_t>> body_id(boost::json::object const& body, char const* a, char const* b) {
    for (char const* f : {a, b}) {
        if (auto const* v = body.if_contains(f); v != nullptr && !v->is_null()) {
            if (!v->is_int64() || v->get_int64() <= 0) {
                return make_error(errc::bad_request, std::string(f) + " must be a positive integer id",
                                  {{"field", f}});
            }
            return std::optional<std::int64_t>(v->get_int64());
        }
    }
    return std::optional<std::int64_t>{};
}

using prefix_pair = std::pair<std::string, std::string>;

}  // namespace

http::awaitable<http::response> list_cas(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw = detail::respond_page(ctx, *page, s.cas.list(subject_user(ctx), *page), ca_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> create_ca(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto input = domain::parse_ca_input(*body);
    if (!input)
        co_return http::json_error(ctx.req, input.error());
    auto aw = detail::respond_one(ctx, s.cas.create(subject_user(ctx), std::move(*input)), ca_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_ca(http::request_context& ctx, services& s) {
    auto aw =
        detail::respond_one(ctx, s.cas.get(subject_user(ctx), ctx.params.id("ca_id").value_or(0)), ca_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> delete_ca(http::request_context& ctx, services& s) {
    auto aw = detail::respond_done(ctx, s.cas.remove(subject_user(ctx), ctx.params.id("ca_id").value_or(0)));
    co_return co_await std::move(aw);
}

namespace {

// A certificate list's filters: the account of the path (/acme-accounts/:acct_id/certificates) or of
// ?acct_id= (?acme_account_id=), ?status=pending|active|expired|expiring, ?q= (part of a name).
result<repo::certificate_filter> certificate_filter_of(http::request_context const& ctx) {
    repo::certificate_filter f;
    if (auto a = ctx.params.id("acct_id"); a) {
        f.acct_id = a;
    } else if (auto b = ctx.params.id("acme_account_id"); b) {
        f.acct_id = b;
    } else {
        for (char const* name : {"acct_id", "acme_account_id"}) {
            if (auto v = http::query_value(ctx.query, name); v && !v->empty()) {
                auto const id = detail::parse_int(*v);
                if (!id || *id <= 0) {
                    return make_error(errc::bad_request, std::string(name) + " must be a positive integer",
                                      {{"param", name}});
                }
                f.acct_id = id;
                break;
            }
        }
    }
    using st = repo::certificate_filter::state;
    if (auto v = http::query_value(ctx.query, "status"); v && !v->empty()) {
        static std::pair<char const*, st> const states[] = {{"pending", st::pending},
                                                            {"active", st::active},
                                                            {"expired", st::expired},
                                                            {"expiring", st::expiring}};
        auto it =
            std::find_if(std::begin(states), std::end(states), [&v](auto const& p) { return *v == p.first; });
        if (it == std::end(states)) {
            return make_error(errc::bad_request, "status must be pending, active, expired or expiring",
                              {{"param", "status"}});
        }
        f.status = it->second;
    }
    if (auto v = http::query_value(ctx.query, "q"); v && !v->empty()) {
        if (v->size() > 253) {
            return make_error(errc::bad_request, "q must be at most 253 characters", {{"param", "q"}});
        }
        f.name_contains = *v;
        std::transform(f.name_contains.begin(), f.name_contains.end(), f.name_contains.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    }
    return f;
}

}  // namespace

http::awaitable<http::response> list_certificates(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto most = detail_most(ctx);
    if (!most)
        co_return http::json_error(ctx.req, most.error());
    auto filter = certificate_filter_of(ctx);
    if (!filter)
        co_return http::json_error(ctx.req, filter.error());
    if (*most) {
        auto aw = detail::respond_page(
            ctx, *page, s.certificates.list(subject_user(ctx), *page, *filter, true), cert_view{true});
        co_return co_await std::move(aw);
    }
    // Without the PEM texts: rows whose version was rendered before are not read again. The texts a page uses
    // are held here (the cache may drop them meanwhile).
    using pinned_map = std::unordered_map<std::int64_t, rendered_certificates::item_ptr>;
    auto pinned = std::make_shared<pinned_map>();
    auto known = [pinned, &cache = s.rendered](repo::cert_version const& v) {
        if (auto it = cache.find(v)) {
            (*pinned)[v.id] = std::move(it);
            return true;
        }
        return false;
    };
    auto aw = s.certificates.list_changed(subject_user(ctx), *page, *filter, known);
    auto r = co_await std::move(aw);
    if (!r) {
        co_return http::error_response(ctx, r.error());
    }
    for (auto const& row : r->rows) {
        (*pinned)[row.id] = s.rendered.put(row);
    }
    auto const now = unix_now();
    std::string items = "[";
    items.reserve(r->page.items.size() * 900 + 2);
    std::size_t count = 0;
    for (auto const& v : r->page.items) {
        auto it = pinned->find(v.id);
        if (it == pinned->end()) {
            continue;  // deleted between the two reads of the page
        }
        if (count++ > 0) {
            items += ',';
        }
        rendered_certificates::append(items, *it->second, now);
    }
    items += ']';
    std::int64_t const last = r->page.items.empty() ? 0 : r->page.items.back().id;
    co_return detail::list_response(ctx, items, count, r->page.total, r->page.has_more, last, *page);
}

http::awaitable<http::response> get_certificate(http::request_context& ctx, services& s) {
    auto most = detail_most(ctx);
    if (!most)
        co_return http::json_error(ctx.req, most.error());
    auto aw = detail::respond_one(ctx, s.certificates.get(subject_user(ctx), cert_param(ctx)),
                                  cert_view{*most, s.cfg.issuance.delegation.domain});
    co_return co_await std::move(aw);
}

http::awaitable<http::response> delete_certificate(http::request_context& ctx, services& s) {
    auto aw = detail::respond_done(ctx, s.certificates.remove(subject_user(ctx), cert_param(ctx)));
    co_return co_await std::move(aw);
}

http::awaitable<http::response> list_certificate_devices(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw = detail::respond_page(
        ctx, *page, s.certificates.devices_of(subject_user(ctx), cert_param(ctx), *page), device_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> assign_certificate(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto dev = body_id(*body, "device_id", "user_device_id");
    if (!dev)
        co_return http::json_error(ctx.req, dev.error());
    std::int64_t const user = subject_user(ctx);
    std::int64_t device_id = dev->value_or(0);
    if (!*dev) {
        auto const* pid = body->if_contains("device_public_id");
        if (pid == nullptr || !pid->is_string()) {
            co_return http::json_error(
                ctx.req, make_error(errc::bad_request, "device_id (or device_public_id) is required",
                                    {{"field", "device_id"}}));
        }
        auto aw_d = s.certificates.get_device_by_public_id(user, std::string(pid->get_string()));
        auto d = co_await std::move(aw_d);
        if (!d)
            co_return http::error_response(ctx, d.error());
        device_id = d->id;
    }
    if (auto missing = missing_assign_scope(*ctx.principal, cert_param(ctx), device_id)) {
        auto aw_deny = deny(ctx, s, user, "The API key lacks the scope " + *missing);
        co_return co_await std::move(aw_deny);
    }
    auto aw = s.certificates.assign(user, cert_param(ctx), device_id);
    auto a = co_await std::move(aw);
    if (!a)
        co_return http::error_response(ctx, a.error());
    co_return http::json_data(ctx.req, assignment_json(*a), a->wrap_pending ? 202 : 200);
}

http::awaitable<http::response> list_devices(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw =
        detail::respond_page(ctx, *page, s.certificates.list_devices(subject_user(ctx), *page), device_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> register_device(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    if (body->if_contains("dev_pk")) {
        // The agent's own registration (cert-ctrl login --apikey): its X25519 key and a session.
        auto aw_agent = detail::register_agent(ctx, s, subject_user(ctx), std::move(*body));
        co_return co_await std::move(aw_agent);
    }
    auto input = domain::parse_device_input(*body);
    if (!input)
        co_return http::json_error(ctx.req, input.error());
    auto aw = detail::respond_one(
        ctx, s.certificates.register_device(subject_user(ctx), std::move(*input), detail::client_of(ctx)),
        device_json, 201);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_device(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(ctx, s.certificates.get_device(subject_user(ctx), device_param(ctx)),
                                  device_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_device_by_public_id(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(ctx,
                                  s.certificates.get_device_by_public_id(
                                      subject_user(ctx), ctx.params.str("device_public_id").value_or("")),
                                  device_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> delete_device(http::request_context& ctx, services& s) {
    auto aw = detail::respond_done(ctx, s.certificates.remove_device(subject_user(ctx), device_param(ctx)));
    co_return co_await std::move(aw);
}

http::awaitable<http::response> list_device_certificates(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto most = detail_most(ctx);
    if (!most)
        co_return http::json_error(ctx.req, most.error());
    auto aw = detail::respond_page(
        ctx, *page, s.certificates.certificates_of(subject_user(ctx), device_param(ctx), *page, *most),
        cert_view{*most});
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_device_certificate(http::request_context& ctx, services& s) {
    auto most = detail_most(ctx);
    if (!most)
        co_return http::json_error(ctx.req, most.error());
    auto aw = detail::respond_one(
        ctx, s.certificates.certificate_of(subject_user(ctx), device_param(ctx), cert_param(ctx)),
        cert_view{*most});
    co_return co_await std::move(aw);
}

http::awaitable<http::response> assign_to_device(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto cert = body_id(*body, "cert_id", "certificate_id");
    if (!cert)
        co_return http::json_error(ctx.req, cert.error());
    if (!*cert) {
        co_return http::json_error(
            ctx.req, make_error(errc::bad_request, "cert_id is required", {{"field", "cert_id"}}));
    }
    if (auto missing = missing_assign_scope(*ctx.principal, **cert, std::nullopt)) {
        auto aw_deny = deny(ctx, s, subject_user(ctx), "The API key lacks the scope " + *missing);
        co_return co_await std::move(aw_deny);
    }
    auto aw = s.certificates.assign(subject_user(ctx), **cert, device_param(ctx));
    auto a = co_await std::move(aw);
    if (!a)
        co_return http::error_response(ctx, a.error());
    co_return http::json_data(ctx.req, assignment_json(*a), a->wrap_pending ? 202 : 200);
}

http::awaitable<http::response> unassign_from_device(http::request_context& ctx, services& s) {
    auto aw = detail::respond_done(
        ctx, s.certificates.unassign(subject_user(ctx), cert_param(ctx), device_param(ctx)));
    co_return co_await std::move(aw);
}

http::awaitable<http::response> assign_by_key(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto explicit_cert = body_id(*body, "certificate_id", "cert_id");
    if (!explicit_cert)
        co_return http::json_error(ctx.req, explicit_cert.error());
    domain::principal const& p = *ctx.principal;
    std::int64_t cert_id = explicit_cert->value_or(0);
    if (p.is_api_key()) {
        // The certificates the key may assign (a read permission names a certificate but releases no key).
        auto const assigns = [](domain::permission const& perm) {
            return perm.obtype == "certificates" &&
                   std::any_of(perm.actions.begin(), perm.actions.end(),
                               [](std::string const& a) { return a == "assign" || a == "write"; });
        };
        std::set<std::int64_t> named;
        for (auto const& perm : p.permissions) {
            if (assigns(perm) && perm.obid != "*") {
                named.insert(std::stoll(perm.obid));
            }
        }
        if (cert_id == 0) {
            if (named.size() != 1) {
                co_return http::json_error(
                    ctx.req,
                    make_error(errc::bad_request,
                               named.empty() ? "certificate_id is required: the API key names no single "
                                               "certificate it may assign (certificates:<id>[assign])"
                                             : "certificate_id is required: the API key names several "
                                               "certificates",
                               {{"field", "certificate_id"}}));
            }
            cert_id = *named.begin();
        }
    } else if (cert_id == 0) {
        co_return http::json_error(ctx.req, make_error(errc::bad_request, "certificate_id is required",
                                                       {{"field", "certificate_id"}}));
    }
    std::int64_t const user = subject_user(ctx);
    auto dev = body_id(*body, "device_id", "user_device_id");
    if (!dev)
        co_return http::json_error(ctx.req, dev.error());
    std::int64_t device_id = dev->value_or(0);
    if (device_id == 0) {
        auto const* pid = body->if_contains("device_public_id");
        if (pid == nullptr || !pid->is_string()) {
            co_return http::json_error(ctx.req, make_error(errc::bad_request, "device_public_id is required",
                                                           {{"field", "device_public_id"}}));
        }
        auto aw_d = s.certificates.get_device_by_public_id(user, std::string(pid->get_string()));
        auto d = co_await std::move(aw_d);
        if (!d)
            co_return http::error_response(ctx, d.error());
        device_id = d->id;
    }
    if (auto missing = missing_assign_scope(p, cert_id, std::nullopt)) {
        auto aw_deny = deny(ctx, s, user, "The API key lacks the scope " + *missing);
        co_return co_await std::move(aw_deny);
    }
    auto aw = s.certificates.assign(user, cert_id, device_id);
    auto a = co_await std::move(aw);
    if (!a)
        co_return http::error_response(ctx, a.error());
    co_return http::json_data(ctx.req, assignment_json(*a), a->wrap_pending ? 202 : 200);
}

}  // namespace certctrl::handlers
