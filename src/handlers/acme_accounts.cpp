// ACME accounts on both prefixes: /apiv1/users/:user_id/acme-accounts[/:acct_id] (session) and
// /apiv1/me/acme-accounts[/:acme_account_id] (session or API key with acme_accounts scopes).
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

template <class T>
boost::json::value opt(std::optional<T> const& v) {
    return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

// The record shape of agent contract 4.3; keys and EAB HMAC are never included.
boost::json::object account_json(domain::acme_account const& a) {
    return {{"id", a.id},
            {"user_id", a.user_id},
            {"name", a.name},
            {"email", a.email},
            {"provider", a.provider},
            {"directory_url", a.directory_url},
            {"kid", opt(a.kid)},
            {"ca_id", opt(a.ca_id)},
            {"key_algorithm", a.key_algorithm},
            {"eab_kid", opt(a.eab_kid)},
            {"has_eab", a.eab_kid.has_value()},
            {"leaf_key_algorithm", opt(a.leaf_key_algorithm)},
            {"leaf_rsa_bits", opt(a.leaf_rsa_bits)},
            {"leaf_ec_curve", opt(a.leaf_ec_curve)},
            {"cert_valid_seconds", opt(a.cert_valid_seconds)},
            {"created_at", a.created_at},
            {"updated_at", a.updated_at}};
}

std::int64_t account_id(http::request_context const& ctx) {
    return ctx.params.id("acct_id").value_or(ctx.params.id("acme_account_id").value_or(0));
}

}  // namespace

http::awaitable<http::response> list_acme_accounts(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw = detail::respond_page(ctx, *page, s.acme_accounts.list(detail::subject_user(ctx), *page),
                                   account_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> create_acme_account(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto input = domain::parse_acme_account_input(*body);
    if (!input)
        co_return http::json_error(ctx.req, input.error());
    auto aw = detail::respond_one(ctx, s.acme_accounts.create(detail::subject_user(ctx), std::move(*input)),
                                  account_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_acme_account(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(ctx, s.acme_accounts.get(detail::subject_user(ctx), account_id(ctx)),
                                  account_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> update_acme_account(http::request_context& ctx, services& s) {
    auto body = http::parse_json_object(ctx.req);
    if (!body)
        co_return http::json_error(ctx.req, body.error());
    auto aw = detail::respond_one(
        ctx, s.acme_accounts.update(detail::subject_user(ctx), account_id(ctx), std::move(*body)),
        account_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> delete_acme_account(http::request_context& ctx, services& s) {
    auto aw = detail::respond_done(ctx, s.acme_accounts.remove(detail::subject_user(ctx), account_id(ctx)));
    co_return co_await std::move(aw);
}

}  // namespace certctrl::handlers
