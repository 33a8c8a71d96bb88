// Webhook subscriptions on both prefixes: /apiv1/users/:user_id/webhooks[...] (session) and
// /apiv1/me/webhooks[...] (session or API key with webhooks scopes), with their delivery log.
#include "certctrl/http/client.hpp"
#include "certctrl/http/json_body.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include "common.hpp"
#include "handlers.hpp"

#include <boost/json/parse.hpp>

#include <algorithm>

namespace certctrl::handlers {

namespace {

using detail::subject_user;

// A subscription as shown: never its secrets, only when the previous one stops signing.
boost::json::object webhook_json(domain::webhook const& h) {
    boost::json::array events;
    for (auto const& e : h.events) {
        events.emplace_back(e);
    }
    boost::json::value certs = nullptr;
    if (h.cert_ids) {
        boost::json::array ids;
        for (auto id : *h.cert_ids) {
            ids.emplace_back(id);
        }
        certs = std::move(ids);
    }
    boost::json::value previous_until = nullptr;
    if (!h.enc_previous_secret.empty() && h.previous_secret_until) {
        previous_until = *h.previous_secret_until;
    }
    return boost::json::object{{"id", h.id},
                               {"user_id", h.user_id},
                               {"url", h.url},
                               {"description", h.description},
                               {"events", std::move(events)},
                               {"certificate_ids", certs},
                               {"cert_ids", certs},
                               {"enabled", h.enabled},
                               {"previous_secret_expires_at", previous_until},
                               {"created_at", h.created_at},
                               {"updated_at", h.updated_at}};
}

// Create and rotate: the one time the secret is shown.
boost::json::object with_secret_json(service::webhook_with_secret const& h) {
    auto o = webhook_json(h.hook);
    o["secret"] = h.secret;
    return o;
}

boost::json::value opt(std::optional<std::int64_t> v) {
    return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

boost::json::object delivery_json(domain::webhook_delivery const& d) {
    boost::json::object o{
        {"id", d.id},
        {"webhook_id", d.webhook_id},
        {"event_id", d.event_id},
        {"event_type", d.event_type},
        {"status", d.status},
        {"attempts", d.attempts},
        {"next_attempt_at",
         d.status == "PENDING" ? boost::json::value(d.next_attempt_ms / 1000) : boost::json::value(nullptr)},
        {"expires_at", d.expires_at},
        {"last_status_code", opt(d.last_status_code)},
        {"last_error", d.last_error.empty() ? boost::json::value(nullptr) : boost::json::value(d.last_error)},
        {"last_attempt_at", opt(d.last_attempt_at)},
        {"completed_at", opt(d.completed_at)},
        {"created_at", d.created_at}};
    if (!d.payload.empty()) {
        boost::system::error_code ec;
        auto v = boost::json::parse(d.payload, ec);
        o["payload"] = ec ? boost::json::value(d.payload) : std::move(v);
    }
    return o;
}

std::int64_t hook_id(http::request_context const& ctx) {
    return ctx.params.id("webhook_id").value_or(0);
}

std::int64_t delivery_id(http::request_context const& ctx) {
    return ctx.params.id("delivery_id").value_or(0);
}

// Awaits `op`, writes the audit record `action` for the webhook it returns, and answers it with `to_json`.
template <class T, class ToJson>
http::awaitable<http::response> audited(http::request_context& ctx, services& s, repo::task<T> op,
                                        std::string action, ToJson to_json, unsigned status = 200) {
    auto r = co_await std::move(op);
    if (!r) {
        co_return http::error_response(ctx, r.error());
    }
    domain::webhook const& h = [&]() -> domain::webhook const& {
        if constexpr (std::is_same_v<T, domain::webhook>) {
            return *r;
        } else {
            return r->hook;
        }
    }();
    boost::json::object record{{"webhook_id", h.id}, {"events", h.events.size()}, {"enabled", h.enabled}};
    auto aw_audit =
        s.audit.record(subject_user(ctx), std::move(action), "ok", detail::client_of(ctx), std::move(record));
    co_await std::move(aw_audit);
    co_return detail::one_response(ctx, *r, to_json, status);
}

result<domain::webhook_input> read_input(http::request_context const& ctx, services const& s, bool create) {
    CERTCTRL_TRY(body, http::parse_json_object(ctx.req));
    return domain::parse_webhook_input(body, create, s.cfg.webhooks.allow_http);
}

}  // namespace

http::awaitable<http::response> list_webhooks(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    auto aw = detail::respond_page(ctx, *page, s.webhooks.list(subject_user(ctx), *page), webhook_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> create_webhook(http::request_context& ctx, services& s) {
    auto input = read_input(ctx, s, true);
    if (!input)
        co_return http::json_error(ctx.req, input.error());
    auto aw = audited(ctx, s, s.webhooks.create(subject_user(ctx), std::move(*input)), "webhook.create",
                      with_secret_json, 201);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_webhook(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(ctx, s.webhooks.get(subject_user(ctx), hook_id(ctx)), webhook_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> update_webhook(http::request_context& ctx, services& s) {
    auto input = read_input(ctx, s, false);
    if (!input)
        co_return http::json_error(ctx.req, input.error());
    auto aw = audited(ctx, s, s.webhooks.update(subject_user(ctx), hook_id(ctx), std::move(*input)),
                      "webhook.update", webhook_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> delete_webhook(http::request_context& ctx, services& s) {
    std::int64_t const id = hook_id(ctx);
    auto aw = s.webhooks.remove(subject_user(ctx), id);
    auto removed = co_await std::move(aw);
    if (!removed) {
        co_return http::error_response(ctx, removed.error());
    }
    boost::json::object record{{"webhook_id", id}};
    auto aw_audit =
        s.audit.record(subject_user(ctx), "webhook.delete", "ok", detail::client_of(ctx), std::move(record));
    co_await std::move(aw_audit);
    co_return http::no_content(ctx.req);
}

http::awaitable<http::response> rotate_webhook_secret(http::request_context& ctx, services& s) {
    // A day for receivers to take the new secret (at most what the server allows), unless told otherwise.
    std::int64_t overlap = std::min<std::int64_t>(86400, s.cfg.webhooks.rotation_overlap_max_seconds);
    if (!ctx.req.body().empty()) {
        auto body = http::parse_json_object(ctx.req);
        if (!body)
            co_return http::json_error(ctx.req, body.error());
        for (auto const& kv : *body) {
            if (kv.key() != "overlap_seconds") {
                co_return http::json_error(
                    ctx.req, make_error(errc::bad_request,
                                        "unknown member '" + std::string(kv.key().substr(0, 64)) + "'",
                                        {{"field", std::string(kv.key().substr(0, 64))}}));
            }
        }
        if (auto const* v = body->if_contains("overlap_seconds")) {
            if (!v->is_int64()) {
                co_return http::json_error(ctx.req,
                                           make_error(errc::bad_request, "overlap_seconds must be an integer",
                                                      {{"field", "overlap_seconds"}}));
            }
            overlap = v->get_int64();
        }
    }
    auto aw = audited(ctx, s, s.webhooks.rotate(subject_user(ctx), hook_id(ctx), overlap),
                      "webhook.rotate_secret", with_secret_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> ping_webhook(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(ctx, s.webhooks.ping(subject_user(ctx), hook_id(ctx)), delivery_json, 202);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> list_webhook_deliveries(http::request_context& ctx, services& s) {
    auto page = detail::parse_page(ctx);
    if (!page)
        co_return http::json_error(ctx.req, page.error());
    std::string status = http::query_value(ctx.query, "status").value_or("");
    std::transform(status.begin(), status.end(), status.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (!status.empty() && status != "PENDING" && status != "SUCCESS" && status != "FAILED") {
        co_return http::json_error(ctx.req,
                                   make_error(errc::bad_request, "status must be PENDING, SUCCESS or FAILED",
                                              {{"param", "status"}}));
    }
    auto aw = detail::respond_page(
        ctx, *page, s.webhooks.deliveries(subject_user(ctx), hook_id(ctx), status, *page), delivery_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> get_webhook_delivery(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(ctx, s.webhooks.delivery(subject_user(ctx), hook_id(ctx), delivery_id(ctx)),
                                  delivery_json);
    co_return co_await std::move(aw);
}

http::awaitable<http::response> redeliver_webhook_delivery(http::request_context& ctx, services& s) {
    auto aw = detail::respond_one(
        ctx, s.webhooks.redeliver(subject_user(ctx), hook_id(ctx), delivery_id(ctx)), delivery_json, 202);
    co_return co_await std::move(aw);
}

}  // namespace certctrl::handlers
