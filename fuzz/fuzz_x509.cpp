// PEM, certificate and key parsing as the server does it on stored or received material: chains split into
// certificates, each inspected; keys converted between PEM and DER; an ARI id derived.
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/x509.hpp"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string const text(reinterpret_cast<char const*>(data), size);
    try {
        for (auto const& block : certctrl::crypto::split_certificates(text)) {
            (void)certctrl::crypto::inspect_certificate_pem(block);
        }
        (void)certctrl::crypto::inspect_certificate_pem(text);
    } catch (std::exception const&) {
    }
    try {
        (void)certctrl::crypto::certificate_der(text);
    } catch (std::exception const&) {
    }
    try {
        (void)certctrl::crypto::private_key_pem_from_der(text);
    } catch (std::exception const&) {
    }
    try {
        (void)certctrl::crypto::private_key_der(text);
    } catch (std::exception const&) {
    }
    try {
        (void)certctrl::crypto::algorithm_of_pem(text);
    } catch (std::exception const&) {
    }
    return 0;
}
