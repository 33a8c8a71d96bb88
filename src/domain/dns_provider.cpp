#include "certctrl/domain/dns_provider.hpp"

#include "certctrl/core/hex.hpp"

#include "fields.hpp"

#include <algorithm>

namespace certctrl::domain {

namespace {

using namespace fields;

// A host name (LDH labels) or an IP literal, at most 253 characters.
bool valid_host(std::string const& h) {
    if (h.empty() || h.size() > 253)
        return false;
    return std::all_of(h.begin(), h.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '.' || c == ':' || c == '_';
    });
}

}  // namespace

std::vector<std::string> dns_secret_fields(std::string const& kind) {
    if (kind == "rfc2136")
        return {"tsig_secret"};
    if (kind == "cloudflare")
        return {"api_token"};
    if (kind == "webhook")
        return {"hmac_secret"};
    return {};
}

result<dns_provider_input> parse_dns_provider_input(boost::json::object const& body) {
    dns_provider_input in;
    CERTCTRL_TRY(name, str(body, "name", 128, true));
    in.name = name;
    CERTCTRL_TRY(kind, str(body, "kind", 16, true));
    in.kind = kind;
    if (kind == "rfc2136") {
        CERTCTRL_TRY(server, str(body, "server", 253, true));
        if (!valid_host(server))
            return bad("server", "server must be a host name or an IP address");
        std::int64_t port = 53;
        if (auto const* p = body.if_contains("port"); p != nullptr && !p->is_null()) {
            if (!p->is_int64() || p->get_int64() < 1 || p->get_int64() > 65535) {
                return bad("port", "port must be an integer in 1..65535");
            }
            port = p->get_int64();
        }
        CERTCTRL_TRY(zone, str(body, "zone", 253, true));
        if (!valid_host(zone))
            return bad("zone", "zone must be a DNS name");
        CERTCTRL_TRY(key_name, str(body, "tsig_key_name", 253, true));
        CERTCTRL_TRY(alg, str(body, "tsig_algorithm", 32, false));
        if (alg.empty())
            alg = "hmac-sha256";
        static std::vector<std::string> const algs = {"hmac-sha1", "hmac-sha224", "hmac-sha256",
                                                      "hmac-sha384", "hmac-sha512"};
        if (std::find(algs.begin(), algs.end(), alg) == algs.end()) {
            return bad("tsig_algorithm",
                       "tsig_algorithm must be one of hmac-sha1, hmac-sha224, hmac-sha256, "
                       "hmac-sha384, hmac-sha512");
        }
        CERTCTRL_TRY(secret, str(body, "tsig_secret", 512, true));
        auto raw = base64_decode(secret);
        if (!raw || raw->size() < 16)
            return bad("tsig_secret", "tsig_secret must be base64 of at least 16 bytes");
        in.settings = {{"server", server},
                       {"port", port},
                       {"zone", zone},
                       {"tsig_key_name", key_name},
                       {"tsig_algorithm", alg}};
        in.credentials = {{"tsig_secret", secret}};
    } else if (kind == "cloudflare") {
        CERTCTRL_TRY(token, str(body, "api_token", 256, true));
        CERTCTRL_TRY(zone_id, str(body, "zone_id", 64, false));
        // A Cloudflare zone id is 32 hex digits; anything else would be pasted into the API URL's path.
        if (!zone_id.empty() && (zone_id.size() != 32 ||
                                 zone_id.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)) {
            return bad("zone_id", "zone_id must be the 32 hex digits Cloudflare shows for the zone");
        }
        in.settings = {{"zone_id", zone_id}};
        in.credentials = {{"api_token", token}};
    } else if (kind == "webhook") {
        CERTCTRL_TRY(url, str(body, "url", 1024, true));
        if (url.rfind("https://", 0) != 0)
            return bad("url", "url must be an https:// URL");
        CERTCTRL_TRY(secret, str(body, "hmac_secret", 256, true));
        if (secret.size() < 16)
            return bad("hmac_secret", "hmac_secret must be at least 16 characters");
        in.settings = {{"url", url}};
        in.credentials = {{"hmac_secret", secret}};
    } else if (kind != "manual") {
        return bad("kind", "kind must be rfc2136, cloudflare, webhook or manual");
    }
    return in;
}

}  // namespace certctrl::domain
