#pragma once
// ACME Renewal Information (RFC 9773): certificate identifiers and suggested renewal windows.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace certctrl::acme {

/// RFC 9773 §4.1: base64url(keyIdentifier of the Authority Key Identifier) "." base64url(the serial number's
/// DER content octets, leading zero included).
std::string ari_cert_id(std::string_view aki_key_id, std::string_view serial_octets);

/// The identifier of the first certificate in `pem`; nullopt when it does not parse or has no AKI key id.
std::optional<std::string> ari_cert_id_of(std::string const& pem);

struct renewal_window {
    std::int64_t start = 0;  // epoch seconds
    std::int64_t end = 0;
};

/// A RenewalInfo object {"suggestedWindow": {"start", "end"}} with RFC 3339 times; nullopt when malformed or
/// when end is not after start.
std::optional<renewal_window> parse_renewal_info(std::string const& body);

/// RFC 3339 date-time ("2025-01-02T04:00:00Z", fractional seconds and offsets allowed) as epoch seconds.
std::optional<std::int64_t> parse_rfc3339(std::string_view s);

}  // namespace certctrl::acme
