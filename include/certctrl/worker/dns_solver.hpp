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
    /// Publishes TXT `fqdn` = `value` and returns once it is served: by the RFC 2136 server, or by every
    /// authoritative name server of the zone (webhook, cloudflare; at most the propagation wait).
    virtual net::awaitable<result<bool>> present(std::string fqdn, std::string value) = 0;
    /// Removes what present() published. Failures are reported, never fatal to an issuance.
    virtual net::awaitable<result<bool>> cleanup(std::string fqdn, std::string value) = 0;
};

struct dns_solver_options {
    net::outbound_options http;
    std::string cloudflare_api = "https://api.cloudflare.com/client/v4";
    /// webhook and cloudflare: the longest wait for the zone's authoritative name servers to serve a record
    /// (all of them are asked directly every 250 ms); without a resolver, the fixed time given to the
    /// provider.
    std::chrono::seconds propagation_wait{10};
    std::string resolver;  // recursive resolver that finds a zone's name servers ("": none)
    unsigned resolver_port = 53;
    unsigned authoritative_port = 53;        // where those name servers answer
    std::chrono::seconds step_timeout{120};  // rfc2136: the most present() or cleanup() may take in all
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
