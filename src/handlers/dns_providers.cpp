// DNS providers on both prefixes: /apiv1/users/:user_id/dns-providers[/:dns_provider_id] (session) and
// /apiv1/me/dns-providers[/:dns_provider_id] (session or API key with dns_providers scopes).
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

// Settings as stored; each secret field only as a mask, so clients can see that it is set.
boost::json::object provider_json(domain::dns_provider const& p) {
    boost::json::object o{{"id", p.id},
                          {"user_id", p.user_id},
                          {"name", p.name},
                          {"kind", p.kind},
                          {"created_at", p.created_at},
                          {"updated_at", p.updated_at},
                          {"has_credentials", !p.enc_credentials.empty()}};
    for (auto const& kv : p.settings) {
        o[kv.key()] = kv.value();
    }
    for (auto const& secret : domain::dns_secret_fields(p.kind)) {
        o[secret] = p.enc_credentials.empty() ? "" : "********";
    }
    return o;
}

std::int64_t subject(http::request_context const& ctx) {
    return ctx.params.id("user_id").value_or(ctx.principal->who.id);
}

// The request body as a validated provider (create and replace take the same body).
result<domain::dns_provider_input> read_input(http::request_context const& ctx) {
    CERTCTRL_TRY(body, http::parse_json_object(ctx.req));
    return domain::parse_dns_provider_input(body);
}

std::int64_t provider_id(http::request_context const& ctx) {
    return ctx.params.id("dns_provider_id").value_or(0);
}

}  // namespace

void add_dns_provider_routes(http::router& r, identity_context& ids,
                             service::dns_provider_service& providers) {
    auto list = [&providers](http::request_context& ctx) -> http::awaitable<http::response> {
        auto page = detail::parse_page(ctx);
        if (!page)
            co_return http::json_error(ctx.req, page.error());
        auto aw = providers.list(subject(ctx), *page);
        auto rows = co_await std::move(aw);
        if (!rows)
            co_return http::error_response(ctx, rows.error());
        boost::json::array items;
        for (auto const& p : rows->items)
            items.push_back(provider_json(p));
        std::int64_t const last = rows->items.empty() ? 0 : rows->items.back().id;
        co_return detail::list_response(ctx, std::move(items), rows->total, rows->has_more, last, *page);
    };
    auto create = [&providers](http::request_context& ctx) -> http::awaitable<http::response> {
        auto input = read_input(ctx);
        if (!input)
            co_return http::json_error(ctx.req, input.error());
        auto aw = providers.create(subject(ctx), std::move(*input));
        auto created = co_await std::move(aw);
        if (!created)
            co_return http::error_response(ctx, created.error());
        co_return http::json_data(ctx.req, provider_json(*created), 201);
    };
    auto get = [&providers](http::request_context& ctx) -> http::awaitable<http::response> {
        auto aw = providers.get(subject(ctx), provider_id(ctx));
        auto p = co_await std::move(aw);
        if (!p)
            co_return http::error_response(ctx, p.error());
        co_return http::json_data(ctx.req, provider_json(*p));
    };
    auto put = [&providers](http::request_context& ctx) -> http::awaitable<http::response> {
        auto input = read_input(ctx);
        if (!input)
            co_return http::json_error(ctx.req, input.error());
        auto aw = providers.replace(subject(ctx), provider_id(ctx), std::move(*input));
        auto p = co_await std::move(aw);
        if (!p)
            co_return http::error_response(ctx, p.error());
        co_return http::json_data(ctx.req, provider_json(*p));
    };
    auto remove = [&providers](http::request_context& ctx) -> http::awaitable<http::response> {
        auto aw = providers.remove(subject(ctx), provider_id(ctx));
        auto done = co_await std::move(aw);
        if (!done)
            co_return http::error_response(ctx, done.error());
        co_return http::no_content(ctx.req);
    };
    for (std::string prefix : {"/apiv1/users/:user_id", "/apiv1/me"}) {
        add_guarded(r, ids, bh::verb::get, prefix + "/dns-providers", list);
        add_guarded(r, ids, bh::verb::post, prefix + "/dns-providers", create);
        add_guarded(r, ids, bh::verb::get, prefix + "/dns-providers/:dns_provider_id", get);
        add_guarded(r, ids, bh::verb::put, prefix + "/dns-providers/:dns_provider_id", put);
        add_guarded(r, ids, bh::verb::delete_, prefix + "/dns-providers/:dns_provider_id", remove);
    }
}

}  // namespace certctrl::handlers
