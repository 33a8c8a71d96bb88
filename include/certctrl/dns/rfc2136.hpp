#pragma once
// RFC 2136 dynamic updates with TSIG (RFC 8945), through ldns. Blocking: call from a worker thread.

#include "certctrl/core/error.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace certctrl::dns {

struct update_target {
    std::string server;  // host name or IP address
    unsigned port = 53;
    std::string zone;  // e.g. example.com
    std::string tsig_key_name;
    std::string tsig_algorithm = "hmac-sha256";
    std::string tsig_secret;  // base64
    std::chrono::seconds timeout{10};
    /// Why the server's address may not be used (the egress policy), or nothing; unset: any address.
    std::function<std::optional<std::string>(std::string const& numeric_address)> refuse_address;
};

/// Adds (`add`) or deletes the TXT record `fqdn` = `value` with a TSIG-signed update. Errors:
/// external_service naming the server and the DNS response code (e.g. NOTAUTH for a bad key, REFUSED).
result<bool> update_txt(update_target const& t, std::string const& fqdn, std::string const& value, bool add);
/// update_txt() for any record type: `rdata` in presentation form (e.g. "target.example.net." for a CNAME).
result<bool> update_record(update_target const& t, std::string const& fqdn, std::string const& type,
                           std::string const& rdata, bool add);

/// The TXT strings of `fqdn` as `server` answers them (asking for recursion when `recursive`). Errors:
/// external_service.
result<std::vector<std::string>> query_txt(
    std::string const& server, unsigned port, std::string const& fqdn,
    std::chrono::seconds timeout = std::chrono::seconds(5), bool recursive = false,
    std::function<std::optional<std::string>(std::string const&)> const& refuse_address = {});

/// The CNAME targets of `fqdn` (lower-case, without the trailing dot) as `server` answers them. Errors:
/// external_service.
result<std::vector<std::string>> query_cname(std::string const& server, unsigned port,
                                             std::string const& fqdn,
                                             std::chrono::seconds timeout = std::chrono::seconds(5),
                                             bool recursive = true);

/// The addresses of the name servers of the zone that holds `fqdn` (the closest enclosing name with NS
/// records), asked of `resolver` with recursion. Errors: external_service.
result<std::vector<std::string>> authoritative_servers(
    std::string const& resolver, unsigned port, std::string const& fqdn,
    std::chrono::seconds timeout = std::chrono::seconds(5));
/// host[:port] or [v6]:port of a resolver ("" = system_resolver()), as host and port (53 by default). The
/// text is validated by the configuration already.
std::pair<std::string, unsigned> resolver_address(std::string const& spec);
/// The TXT strings of the answer section of a DNS message in wire format (what query_txt reads from a
/// server's answer). Errors: external_service (not a DNS message).
result<std::vector<std::string>> txt_answers_of_wire(std::string_view wire);

/// The first nameserver of /etc/resolv.conf, or "127.0.0.1".
std::string system_resolver();

}  // namespace certctrl::dns
