#include "certctrl/domain/certificate.hpp"

#include "fields.hpp"

#include <algorithm>

namespace certctrl::domain {

namespace {

using namespace fields;

bool ldh(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

// The canonical key algorithm of `key_algorithm`/`key_type` (+ `key_size`/`rsa_bits`/`curve`).
result<std::string> cert_key_algorithm(boost::json::object const& body) {
    CERTCTRL_TRY(v, either(body, "key_algorithm", "key_type"));
    CERTCTRL_TRY(size, get_int(body, "key_size", 1, 1 << 20));
    std::string const field = body.contains("key_algorithm") ? "key_algorithm" : "key_type";
    if (v != nullptr && !v->is_string()) {
        return bad(field, field +
                              " must be a string: ECDSA (P-256), ECDSA_P384, RSA (2048), RSA_3072 or "
                              "RSA_4096");
    }
    std::string const a = v == nullptr ? "ECDSA" : upper(std::string(v->get_string()));
    if (a == "ECDSA" || a == "EC") {
        if (size && *size != 256 && *size != 384) {
            return bad("key_size", "key_size of an ECDSA key must be 256 or 384");
        }
        return std::string(size && *size == 384 ? "ECDSA_P384" : "ECDSA_P256");
    }
    if (a == "RSA") {
        std::int64_t const bits = size.value_or(2048);
        if (bits != 2048 && bits != 3072 && bits != 4096) {
            return bad("key_size", "key_size of an RSA key must be 2048, 3072 or 4096");
        }
        return "RSA_" + std::to_string(bits);
    }
    for (auto [spelling, canonical] :
         std::initializer_list<std::pair<char const*, char const*>>{{"ECDSA_P256", "ECDSA_P256"},
                                                                    {"P-256", "ECDSA_P256"},
                                                                    {"P256", "ECDSA_P256"},
                                                                    {"ECDSA_P384", "ECDSA_P384"},
                                                                    {"P-384", "ECDSA_P384"},
                                                                    {"P384", "ECDSA_P384"},
                                                                    {"RSA_2048", "RSA_2048"},
                                                                    {"RSA2048", "RSA_2048"},
                                                                    {"RSA_3072", "RSA_3072"},
                                                                    {"RSA3072", "RSA_3072"},
                                                                    {"RSA_4096", "RSA_4096"},
                                                                    {"RSA4096", "RSA_4096"}}) {
        if (a == spelling) {
            return std::string(canonical);
        }
    }
    return bad(field, field + " must be ECDSA (P-256), ECDSA_P384, RSA (2048), RSA_3072 or RSA_4096");
}

result<std::int64_t> positive_id(boost::json::value const* v, std::string const& field, bool required) {
    if (v == nullptr) {
        if (required) {
            return bad(field, field + " is required (a positive integer id)");
        }
        return std::int64_t{0};
    }
    if (!v->is_int64() || v->get_int64() <= 0) {
        return bad(field, field + " must be a positive integer id");
    }
    return v->get_int64();
}

}  // namespace

result<std::string> normalize_dns_name(std::string_view name, std::string const& field) {
    auto fail = [&](std::string const& why) {
        return bad(field,
                   field + " '" + std::string(name.substr(0, 80)) + "' is not a valid DNS name: " + why);
    };
    std::string s = lower(std::string(name));
    if (!s.empty() && s.back() == '.') {
        s.pop_back();
    }
    if (s.empty()) {
        return fail("it is empty");
    }
    if (s.size() > 253) {
        return fail("longer than 253 characters");
    }
    if (std::any_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x80; })) {
        return fail("internationalised names must be sent as A-labels (xn--...)");
    }
    std::vector<std::string> labels;
    std::size_t start = 0;
    while (true) {
        auto dot = s.find('.', start);
        labels.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
        if (dot == std::string::npos) {
            break;
        }
        start = dot + 1;
    }
    if (labels.size() < 2) {
        return fail("it needs at least two labels (e.g. example.com)");
    }
    for (std::size_t i = 0; i < labels.size(); ++i) {
        std::string const& l = labels[i];
        if (l.empty()) {
            return fail("empty label");
        }
        if (l == "*") {
            if (i != 0) {
                return fail("'*' is only allowed as the whole left-most label");
            }
            if (labels.size() < 3) {
                return fail("a wildcard needs at least two labels after '*'");
            }
            continue;
        }
        if (l.size() > 63) {
            return fail("label longer than 63 characters");
        }
        if (l.find('*') != std::string::npos) {
            return fail("'*' is only allowed as the whole left-most label");
        }
        if (!std::all_of(l.begin(), l.end(), ldh)) {
            return fail("labels may contain only letters, digits and '-'");
        }
        if (l.front() == '-' || l.back() == '-') {
            return fail("labels must not begin or end with '-'");
        }
        if (l.size() >= 4 && l[2] == '-' && l[3] == '-' && l.rfind("xn--", 0) != 0) {
            return fail("'--' in the third and fourth position is reserved for A-labels (xn--)");
        }
    }
    if (std::all_of(labels.back().begin(), labels.back().end(),
                    [](unsigned char c) { return std::isdigit(c); })) {
        return fail("the top-level label is numeric (IP addresses are not DNS names)");
    }
    return s;
}

std::optional<std::string> parse_key_policy(std::string_view s) {
    std::string const u = upper(std::string(s));
    if (u == "HYBRID" || u == "MASTER_ONLY" || u == "DEVICE_REQUIRED") {
        return u;
    }
    return std::nullopt;
}

result<certificate_input> parse_certificate_input(boost::json::object const& body) {
    certificate_input in;
    CERTCTRL_TRY(action, get_string(body, "action", 32));
    if (action && *action != "create") {
        return bad("action", "action must be \"create\" (issuing is POST .../certificates/:id/issues)");
    }
    CERTCTRL_TRY(domain, either(body, "domain_name", "domain"));
    std::string const domain_field = body.contains("domain_name") ? "domain_name" : "domain";
    if (domain == nullptr) {
        return bad("domain_name", "domain_name (or domain) is required");
    }
    if (!domain->is_string()) {
        return bad(domain_field, domain_field + " must be a string");
    }
    CERTCTRL_TRY(primary, normalize_dns_name(domain->get_string(), domain_field));
    in.domain_name = primary;
    in.sans.push_back(primary);
    if (auto const* sans = body.if_contains("sans"); sans != nullptr && !sans->is_null()) {
        if (!sans->is_array()) {
            return bad("sans", "sans must be an array of DNS names");
        }
        if (sans->get_array().size() > 10 * max_certificate_names) {
            return bad("sans", "sans may name at most " + std::to_string(max_certificate_names) + " names");
        }
        std::size_t i = 0;
        for (auto const& v : sans->get_array()) {
            std::string const field = "sans[" + std::to_string(i++) + "]";
            if (!v.is_string()) {
                return bad(field, field + " must be a string");
            }
            CERTCTRL_TRY(n, normalize_dns_name(v.get_string(), field));
            if (std::find(in.sans.begin(), in.sans.end(), n) == in.sans.end()) {
                in.sans.push_back(n);
            }
        }
    }
    if (in.sans.size() > max_certificate_names) {
        return bad("sans", "a certificate may name at most " + std::to_string(max_certificate_names) +
                               " DNS names (domain plus SANs); this one names " +
                               std::to_string(in.sans.size()));
    }
    CERTCTRL_TRY(acct, either(body, "acct_id", "acme_account_id"));
    if (acct == nullptr) {
        return bad("acct_id", "acct_id (or acme_account_id) is required");
    }
    CERTCTRL_TRY(acct_id, positive_id(acct, body.contains("acct_id") ? "acct_id" : "acme_account_id", true));
    in.acct_id = acct_id;
    if (auto const* f = body.if_contains("fallback_acct_ids"); f != nullptr && !f->is_null()) {
        if (!f->is_array() || f->get_array().size() > max_fallback_accounts) {
            return bad("fallback_acct_ids", "fallback_acct_ids must be an array of at most " +
                                                std::to_string(max_fallback_accounts) + " ACME account ids");
        }
        for (auto const& v : f->get_array()) {
            CERTCTRL_TRY(id, positive_id(&v, "fallback_acct_ids", true));
            if (id == in.acct_id || std::find(in.fallback_acct_ids.begin(), in.fallback_acct_ids.end(), id) !=
                                        in.fallback_acct_ids.end()) {
                return bad("fallback_acct_ids",
                           "fallback_acct_ids must not repeat an account (or name acct_id itself)");
            }
            in.fallback_acct_ids.push_back(id);
        }
    }
    auto const* dns = body.if_contains("dns_provider_id");
    if (dns != nullptr && !dns->is_null()) {
        CERTCTRL_TRY(dns_id, positive_id(dns, "dns_provider_id", true));
        in.dns_provider_id = dns_id;
    }
    CERTCTRL_TRY(alg, cert_key_algorithm(body));
    in.key_algorithm = alg;
    CERTCTRL_TRY(policy, either(body, "policy", "key_dist_policy"));
    if (policy != nullptr) {
        std::string const field = body.contains("policy") ? "policy" : "key_dist_policy";
        auto p = policy->is_string() ? parse_key_policy(policy->get_string()) : std::nullopt;
        if (!p) {
            return bad(field, field + " must be HYBRID, MASTER_ONLY or DEVICE_REQUIRED");
        }
        in.policy = *p;
    }
    CERTCTRL_TRY(renew, get_bool(body, "auto_renew", true));
    in.auto_renew = renew;
    CERTCTRL_TRY(client_auth, get_bool(body, "client_auth", false));
    in.client_auth = client_auth;
    CERTCTRL_TRY(exp, get_bool(body, "server_decrypt_export", false));
    in.server_decrypt_export = exp;
    if (exp && in.policy == "DEVICE_REQUIRED") {
        return bad(
            "server_decrypt_export",
            "server_decrypt_export cannot be true with policy DEVICE_REQUIRED (keys never leave devices "
            "in plaintext)");
    }
    CERTCTRL_TRY(challenge, get_string(body, "challenge", 32));
    if (challenge) {
        std::string const c = *challenge == "auto" ? "" : *challenge;
        if (!c.empty() && c != "http-01-agent" && c != "tls-alpn-01-agent" && c != "dns-01-delegated") {
            return bad("challenge",
                       "challenge must be auto, http-01-agent, tls-alpn-01-agent or dns-01-delegated");
        }
        in.challenge = c;
    }
    CERTCTRL_TRY(o, str(body, "organization", 64, false));
    in.organization = o;
    CERTCTRL_TRY(ou, str(body, "organizational_unit", 64, false));
    in.organizational_unit = ou;
    CERTCTRL_TRY(c, country(body, "country"));
    in.country = c;
    CERTCTRL_TRY(st, str(body, "state", 128, false));
    in.state = st;
    CERTCTRL_TRY(l, str(body, "locality", 128, false));
    in.locality = l;
    return in;
}

result<certificate_input> merge_certificate_patch(certificate const& current,
                                                  boost::json::object const& patch) {
    static std::initializer_list<std::string_view> const changeable = {
        "domain_name",     "domain",          "sans",
        "acct_id",         "acme_account_id", "fallback_acct_ids",
        "dns_provider_id", "key_algorithm",   "key_type",
        "key_size",        "policy",          "key_dist_policy",
        "auto_renew",      "client_auth",     "server_decrypt_export",
        "challenge",       "organization",    "organizational_unit",
        "country",         "state",           "locality"};
    for (auto const& [k, v] : patch) {
        if (k == "action") {
            return bad("action",
                       "the only action here is \"verify_domain\" (alone), which checks the "
                       "_acme-challenge CNAMEs of a dns-01-delegated certificate");
        }
        if (std::find(changeable.begin(), changeable.end(), std::string_view(k)) == changeable.end()) {
            return bad(std::string(k), std::string(k) + " cannot be changed (or is not a certificate field)");
        }
    }
    boost::json::object merged;
    boost::json::array sans;
    bool const new_primary = patch.contains("domain_name") || patch.contains("domain");
    for (auto const& n : current.sans) {
        if (!(new_primary && n == current.domain_name)) {
            sans.emplace_back(n);
        }
    }
    merged["domain_name"] = current.domain_name;
    merged["sans"] = std::move(sans);
    merged["acct_id"] = current.acct_id;
    boost::json::array fallback;
    for (auto id : current.fallback_acct_ids) {
        fallback.emplace_back(id);
    }
    merged["fallback_acct_ids"] = std::move(fallback);
    if (current.dns_provider_id) {
        merged["dns_provider_id"] = *current.dns_provider_id;
    }
    merged["key_algorithm"] = current.key_algorithm;
    merged["policy"] = current.key_dist_policy;
    merged["auto_renew"] = current.auto_renew;
    merged["client_auth"] = current.client_auth;
    merged["server_decrypt_export"] = current.server_decrypt_export;
    merged["challenge"] = current.challenge.empty() ? "auto" : current.challenge;
    merged["organization"] = current.organization;
    merged["organizational_unit"] = current.organizational_unit;
    merged["country"] = current.country;
    merged["state"] = current.state;
    merged["locality"] = current.locality;
    // The patch's spelling wins over the stored one (domain over domain_name, key_type over key_algorithm).
    for (auto [a, b] :
         std::initializer_list<std::pair<char const*, char const*>>{{"domain", "domain_name"},
                                                                    {"acme_account_id", "acct_id"},
                                                                    {"key_dist_policy", "policy"},
                                                                    {"key_type", "key_algorithm"}}) {
        if (patch.contains(a)) {
            merged.erase(b);
        }
    }
    if (patch.contains("key_size") && !patch.contains("key_algorithm") && !patch.contains("key_type")) {
        // A size alone keeps the key's family.
        merged["key_algorithm"] = current.key_algorithm.rfind("RSA", 0) == 0 ? "RSA" : "ECDSA";
    }
    for (auto const& [k, v] : patch) {
        merged[k] = v;
    }
    return parse_certificate_input(merged);
}

}  // namespace certctrl::domain
