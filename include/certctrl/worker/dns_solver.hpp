#pragma once
// DNS-01 record publishers for the DNS provider kinds: rfc2136 (TSIG-signed dynamic update, then a check at
// the server that the record is served), webhook (signed POST of present/cleanup) and cloudflare (its v4
// API).

#include "certctrl/domain/dns_provider.hpp"
#include "certctrl/net/outbound.hpp"

#include "certctrl/service/compute.hpp"

#include <boost/asio/thread_pool.hpp>
#include <boost/json/object.hpp>

#include <memory>

namespace certctrl::worker {

class dns_solver {
  public:
    virtual ~dns_solver() = default;
    /// Publishes TXT `fqdn` = `value` and returns once the provider says it is served (or after the
    /// provider's propagation wait).
    virtual net::awaitable<result<bool>> present(std::string fqdn, std::string value) = 0;
    /// Removes what present() published. Failures are reported, never fatal to an issuance.
    virtual net::awaitable<result<bool>> cleanup(std::string fqdn, std::string value) = 0;
};

struct dns_solver_options {
    net::outbound_options http;
    std::string cloudflare_api = "https://api.cloudflare.com/client/v4";
    std::chrono::seconds propagation_wait{10};  // webhook and cloudflare: time given to the provider
    std::chrono::seconds step_timeout{120};     // rfc2136: the most present() or cleanup() may take in all
};

/// The solver for `provider` with its opened `credentials`. Errors: bad_request for kind manual (it cannot
/// publish records by itself) or settings it cannot use.
result<std::unique_ptr<dns_solver>> make_dns_solver(domain::dns_provider const& provider,
                                                    boost::json::object const& credentials,
                                                    service::bounded_pool& dns_io, dns_solver_options opts);

/// The webhook signature header value: "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
std::string webhook_signature(std::string const& secret, std::string const& timestamp,
                              std::string const& body);

}  // namespace certctrl::worker
