// Domain ownership: a user's claims (/apiv1/me/domains, /apiv1/users/:user_id/domains) and an admin's
// transfers and shares (/apiv1/admin/domains/{name}).
#include "certctrl/handlers/access.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

namespace certctrl::handlers {

namespace {

// A claim as its user sees it: the verification record and value only for the owner.
boost::json::object claim_json(domain::domain_claim const& c, std::int64_t viewer, bool admin_view) {
    bool const owner = c.user_id == viewer;
    boost::json::object o{{"name", c.name},
                          {"wildcard", domain::is_wildcard(c.name)},
                          {"owned", owner},
                          {"verified", c.verified_at.has_value()},
                          {"created_at", c.created_at}};
    if (c.verified_at) {
        o["verified_at"] = *c.verified_at;
    }
    if (owner || admin_view) {
        o["verification"] = {{"record", domain::verification_record(c.name)}, {"value", c.verify_token}};
        boost::json::array shared;
        for (auto id : c.shared_with) {
            shared.push_back(id);
        }
        o["shared_with"] = std::move(shared);
    }
    if (admin_view) {
        o["user_id"] = c.user_id;
    }
    return o;
}

std::string name_param(http::request_context const& ctx) {
    return ctx.params.str("name").value_or("");
}

// {"user_id": N} (a number or a string of digits). Errors: bad_request.
result<std::int64_t> body_user_id(http::request_context const& ctx) {
    CERTCTRL_TRY(body, http::parse_json_object(ctx.req));
    auto id = detail::int_of(body.if_contains("user_id"));
    if (!id || *id <= 0) {
        return make_error(errc::bad_request, "user_id must be a user id", {{"field", "user_id"}});
    }
    return *id;
}

}  // namespace

http::awaitable<http::response> list_domains(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page) {
        co_return http::json_error(ctx.req, page.error());
    }
    if (page->before_id) {
        co_return http::json_error(
            ctx.req, make_error(errc::bad_request, "Domain claims are listed by name: use offset and limit",
                                {{"param", "cursor"}}));
    }
    std::int64_t const user = detail::subject_user(ctx);
    auto aw = s.domains.list(user, *page);
    auto rows = co_await std::move(aw);
    if (!rows) {
        co_return http::error_response(ctx, rows.error());
    }
    boost::json::array items;
    for (auto const& c : rows->items) {
        items.push_back(claim_json(c, user, false));
    }
    co_return detail::list_response(ctx, items, rows->total, rows->has_more, 0, *page);
}

http::awaitable<http::response> release_domain(http::request_context& ctx, services& s) {
    auto aw = detail::respond_done(
        ctx, s.domains.release(detail::subject_user(ctx), name_param(ctx), detail::client_of(ctx)));
    co_return co_await std::move(aw);
}

http::awaitable<http::response> verify_domain(http::request_context& ctx, services& s) {
    std::int64_t const user = detail::subject_user(ctx);
    auto aw =
        detail::respond_one(ctx, s.domains.verify(user, name_param(ctx)),
                            [user](domain::domain_claim const& c) { return claim_json(c, user, false); });
    co_return co_await std::move(aw);
}

http::awaitable<http::response> admin_get_domain(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(ctx, s.domains.get(name_param(ctx)),
                                  [](domain::domain_claim const& c) { return claim_json(c, 0, true); });
    co_return co_await std::move(aw);
}

http::awaitable<http::response> admin_transfer_domain(http::request_context& ctx, services& s) {
    auto to = body_user_id(ctx);
    if (!to) {
        co_return http::json_error(ctx.req, to.error());
    }
    auto aw = detail::respond_one(
        ctx, s.domains.transfer(ctx.principal->who.id, name_param(ctx), *to, detail::client_of(ctx)),
        [](domain::domain_claim const& c) { return claim_json(c, 0, true); });
    co_return co_await std::move(aw);
}

http::awaitable<http::response> admin_share_domain(http::request_context& ctx, services& s) {
    auto to = body_user_id(ctx);
    if (!to) {
        co_return http::json_error(ctx.req, to.error());
    }
    auto aw = detail::respond_one(
        ctx, s.domains.share(ctx.principal->who.id, name_param(ctx), *to, detail::client_of(ctx)),
        [](domain::domain_claim const& c) { return claim_json(c, 0, true); });
    co_return co_await std::move(aw);
}

http::awaitable<http::response> admin_unshare_domain(http::request_context& ctx, services& s) {
    auto aw = detail::respond_done(
        ctx, s.domains.unshare(ctx.principal->who.id, name_param(ctx), ctx.params.id("user_id").value_or(0),
                               detail::client_of(ctx)));
    co_return co_await std::move(aw);
}

}  // namespace certctrl::handlers
