// Device access tokens (agent contract 2.4): HS256 JWTs under a key derived from the master key, the "kid"
// naming its version.
#include "certctrl/service/device_auth.hpp"

#include "certctrl/acme/jws.hpp"
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"

#include <boost/json.hpp>

#include <charconv>

namespace certctrl::service {

namespace {

std::optional<std::int64_t> to_int(std::string_view s) {
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) {
        return std::nullopt;
    }
    return v;
}

std::string const jwt_purpose = "device-jwt";

app_error bad_token(std::string what) {
    return make_error(errc::unauthenticated, std::move(what));
}

}  // namespace

// ------------------------------------------------------------------------------------------ tokens

std::string sign_device_token(crypto::keyring const& keys, device_claims const& claims) {
    std::uint32_t const version = keys.current_version();
    auto key = keys.derive(version, jwt_purpose);
    boost::json::object header{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", std::to_string(version)}};
    boost::json::object payload{{"sub", std::to_string(claims.user_id)},
                                {"device_id", claims.device_id},
                                {"sid", claims.session_id},
                                {"iat", claims.issued_at},
                                {"exp", claims.expires_at}};
    std::string const input = acme::base64url(boost::json::serialize(header)) + "." +
                              acme::base64url(boost::json::serialize(payload));
    return input + "." + acme::base64url(crypto::hmac_sha256(*key, input));
}

result<device_claims> verify_device_token(crypto::keyring const& keys, std::string_view token,
                                          std::int64_t now) {
    auto const d1 = token.find('.');
    auto const d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos ||
        token.size() > 4096) {
        return bad_token("Malformed device token");
    }
    auto header_raw = acme::base64url_decode(token.substr(0, d1));
    auto payload_raw = acme::base64url_decode(token.substr(d1 + 1, d2 - d1 - 1));
    auto sig = acme::base64url_decode(token.substr(d2 + 1));
    if (!header_raw || !payload_raw || !sig) {
        return bad_token("Malformed device token");
    }
    boost::system::error_code ec;
    auto header = boost::json::parse(*header_raw, ec);
    if (ec || !header.is_object()) {
        return bad_token("Malformed device token");
    }
    auto const* alg = header.as_object().if_contains("alg");
    if (!alg || !alg->is_string() || alg->get_string() != "HS256") {
        return bad_token("Device tokens are HS256 JWTs");
    }
    auto const* kid = header.as_object().if_contains("kid");
    std::optional<std::int64_t> version;
    if (kid && kid->is_string()) {
        version = to_int(kid->get_string());
    }
    if (!version || *version <= 0) {
        return bad_token("Device token signed with an unknown key");
    }
    auto key = keys.derive(static_cast<std::uint32_t>(*version), jwt_purpose);
    if (!key) {
        return bad_token("Device token signed with an unknown key");
    }
    if (!crypto::constant_time_equal(crypto::hmac_sha256(*key, token.substr(0, d2)), *sig)) {
        return bad_token("Bad device token signature");
    }
    auto payload = boost::json::parse(*payload_raw, ec);
    if (ec || !payload.is_object()) {
        return bad_token("Malformed device token");
    }
    auto const& p = payload.as_object();
    device_claims c;
    auto const* sub = p.if_contains("sub");
    auto const* exp = p.if_contains("exp");
    auto const* sid = p.if_contains("sid");
    auto const* dev = p.if_contains("device_id");
    if (!sub || !sub->is_string() || !to_int(sub->get_string()) || !exp || !exp->is_int64() || !sid ||
        !sid->is_int64()) {
        return bad_token("Device token lacks sub, sid or exp");
    }
    c.user_id = *to_int(sub->get_string());
    c.expires_at = exp->get_int64();
    c.session_id = sid->get_int64();
    if (c.expires_at <= now) {
        return bad_token("Device token expired");
    }
    if (!dev) {
        return make_error(errc::bad_request, "Device token has no device_id claim");
    }
    if (dev->is_int64()) {
        c.device_id = dev->get_int64();
    } else if (dev->is_string() && to_int(dev->get_string())) {
        c.device_id = *to_int(dev->get_string());
    } else {
        return make_error(errc::bad_request, "Device token has a malformed device_id claim");
    }
    if (auto const* iat = p.if_contains("iat"); iat && iat->is_int64()) {
        c.issued_at = iat->get_int64();
    }
    return c;
}

}  // namespace certctrl::service
