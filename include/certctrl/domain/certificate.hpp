#pragma once

#include "certctrl/core/error.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certctrl::domain {

/// A certificate record (agent contract 4.1). The encrypted private key never leaves the repository and
/// service layers; `has_key` tells whether one is stored.
struct certificate {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::string public_id;  // UUID
    std::string domain_name;
    std::vector<std::string> sans;  // always contains domain_name
    std::int64_t acct_id = 0;
    /// Further ACME accounts, tried in order when the CA of the one before fails or rate-limits an order.
    std::vector<std::int64_t> fallback_acct_ids;
    std::optional<std::int64_t> dns_provider_id;
    std::string key_algorithm = "ECDSA_P256";
    std::string key_dist_policy = "HYBRID";
    bool server_decrypt_export = false;
    bool auto_renew = true;
    bool client_auth = false;  // SELF_CA leaves also get EKU clientAuth
    /// How names are proven to an ACME CA: "" (auto), "http-01-agent", "dns-01-delegated" (see V013).
    std::string challenge;
    std::string cert_pem;  // leaf first, then issuers; "" until issued
    std::string csr_pem;
    std::string serial_number;
    bool self_signed = false;
    bool verified = false;
    std::string organization;
    std::string organizational_unit;
    std::string country;
    std::string state;
    std::string locality;
    std::int64_t not_before = 0;
    std::int64_t not_after = 0;
    bool has_key = false;
    bool has_certificate = false;  // one was issued (cert_pem may be left unread, as lists do without detail)
    std::int64_t row_version = 0;  // moved by every change of the stored row
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
};

/// A validated create request (either document's dialect).
struct certificate_input {
    std::string domain_name;
    std::vector<std::string> sans;  // deduplicated, domain_name first
    std::int64_t acct_id = 0;
    std::vector<std::int64_t> fallback_acct_ids;  // at most max_fallback_accounts, none equal to acct_id
    std::optional<std::int64_t> dns_provider_id;
    std::string key_algorithm = "ECDSA_P256";
    std::string policy = "HYBRID";
    bool auto_renew = true;
    bool client_auth = false;
    bool server_decrypt_export = false;
    std::string challenge;  // "" (auto), "http-01-agent", "dns-01-delegated"
    std::string organization;
    std::string organizational_unit;
    std::string country;
    std::string state;
    std::string locality;
};

/// At most this many fallback ACME accounts per certificate.
inline constexpr std::size_t max_fallback_accounts = 4;

/// At most this many names (domain plus SANs, after removing duplicates) per certificate.
inline constexpr std::size_t max_certificate_names = 100;

/// A DNS name as a certificate may carry it: lower-cased, without a trailing dot, RFC 1123 LDH labels of
/// 1-63 characters (at most 253 in all, at least two labels), IDNs as A-labels (`xn--`), `*` only as the
/// whole left-most label. Errors: bad_request naming `field` with the reason.
result<std::string> normalize_dns_name(std::string_view name, std::string const& field);

/// Parses `{domain_name|domain, sans?, acct_id|acme_account_id, fallback_acct_ids?, dns_provider_id?,
/// action?: "create", key_algorithm|key_type?, key_size?, policy|key_dist_policy?, auto_renew?, client_auth?,
/// server_decrypt_export?, challenge? ("auto" | "http-01-agent" | "dns-01-delegated"), organization?,
/// organizational_unit?, country?, state?, locality?}`. Errors:
/// bad_request naming the field.
result<certificate_input> parse_certificate_input(boost::json::object const& body);

/// PATCH/PUT of a certificate: `patch` (the create body's members, any subset) over `current`, validated as
/// a create would be. A new domain_name without sans keeps the other SANs. Members that never change
/// (id, public_id, user_id, ...) and unknown ones are refused, naming the field. Errors: bad_request.
result<certificate_input> merge_certificate_patch(certificate const& current,
                                                  boost::json::object const& patch);

/// The canonical policy name (HYBRID, MASTER_ONLY, DEVICE_REQUIRED) of a case-insensitive spelling.
std::optional<std::string> parse_key_policy(std::string_view s);

}  // namespace certctrl::domain
