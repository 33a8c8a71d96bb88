#pragma once
// The API's route table: every guarded route with its method, pattern, access rule and named handler, in one
// place (enforcement, docs/scopes.md and the access tests all read it).

#include "certctrl/config/config.hpp"
#include "certctrl/handlers/access.hpp"
#include "certctrl/handlers/rendered_certificates.hpp"
#include "certctrl/http/router.hpp"
#include "certctrl/service/acme_accounts.hpp"
#include "certctrl/service/device_sockets.hpp"
#include "certctrl/service/devices.hpp"
#include "certctrl/service/dns_providers.hpp"
#include "certctrl/service/domains.hpp"
#include "certctrl/service/identity.hpp"
#include "certctrl/service/issuance.hpp"
#include "certctrl/service/resources.hpp"
#include "certctrl/service/webhooks.hpp"

#include <boost/beast/http/verb.hpp>

#include <string>
#include <vector>

namespace certctrl::handlers {

/// What the handlers use, built by the composition root.
struct services {
    service::auth_service& auth;
    service::api_key_service& keys;
    service::rate_limiter& limits;
    service::audit_service& audit;
    service::device_auth_service& device_auth;
    service::device_service& devices;
    service::install_config_service& install_configs;
    service::certificate_service& certificates;
    service::ca_service& cas;
    service::issuance_service& issuance;
    service::acme_account_service& acme_accounts;
    service::dns_provider_service& dns_providers;
    service::domain_service& domains;
    service::device_sockets& sockets;
    service::webhook_service& webhooks;
    rendered_certificates& rendered;  // certificate list items kept as text
    config::config const& cfg;
    std::vector<std::string> trusted_origins;  // the server's own origin and auth.dashboard_origins
};

/// A named handler: it parses the request, calls one service and shapes the answer.
using handler = http::awaitable<http::response> (*)(http::request_context& ctx, services& s);

/// One row of the route table.
struct route {
    boost::beast::http::verb method;
    std::string pattern;
    access rule;
    handler target;
};

/// Every API route.
std::vector<route> const& route_table();

/// For a /apiv1/users/:user_id/... route: the access rule of its /apiv1/me/... twin (same method and shape),
/// with the id parameter renamed to the users/ pattern's, which an API key of :user_id is held to.
std::optional<access> key_rule_for(route const& r, std::vector<route> const& table);

/// Registers every route of the table on `r`, each behind the guard that enforces its rule.
void add_routes(http::router& r, services& s);

}  // namespace certctrl::handlers
