// What an ACME server (or anything claiming to be one) sends back: orders, authorizations, problem
// documents, renewal info and timestamps; and the JWS the server verifies itself (device access tokens).
#include "certctrl/acme/ari.hpp"
#include "certctrl/acme/client.hpp"
#include "certctrl/acme/jws.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/service/device_auth.hpp"

#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string const text(reinterpret_cast<char const*>(data), size);
    (void)certctrl::acme::problem_error(400, text, 0);
    (void)certctrl::acme::parse_renewal_info(text);
    (void)certctrl::acme::parse_rfc3339(text);
    (void)certctrl::acme::base64url_decode(text);
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (!ec) {
        (void)certctrl::acme::parse_order(v, "https://ca.example/order/1");
        (void)certctrl::acme::parse_authorization(v, "https://ca.example/authz/1");
    }
    static certctrl::crypto::keyring const keys = [] {
        certctrl::crypto::keyring k;
        k.add(1, std::string(32, 'B'));
        return k;
    }();
    (void)certctrl::service::verify_device_token(keys, text, 1'700'000'000);
    return 0;
}
