#pragma once
// Domain ownership for certificates from public ACME CAs. A user claims the names of their ACME certificates;
// the first claim wins. An exact name ("www.example.com") claims that name; a wildcard ("*.example.com")
// claims every name below example.com (any depth), so no other user can hold a name the wildcard's owner
// serves. SELF_CA certificates claim nothing (their names are private to their user).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certctrl::domain {

struct domain_claim {
    std::string name;  // as claimed, lower-case: "example.com" or "*.example.com"
    std::int64_t user_id = 0;
    std::string verify_token;  // the TXT value that proves control (strict mode)
    std::optional<std::int64_t> verified_at;
    std::int64_t created_at = 0;
    std::vector<std::int64_t> shared_with;  // users who may use the name too
};

/// The name without a leading "*." label.
std::string_view claim_base(std::string_view name);
/// True for "*.<base>".
bool is_wildcard(std::string_view name);
/// The labels of `base` in reverse order, each followed by a dot: "www.example.com" -> "com.example.www.".
/// Names below `base` are exactly those whose reversed form starts with it and is longer.
std::string reversed_name(std::string_view base);
/// The reversed forms of every proper ancestor of `base`, shortest first: "a.b.c" -> {"c.", "c.b."}.
std::vector<std::string> reversed_ancestors(std::string_view base);
/// "_certctrl-challenge.<base>": where a TXT record proves control of `name` (strict mode).
std::string verification_record(std::string_view name);

}  // namespace certctrl::domain
