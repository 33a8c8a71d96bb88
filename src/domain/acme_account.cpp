#include "certctrl/domain/acme_account.hpp"

#include "certctrl/core/hex.hpp"

#include "fields.hpp"

#include <algorithm>
#include <array>

namespace certctrl::domain {

namespace {

using namespace fields;

bool valid_email(std::string const& e) {
    auto at = e.find('@');
    return !e.empty() && e.size() <= 254 && at != std::string::npos && at > 0 && at + 1 < e.size() &&
           e.find_first_of(" \t\r\n") == std::string::npos;
}

}  // namespace

std::optional<std::string> provider_directory(std::string const& p) {
    if (p == "letsencrypt")
        return "https://acme-v02.api.letsencrypt.org/directory";
    if (p == "letsencrypt-staging")
        return "https://acme-staging-v02.api.letsencrypt.org/directory";
    if (p == "zerossl")
        return "https://acme.zerossl.com/v2/DV90";
    if (p == "google")
        return "https://dv.acme-v02.api.pki.goog/directory";
    if (p == "custom" || p == "SELF_CA")
        return "";
    return std::nullopt;
}

result<acme_account_input> parse_acme_account_input(boost::json::object const& body) {
    acme_account_input in;
    CERTCTRL_TRY(name, get_string(body, "name", 128));
    if (!name || name->empty()) {
        return bad("name", "name is required (1-128 characters)");
    }
    in.name = *name;
    CERTCTRL_TRY(email, get_string(body, "email", 254));
    if (email && !email->empty()) {
        if (!valid_email(*email)) {
            return bad("email", "email must look like name@domain");
        }
        in.email = lower(*email);
    }
    CERTCTRL_TRY(provider, get_string(body, "provider", 32));
    if (!provider || provider->empty()) {
        return bad(
            "provider",
            "provider is required: letsencrypt, letsencrypt-staging, zerossl, google, custom or SELF_CA");
    }
    in.provider = lower(*provider) == "self_ca" ? "SELF_CA" : lower(*provider);
    auto dir = provider_directory(in.provider);
    if (!dir) {
        return bad("provider", "unknown provider '" + *provider +
                                   "' (letsencrypt, letsencrypt-staging, zerossl, google, custom, SELF_CA)");
    }
    CERTCTRL_TRY(directory_url, get_string(body, "directory_url", 1024));
    if (in.provider == "custom") {
        if (!directory_url || directory_url->rfind("https://", 0) != 0 || directory_url->size() < 12) {
            return bad("directory_url",
                       "provider custom needs directory_url, an https:// URL of an RFC 8555 directory");
        }
        in.directory_url = *directory_url;
    } else if (directory_url && !directory_url->empty() && *directory_url != *dir) {
        return bad("directory_url", "directory_url is fixed by provider '" + in.provider +
                                        "'; use provider custom for another CA");
    } else {
        in.directory_url = *dir;
    }

    bool const self_ca = in.provider == "SELF_CA";
    CERTCTRL_TRY(key_algorithm, get_string(body, "key_algorithm", 32));
    if (self_ca) {
        if (key_algorithm) {
            return bad("key_algorithm", "SELF_CA accounts have no ACME account key; use leaf_key_algorithm");
        }
    } else {
        std::string const k = key_algorithm ? lower(*key_algorithm) : "ecdsa_p256";
        if (k == "ecdsa_p256" || k == "ecdsa" || k == "es256" || k == "p-256") {
            in.key_algorithm = "ECDSA_P256";
        } else if (k == "ecdsa_p384" || k == "es384" || k == "p-384") {
            in.key_algorithm = "ECDSA_P384";
        } else if (k == "rsa" || k == "rsa_2048" || k == "rs256") {
            in.key_algorithm = "RSA_2048";
        } else {
            return bad("key_algorithm", "key_algorithm must be ECDSA_P256 (default), ECDSA_P384 or RSA_2048");
        }
    }

    // SELF_CA settings; refused for ACME providers so a typo does not silently do nothing.
    CERTCTRL_TRY(ca_id, get_int(body, "ca_id", 0, std::numeric_limits<std::int64_t>::max()));
    CERTCTRL_TRY(leaf_alg, get_string(body, "leaf_key_algorithm", 16));
    CERTCTRL_TRY(rsa_bits, get_int(body, "leaf_rsa_bits", 0, 1 << 20));
    CERTCTRL_TRY(curve, get_string(body, "leaf_ec_curve", 32));
    CERTCTRL_TRY(valid, get_int(body, "cert_valid_seconds", 3600, std::int64_t{10} * 366 * 24 * 3600));
    if (!self_ca) {
        for (auto const& [set, field] :
             std::array<std::pair<bool, char const*>, 5>{{{ca_id && *ca_id != 0, "ca_id"},
                                                          {leaf_alg.has_value(), "leaf_key_algorithm"},
                                                          {rsa_bits.has_value(), "leaf_rsa_bits"},
                                                          {curve.has_value(), "leaf_ec_curve"},
                                                          {valid.has_value(), "cert_valid_seconds"}}}) {
            if (set) {
                return bad(field, std::string(field) + " applies only to provider SELF_CA");
            }
        }
    } else {
        if (!ca_id || *ca_id <= 0) {
            return bad("ca_id", "provider SELF_CA needs ca_id, the id of one of your CAs");
        }
        in.ca_id = ca_id;
        std::string const alg = leaf_alg ? lower(*leaf_alg) : "ecdsa";
        if (alg == "ecdsa") {
            in.leaf_key_algorithm = "ECDSA";
            if (rsa_bits) {
                return bad("leaf_rsa_bits", "leaf_rsa_bits applies only to leaf_key_algorithm RSA");
            }
            std::string const c = curve ? lower(*curve) : "prime256v1";
            if (c == "prime256v1" || c == "p-256" || c == "secp256r1") {
                in.leaf_ec_curve = "prime256v1";
            } else if (c == "secp384r1" || c == "p-384") {
                in.leaf_ec_curve = "secp384r1";
            } else {
                return bad("leaf_ec_curve", "leaf_ec_curve must be prime256v1 or secp384r1");
            }
        } else if (alg == "rsa") {
            in.leaf_key_algorithm = "RSA";
            if (curve) {
                return bad("leaf_ec_curve", "leaf_ec_curve applies only to leaf_key_algorithm ECDSA");
            }
            std::int64_t const bits = rsa_bits.value_or(2048);
            if (bits != 2048 && bits != 3072 && bits != 4096) {
                return bad("leaf_rsa_bits", "leaf_rsa_bits must be 2048, 3072 or 4096");
            }
            in.leaf_rsa_bits = bits;
        } else {
            return bad("leaf_key_algorithm", "leaf_key_algorithm must be RSA or ECDSA");
        }
        in.cert_valid_seconds = valid.value_or(90 * 24 * 3600);
    }

    // External account binding: top-level eab_kid/eab_hmac_key, or eab: {kid, hmac_key}.
    boost::json::object const* eab = &body;
    char const* kid_field = "eab_kid";
    char const* key_field = "eab_hmac_key";
    if (auto const* nested = body.if_contains("eab"); nested != nullptr && !nested->is_null()) {
        if (!nested->is_object()) {
            return bad("eab", "eab must be an object {kid, hmac_key}");
        }
        eab = &nested->get_object();
        kid_field = "kid";
        key_field = "hmac_key";
    }
    CERTCTRL_TRY(eab_kid, get_string(*eab, kid_field, 255));
    CERTCTRL_TRY(eab_key, get_string(*eab, key_field, 512));
    if (eab_kid.has_value() != eab_key.has_value()) {
        return bad("eab_hmac_key", "external account binding needs both the key id and the HMAC key");
    }
    if (eab_kid) {
        if (self_ca) {
            return bad("eab_kid", "external account binding does not apply to SELF_CA");
        }
        auto raw = base64_decode(*eab_key);
        if (eab_kid->empty() || !raw || raw->size() < 16) {
            return bad("eab_hmac_key",
                       "eab_hmac_key must be base64url of at least 16 bytes, with a non-empty key id");
        }
        in.eab_kid = *eab_kid;
        in.eab_hmac_key = std::move(*raw);
    }
    return in;
}

}  // namespace certctrl::domain
