#pragma once

#include "certctrl/core/error.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace certctrl::domain {

/// A DNS provider for DNS-01 challenges. `settings` holds what may be shown (server, zone, URL...);
/// the secrets (TSIG secret, API token, HMAC secret) are only held sealed in `enc_credentials`.
struct dns_provider {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::string name;
    std::string kind;  // rfc2136 | cloudflare | webhook | manual
    boost::json::object settings;
    std::string enc_credentials;  // sealed JSON object; empty for manual
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
};

/// A validated create request: the shown settings and the secret credentials apart.
struct dns_provider_input {
    std::string name;
    std::string kind;
    boost::json::object settings;
    boost::json::object credentials;
};

/// Parses {name, kind, ...kind fields}: rfc2136 {server, port?, zone, tsig_key_name, tsig_algorithm?,
/// tsig_secret}, cloudflare {api_token, zone_id?}, webhook {url (https), hmac_secret}, manual {}. Errors:
/// bad_request naming the field.
result<dns_provider_input> parse_dns_provider_input(boost::json::object const& body);

/// The names of the secret fields of `kind` (shown masked in responses).
std::vector<std::string> dns_secret_fields(std::string const& kind);

}  // namespace certctrl::domain
