#pragma once
// Helpers shared by the handlers (internal to the handlers library).

#include "certctrl/domain/acme_account.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/device.hpp"
#include "certctrl/http/json_writer.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"
#include "certctrl/http/types.hpp"
#include "certctrl/repo/identity.hpp"
#include "certctrl/repo/page.hpp"
#include "certctrl/service/identity.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace certctrl::handlers {
struct services;
}  // namespace certctrl::handlers

namespace certctrl::handlers::detail {

/// Address, user agent and request id of the request, for audit records.
service::client_info client_of(http::request_context const& ctx);

/// A whole decimal integer (a query parameter's text); nullopt for anything else.
std::optional<std::int64_t> parse_int(std::string const& s);

/// The page a list request asks for: `limit` (1-1000, default 100) with either `offset` (0..10000) or
/// `cursor` (the `pagination.cursor` of the previous page: base64 of {"id":N}), and `total=true` to count the
/// rows. Errors: bad_request naming the parameter.
result<repo::page_query> parse_page(http::request_context const& ctx);

/// `{"data": items, "meta": {offset, limit, total?}, "pagination": {cursor, has_more}}`: both documented list
/// shapes at once. `meta.total` is there when counted (?total=true) or when the page shows it (the last page
/// of an offset listing). `last_id` is the id of the last item (for the next cursor).
http::response list_response(http::request_context const& ctx, boost::json::array const& items,
                             std::optional<std::int64_t> total, bool has_more, std::int64_t last_id,
                             repo::page_query const& page);
/// list_response() for items already written as a JSON array (`count` of them).
http::response list_response(http::request_context const& ctx, std::string_view items_json, std::size_t count,
                             std::optional<std::int64_t> total, bool has_more, std::int64_t last_id,
                             repo::page_query const& page);

/// Writes one row: with `to_json(writer, row)` when it writes JSON text itself, else the value
/// `to_json(row)`.
template <class T, class ToJson>
void write_row(http::json_writer& w, T const& row, ToJson const& to_json) {
    if constexpr (std::is_invocable_v<ToJson const&, http::json_writer&, T const&>) {
        to_json(w, row);
    } else {
        w.value(boost::json::value(to_json(row)));
    }
}

/// A page of rows as list_response() shapes it, each row written by `to_json` (see write_row).
template <class T, class ToJson>
http::response page_response(http::request_context const& ctx, repo::page<T> const& rows, ToJson to_json,
                             repo::page_query const& page) {
    std::string items = "[";
    http::json_writer w(items);
    for (auto const& row : rows.items) {
        write_row(w, row, to_json);
    }
    items += ']';
    std::int64_t const last = rows.items.empty() ? 0 : rows.items.back().id;
    return list_response(ctx, items, rows.items.size(), rows.total, rows.has_more, last, page);
}

/// Awaits `rows` and answers with the page (or the error). A coroutine: `ctx` outlives it, the rest is
/// taken by value (see the gcc 12 rules in docs/architecture.md).
template <class T, class ToJson>
http::awaitable<http::response> respond_page(http::request_context& ctx, repo::page_query page,
                                             repo::task<repo::page<T>> rows, ToJson to_json) {
    auto r = co_await std::move(rows);
    if (!r) {
        co_return http::error_response(ctx, r.error());
    }
    co_return page_response(ctx, *r, to_json, page);
}

/// `{"data": <row written by to_json>}` with `status` (see write_row).
template <class T, class ToJson>
http::response one_response(http::request_context const& ctx, T const& row, ToJson const& to_json,
                            unsigned status = 200) {
    std::string body = "{\"data\":";
    http::json_writer w(body);
    write_row(w, row, to_json);
    body += '}';
    return http::json_text(ctx.req, std::move(body), status);
}

/// Awaits `one` and answers `{"data": to_json(value)}` with `status` (or the error).
template <class T, class ToJson>
http::awaitable<http::response> respond_one(http::request_context& ctx, repo::task<T> one, ToJson to_json,
                                            unsigned status = 200) {
    auto r = co_await std::move(one);
    if (!r) {
        co_return http::error_response(ctx, r.error());
    }
    co_return one_response(ctx, *r, to_json, status);
}

/// Awaits `done` and answers 204 (or the error).
http::awaitable<http::response> respond_done(http::request_context& ctx, repo::task<bool> done);

/// "pending" before the first issuance, then "active" or, past `not_after`, "expired".
char const* cert_status(bool has_certificate, std::int64_t not_after, std::int64_t now);
/// The members of a certificate record before "status" (id ... client_auth) and after it (serial_number ...
/// updated_at), without the heavy ones.
void write_cert_head(http::json_writer& w, domain::certificate const& c);
void write_cert_tail(http::json_writer& w, domain::certificate const& c);

/// The members of the certificate record of agent contract 4.1 (with the overview document's aliases); the
/// heavy fields cert/der/csr only when `most`. `for_issue` leaves out status and cert, which an issue
/// response gives otherwise.
void write_cert_members(http::json_writer& w, domain::certificate const& c, bool most,
                        bool for_issue = false);

/// A device (agent contract 4.4); never its keys.
boost::json::object device_json(domain::device const& d);

/// The certificate record as a row writer for the respond_* helpers. With `delegation_domain` (the server's
/// issuance.delegation.domain), a dns-01-delegated certificate also shows where its CNAME must point.
struct cert_view {
    bool most = false;
    std::string delegation_domain = {};
    void operator()(http::json_writer& w, domain::certificate const& c) const;
};

/// "acme_challenge_cname": the record the user creates once for a dns-01-delegated certificate
/// (`_acme-challenge.<name> CNAME <public_id>.<delegation domain>`); nothing otherwise.
void write_delegation(http::json_writer& w, domain::certificate const& c,
                      std::string const& delegation_domain);

/// `?detail=most` (true), absent (false), anything else: bad_request.
result<bool> detail_most(http::request_context const& ctx);

/// Writes the audit record of a private key leaving the server (`how`: export, zip, plaintext_bundle,
/// deploy_materials) into the certificate owner's log, naming who received it (an admin acting for another
/// user, an API key, a session or a device).
http::awaitable<void> audit_key_release(http::request_context& ctx, services& s, std::int64_t cert_id,
                                        char const* how);

/// An API key's right to receive certificate `cert_id`'s key in plaintext: with
/// auth.export_requires_export_action, `certificates:<id>[export]`; else [read]. The scope it lacks, if any.
std::optional<std::string> missing_export_scope(http::request_context const& ctx, services const& s,
                                                std::int64_t cert_id);

/// For an API key: what refuses an issuance from a SELF_CA account the key holds no scope for (see
/// issuance_service::request); empty for sessions.
std::function<std::optional<std::string>(domain::acme_account const&)> issue_gate(
    http::request_context const& ctx);

/// `?format=zip` or an Accept header naming application/zip.
bool wants_zip(http::request_context const& ctx);

/// The user a request acts for: `:user_id` of the path, else the authenticated principal's user.
std::int64_t subject_user(http::request_context const& ctx);

/// The path id named `a` or, when the route names it differently, `b` (e.g. :cert_id / :certificate_id).
std::int64_t path_id(http::request_context const& ctx, std::string_view a, std::string_view b);

/// The certificate id of the path (:cert_id under /users, :certificate_id under /me).
std::int64_t cert_param(http::request_context const& ctx);

/// An integer from a JSON number or a string of digits; nothing otherwise.
std::optional<std::int64_t> int_of(boost::json::value const* v);

/// The string member `name`, or "" when absent or not a string.
std::string str_or(boost::json::object const& o, char const* name);

/// A required string member of at most `max` bytes. Errors: bad_request naming the field.
result<std::string> required_string(boost::json::object const& o, char const* field, std::size_t max);

/// An optional string member (default ""), at most `max` bytes. Errors: bad_request when not a string.
result<std::string> optional_string(boost::json::object const& o, char const* field, std::size_t max);

}  // namespace certctrl::handlers::detail

namespace certctrl::handlers {
struct services;
}

namespace certctrl::handlers::detail {

/// Registers an agent's device from its registration body (device_public_id, dev_pk, ...) for `user_id` and
/// answers {device, session} (the API-key path of agent contract 2.3 step 5).
http::awaitable<http::response> register_agent(http::request_context& ctx, services& s, std::int64_t user_id,
                                               boost::json::object body);

}  // namespace certctrl::handlers::detail
