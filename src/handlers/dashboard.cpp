// The browser dashboard (web/, embedded): GET / answers index.html with the asset version filled in; GET
// /ui/:version/:file answers an asset of this build, cached for a year (its URL changes with its content).
#include "certctrl/handlers/dashboard.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

namespace certctrl::handlers {

namespace bh = boost::beast::http;

namespace {

std::string_view content_type_of(std::string_view name) {
    auto const ends = [name](std::string_view ext) {
        return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
    };
    if (ends(".js")) {
        return "text/javascript; charset=utf-8";
    }
    if (ends(".css")) {
        return "text/css; charset=utf-8";
    }
    if (ends(".svg")) {
        return "image/svg+xml";
    }
    if (ends(".html")) {
        return "text/html; charset=utf-8";
    }
    return "application/octet-stream";
}

web_asset const* find_asset(std::string_view name) {
    for (auto const& a : web_assets()) {
        if (a.name == name) {
            return &a;
        }
    }
    return nullptr;
}

http::response page(http::request_context const& ctx, std::string_view type, std::string body) {
    http::response res{bh::status::ok, ctx.req.version()};
    res.set(bh::field::content_type, type);
    res.keep_alive(ctx.req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

std::string index_html() {
    auto const* index = find_asset("index.html");
    std::string html = index ? std::string(index->body) : std::string();
    std::string const marker = "{{ui}}";
    std::string const base = "/ui/" + dashboard_version();
    for (auto pos = html.find(marker); pos != std::string::npos; pos = html.find(marker, pos + base.size())) {
        html.replace(pos, marker.size(), base);
    }
    return html;
}

}  // namespace

std::string const& dashboard_version() {
    static std::string const version = [] {
        std::string all;
        for (auto const& a : web_assets()) {
            all += a.name;
            all += '\0';
            all += a.body;
            all += '\0';
        }
        return hex_encode(crypto::sha256(all)).substr(0, 16);
    }();
    return version;
}

std::string const& dashboard_csp() {
    static std::string const csp =
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; form-action 'none'; base-uri 'none'";
    return csp;
}

void add_dashboard_routes(http::router& r) {
    r.add(bh::verb::get, "/", [](http::request_context& ctx) -> http::awaitable<http::response> {
        static std::string const html = index_html();
        auto res = page(ctx, "text/html; charset=utf-8", html);
        res.set("Content-Security-Policy", dashboard_csp());
        res.set("X-Frame-Options", "DENY");
        res.set("Referrer-Policy", "no-referrer");
        res.set(bh::field::cache_control, "no-cache");
        co_return res;
    });
    r.add(bh::verb::get, "/ui/{version}/{file}",
          [](http::request_context& ctx) -> http::awaitable<http::response> {
              auto const version = ctx.params.str("version");
              auto const file = ctx.params.str("file");
              auto const* asset = file && *file != "index.html" ? find_asset(*file) : nullptr;
              if (!version || *version != dashboard_version() || asset == nullptr) {
                  co_return http::json_error(
                      ctx.req, make_error(errc::not_found, "No such dashboard file in this version"));
              }
              auto res = page(ctx, content_type_of(asset->name), std::string(asset->body));
              res.set(bh::field::cache_control, "public, max-age=31536000, immutable");
              co_return res;
          });
}

}  // namespace certctrl::handlers
