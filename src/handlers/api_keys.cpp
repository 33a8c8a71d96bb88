// API keys and the audit log, on both prefixes: /apiv1/users/:user_id (session) and /apiv1/me (session or
// key).
#include "certctrl/core/ids.hpp"
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

boost::json::object key_json(domain::api_key const& k) {
    std::int64_t const now = unix_now();
    return {{"id", k.id},
            {"name", k.name},
            {"key_id", k.key_id},
            {"permissions", domain::to_json(k.permissions)},
            {"created_at", k.created_at},
            {"expires_at", k.expires_at},
            {"expired", k.expires_at <= now}};
}

// The user a route acts for: :user_id on /apiv1/users routes, the caller on /apiv1/me routes.
std::int64_t subject(http::request_context const& ctx) {
    return ctx.params.id("user_id").value_or(ctx.principal->who.id);
}

}  // namespace

http::awaitable<http::response> list_api_keys(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw_1 = s.keys.list(subject(ctx), *page);
    auto r = co_await std::move(aw_1);
    if (!r)
        co_return http::error_response(ctx, r.error());
    boost::json::array items;
    for (auto const& k : r->items)
        items.push_back(key_json(k));
    std::int64_t const last = r->items.empty() ? 0 : r->items.back().id;
    co_return detail::list_response(ctx, std::move(items), r->total, r->has_more, last, *page);
}

http::awaitable<http::response> create_api_key(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto name = detail::required_string(*body, "name", 128);
    if (!name)
        co_return http::json_error(ctx.req, name.error());
    auto const* exp = body->if_contains("expires_in_seconds");
    if (exp == nullptr) {
        co_return http::json_error(ctx.req, make_error(errc::bad_request, "expires_in_seconds is required",
                                                       {{"field", "expires_in_seconds"}}));
    }
    if (!exp->is_int64() && !exp->is_uint64()) {
        co_return http::json_error(ctx.req,
                                   make_error(errc::bad_request, "expires_in_seconds must be an integer",
                                              {{"field", "expires_in_seconds"}}));
    }
    std::int64_t const expires = exp->is_int64()
                                     ? exp->get_int64()
                                     : std::numeric_limits<std::int64_t>::max();  // huge: rejected below
    auto const* perms_json = body->if_contains("permissions");
    if (perms_json == nullptr) {
        co_return http::json_error(
            ctx.req, make_error(errc::bad_request, "permissions is required", {{"field", "permissions"}}));
    }
    auto perms = domain::parse_permissions(*perms_json);
    if (!perms)
        co_return http::json_error(ctx.req, perms.error());
    auto aw_2 = s.keys.create(*ctx.principal, subject(ctx), *name, expires, std::move(*perms),
                              detail::client_of(ctx));
    auto created = co_await std::move(aw_2);
    if (!created)
        co_return http::error_response(ctx, created.error());
    auto data = key_json(created->key);
    data["token"] = created->token;  // shown once
    data["expires_in_seconds"] = expires;
    co_return http::json_data(ctx.req, std::move(data), 201);
}

http::awaitable<http::response> get_api_key(http::request_context& ctx, services& s) {
    auto aw_3 = s.keys.get(subject(ctx), *ctx.params.id("apikey_id"));
    auto k = co_await std::move(aw_3);
    if (!k)
        co_return http::error_response(ctx, k.error());
    co_return http::json_data(ctx.req, key_json(*k));
}

http::awaitable<http::response> delete_api_key(http::request_context& ctx, services& s) {
    auto aw_4 = s.keys.remove(subject(ctx), *ctx.params.id("apikey_id"), detail::client_of(ctx));
    auto r = co_await std::move(aw_4);
    if (!r)
        co_return http::error_response(ctx, r.error());
    co_return http::no_content(ctx.req);
}

http::awaitable<http::response> list_audit(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw_5 = s.audit.list(subject(ctx), *page);
    auto r = co_await std::move(aw_5);
    if (!r)
        co_return http::error_response(ctx, r.error());
    boost::json::array items;
    for (auto const& e : r->items) {
        items.push_back(boost::json::object{{"id", e.id},
                                            {"user_id", e.user_id ? boost::json::value(*e.user_id) : nullptr},
                                            {"action", e.action},
                                            {"outcome", e.outcome},
                                            {"ip", e.ip},
                                            {"request_id", e.request_id},
                                            {"detail", e.detail},
                                            {"created_at", e.created_at}});
    }
    std::int64_t const last = r->items.empty() ? 0 : r->items.back().id;
    co_return detail::list_response(ctx, std::move(items), r->total, r->has_more, last, *page);
}

}  // namespace certctrl::handlers
