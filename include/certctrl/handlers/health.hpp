#pragma once

#include "certctrl/http/metrics.hpp"
#include "certctrl/http/router.hpp"
#include "certctrl/repo/health_repository.hpp"

#include <string>
#include <string_view>

namespace certctrl::handlers {

/// GET /health (the process answers) and GET /ready (database reachable and schema current, else 503).
void add_health_routes(http::router& r, repo::health_repository& health);

/// The OpenAPI 3 document of every route (docs/openapi.json, embedded at build time).
std::string_view openapi_document();

/// GET /openapi.json: openapi_document(), open to anyone.
void add_openapi_route(http::router& r);

/// GET /metrics in the Prometheus text format. With a non-empty `token`, requests must carry
/// `Authorization: Bearer <token>` (401 otherwise); with an empty one the route is open (use only on a
/// listener of its own).
void add_metrics_route(http::router& r, http::metrics& m, std::string token);

}  // namespace certctrl::handlers
