#include "certctrl/handlers/health.hpp"

#include "certctrl/http/request_context.hpp"
#include "certctrl/http/response.hpp"

#include <openssl/crypto.h>

namespace certctrl::handlers {

namespace bh = boost::beast::http;

void add_health_routes(http::router& r, repo::health_repository& health) {
    r.add(bh::verb::get, "/health", [](http::request_context& ctx) -> http::awaitable<http::response> {
        co_return http::json_data(ctx.req, boost::json::object{{"status", "ok"}});
    });
    r.add(bh::verb::get, "/ready", [&health](http::request_context& ctx) -> http::awaitable<http::response> {
        auto aw_1 = health.schema();
        auto st = co_await std::move(aw_1);
        if (!st) {
            co_return http::error_response(ctx, st.error());
        }
        if (!st->current) {
            co_return http::json_error(
                ctx.req,
                make_error(errc::unavailable, "Database schema is not at the version this server expects",
                           {{"schema_version", st->applied}, {"expected_version", st->known}}));
        }
        co_return http::json_data(ctx.req,
                                  boost::json::object{{"status", "ready"}, {"schema_version", st->applied}});
    });
}

void add_openapi_route(http::router& r) {
    r.add(bh::verb::get, "/openapi.json", [](http::request_context& ctx) -> http::awaitable<http::response> {
        http::response res{bh::status::ok, ctx.req.version()};
        res.set(bh::field::content_type, "application/json");
        res.set(bh::field::cache_control, "public, max-age=300");
        res.keep_alive(ctx.req.keep_alive());
        res.body() = std::string(openapi_document());
        res.prepare_payload();
        co_return res;
    });
}

void add_metrics_route(http::router& r, http::metrics& m, std::string token) {
    r.add(bh::verb::get, "/metrics",
          [&m, token = std::move(token)](http::request_context& ctx) -> http::awaitable<http::response> {
              if (!token.empty()) {
                  std::string const expected = "Bearer " + token;
                  auto it = ctx.req.find(bh::field::authorization);
                  bool const ok = it != ctx.req.end() && it->value().size() == expected.size() &&
                                  CRYPTO_memcmp(it->value().data(), expected.data(), expected.size()) == 0;
                  if (!ok) {
                      co_return http::json_error(
                          ctx.req, make_error(errc::unauthenticated, "A valid metrics token is required"));
                  }
              }
              http::response res{bh::status::ok, ctx.req.version()};
              res.set(bh::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
              res.keep_alive(ctx.req.keep_alive());
              res.body() = m.render();
              co_return res;
          });
}

}  // namespace certctrl::handlers
