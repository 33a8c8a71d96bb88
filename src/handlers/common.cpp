#include "common.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/handlers/routes.hpp"
#include "certctrl/http/client.hpp"
#include "certctrl/http/response.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <charconv>

namespace certctrl::handlers::detail {

namespace bh = boost::beast::http;

service::client_info client_of(http::request_context const& ctx) {
    return {ctx.client_ip, std::string(ctx.req[bh::field::user_agent]).substr(0, 255), ctx.request_id};
}

std::optional<std::int64_t> parse_int(std::string const& s) {
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || ptr != s.data() + s.size() || s.empty()) {
        return std::nullopt;
    }
    return v;
}

result<repo::page_query> parse_page(http::request_context const& ctx) {
    repo::page_query p;
    auto offset = http::query_value(ctx.query, "offset");
    auto cursor = http::query_value(ctx.query, "cursor");
    if (offset && cursor) {
        return make_error(errc::bad_request, "use either offset or cursor, not both", {{"param", "cursor"}});
    }
    if (offset) {
        auto v = parse_int(*offset);
        if (!v || *v < 0) {
            return make_error(errc::bad_request, "offset must be an integer >= 0", {{"param", "offset"}});
        }
        if (*v > repo::max_page_offset) {
            return make_error(errc::bad_request,
                              "offset must be at most " + std::to_string(repo::max_page_offset) +
                                  "; page deeper with the cursor of the previous page (pagination.cursor)",
                              {{"param", "offset"}, {"max", repo::max_page_offset}});
        }
        p.offset = *v;
    }
    if (auto t = http::query_value(ctx.query, "total")) {
        if (*t != "true" && *t != "false") {
            return make_error(errc::bad_request, "total must be true or false", {{"param", "total"}});
        }
        p.with_total = *t == "true";
    }
    if (cursor && !cursor->empty()) {
        auto bad =
            make_error(errc::bad_request, "cursor is not one this server issued", {{"param", "cursor"}});
        auto raw = base64_decode(*cursor);
        if (!raw) {
            return bad;
        }
        boost::system::error_code ec;
        auto v = boost::json::parse(*raw, ec);
        if (ec || !v.is_object() || !v.get_object().contains("id") || !v.at("id").is_int64() ||
            v.at("id").as_int64() <= 0) {
            return bad;
        }
        p.before_id = v.at("id").as_int64();
    }
    if (auto l = http::query_value(ctx.query, "limit")) {
        auto v = parse_int(*l);
        if (!v || *v < 1 || *v > 1000) {
            return make_error(errc::bad_request, "limit must be an integer in 1..1000", {{"param", "limit"}});
        }
        p.limit = *v;
    }
    return p;
}

http::response list_response(http::request_context const& ctx, boost::json::array const& items,
                             std::optional<std::int64_t> total, bool has_more, std::int64_t last_id,
                             repo::page_query const& page) {
    return list_response(ctx, boost::json::serialize(items), items.size(), total, has_more, last_id, page);
}

http::response list_response(http::request_context const& ctx, std::string_view items_json, std::size_t count,
                             std::optional<std::int64_t> total, bool has_more, std::int64_t last_id,
                             repo::page_query const& page) {
    // Without ?total=true the total is known only where the page shows it: the last page of an offset
    // listing.
    if (!total && !has_more && !page.before_id && (page.offset == 0 || count > 0)) {
        total = page.offset + static_cast<std::int64_t>(count);
    }
    std::string body;
    body.reserve(items_json.size() + 160);
    http::json_writer w(body);
    w.begin_object().key("data").raw(items_json);
    w.key("meta").begin_object().member("offset", page.offset).member("limit", page.limit);
    if (total) {
        w.member("total", *total);
    }
    w.end_object();
    w.key("pagination").begin_object().member("has_more", has_more).key("cursor");
    if (has_more) {
        w.value(base64_encode("{\"id\":" + std::to_string(last_id) + "}"));
    } else {
        w.null();
    }
    w.end_object().end_object();
    auto res = http::json_text(ctx.req, std::move(body), 200);
    res.set(bh::field::cache_control, "no-store");
    return res;
}

result<std::string> required_string(boost::json::object const& o, char const* field, std::size_t max) {
    auto const* v = o.if_contains(field);
    if (v == nullptr) {
        return make_error(errc::bad_request, std::string(field) + " is required", {{"field", field}});
    }
    if (!v->is_string()) {
        return make_error(errc::bad_request, std::string(field) + " must be a string", {{"field", field}});
    }
    if (v->get_string().size() > max) {
        return make_error(errc::bad_request,
                          std::string(field) + " must be at most " + std::to_string(max) + " bytes",
                          {{"field", field}});
    }
    return std::string(v->get_string());
}

result<std::string> optional_string(boost::json::object const& o, char const* field, std::size_t max) {
    if (!o.contains(field)) {
        return std::string();
    }
    return required_string(o, field, max);
}

http::awaitable<void> audit_key_release(http::request_context& ctx, services& s, std::int64_t cert_id,
                                        char const* how) {
    std::int64_t const owner = subject_user(ctx);
    boost::json::object detail{{"cert_id", cert_id}, {"how", how}};
    if (ctx.principal) {
        auto const& p = *ctx.principal;
        detail["via"] = p.is_device() ? "device" : p.is_api_key() ? "api_key" : "session";
        if (p.is_device()) {
            detail["device_id"] = p.device_id;
        }
        if (p.api_key_id) {
            detail["api_key_id"] = *p.api_key_id;
        }
        if (p.who.id != owner) {
            detail["by_user_id"] = p.who.id;  // an admin acting for the owner
        }
    }
    auto aw = s.audit.record(owner, "key.release", "ok", client_of(ctx), std::move(detail));
    co_await std::move(aw);
}

std::optional<std::string> missing_export_scope(http::request_context const& ctx, services const& s,
                                                std::int64_t cert_id) {
    if (!ctx.principal || !ctx.principal->is_api_key()) {
        return std::nullopt;
    }
    char const* action = s.cfg.auth.export_requires_export_action ? "export" : "read";
    if (domain::allows(ctx.principal->permissions, "certificates", cert_id, action)) {
        return std::nullopt;
    }
    return "certificates:" + std::to_string(cert_id) + "[" + action + "]";
}

std::int64_t subject_user(http::request_context const& ctx) {
    return ctx.params.id("user_id").value_or(ctx.principal ? ctx.principal->who.id : 0);
}

std::int64_t cert_param(http::request_context const& ctx) {
    return path_id(ctx, "cert_id", "certificate_id");
}

std::int64_t path_id(http::request_context const& ctx, std::string_view a, std::string_view b) {
    return ctx.params.id(a).value_or(ctx.params.id(b).value_or(0));
}

http::awaitable<http::response> respond_done(http::request_context& ctx, repo::task<bool> done) {
    auto r = co_await std::move(done);
    if (!r) {
        co_return http::error_response(ctx, r.error());
    }
    co_return http::no_content(ctx.req);
}

boost::json::object device_json(domain::device const& d) {
    return {{"id", d.id},
            {"user_id", d.user_id},
            {"device_public_id", d.device_public_id},
            {"name", d.name},
            {"description", d.description},
            {"device_type", d.device_type},
            {"platform", d.platform},
            {"model", d.model},
            {"app_version", d.app_version},
            {"ip", d.ip},
            {"user_agent", d.user_agent},
            {"status", d.status},
            {"agent_version", d.agent_version},
            {"has_public_key", d.has_public_key},
            {"created_at", d.created_at},
            {"last_seen_at", d.last_seen_at}};
}

std::optional<std::int64_t> int_of(boost::json::value const* v) {
    if (!v) {
        return std::nullopt;
    }
    if (v->is_int64()) {
        return v->get_int64();
    }
    if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
        return static_cast<std::int64_t>(v->get_uint64());
    }
    if (v->is_string()) {
        std::int64_t n = 0;
        auto s = v->get_string();
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec == std::errc() && p == s.data() + s.size()) {
            return n;
        }
    }
    return std::nullopt;
}

std::string str_or(boost::json::object const& o, char const* name) {
    auto const* v = o.if_contains(name);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

bool wants_zip(http::request_context const& ctx) {
    if (auto f = http::query_value(ctx.query, "format"); f && *f == "zip") {
        return true;
    }
    auto accept = ctx.req.find(boost::beast::http::field::accept);
    return accept != ctx.req.end() && accept->value().find("application/zip") != std::string_view::npos;
}

}  // namespace certctrl::handlers::detail
