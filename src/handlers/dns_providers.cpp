// DNS providers on both prefixes: /apiv1/users/:user_id/dns-providers[/:dns_provider_id] (session) and
// /apiv1/me/dns-providers[/:dns_provider_id] (session or API key with dns_providers scopes).
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

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

// The request body as a validated provider (create and replace take the same body).
result<domain::dns_provider_input> read_input(http::request_context const& ctx) {
    CERTCTRL_TRY(body, http::parse_json_object(ctx.req));
    return domain::parse_dns_provider_input(body);
}

std::int64_t provider_id(http::request_context const& ctx) {
    return ctx.params.id("dns_provider_id").value_or(0);
}

}  // namespace

http::awaitable<http::response> list_dns_providers(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw = detail::respond_page(ctx, *page, s.dns_providers.list(detail::subject_user(ctx), *page),
                                   provider_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> create_dns_provider(http::request_context& ctx, services& s) {
    auto input = read_input(ctx);
    if (!input)
        co_return http::json_error(ctx.req, input.error());
    auto aw = detail::respond_one(ctx, s.dns_providers.create(detail::subject_user(ctx), std::move(*input)),
                                  provider_json, 201);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_dns_provider(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(ctx, s.dns_providers.get(detail::subject_user(ctx), provider_id(ctx)),
                                  provider_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> replace_dns_provider(http::request_context& ctx, services& s) {
    auto input = read_input(ctx);
    if (!input)
        co_return http::json_error(ctx.req, input.error());
    auto aw = detail::respond_one(
        ctx, s.dns_providers.replace(detail::subject_user(ctx), provider_id(ctx), std::move(*input)),
        provider_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> delete_dns_provider(http::request_context& ctx, services& s) {
    auto aw = detail::respond_done(ctx, s.dns_providers.remove(detail::subject_user(ctx), provider_id(ctx)));
    co_return co_await std::move(aw);
}

}  // namespace certctrl::handlers
