// Every JSON body parser of the API: the bytes are parsed as JSON, then given to each validator that takes
// a client's body (certificates, ACME accounts, DNS providers, CAs, devices, API key permissions, install
// items).
#include "certctrl/domain/acme_account.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/device.hpp"
#include "certctrl/domain/dns_provider.hpp"
#include "certctrl/domain/permission.hpp"
#include "certctrl/service/install_configs.hpp"

#include <boost/json/parse.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    boost::system::error_code ec;
    auto v = boost::json::parse(std::string_view(reinterpret_cast<char const*>(data), size), ec);
    if (ec) {
        return 0;
    }
    (void)certctrl::domain::parse_permissions(v);
    (void)certctrl::service::parse_installs(v);
    if (v.is_object()) {
        auto const& o = v.get_object();
        (void)certctrl::domain::parse_certificate_input(o);
        (void)certctrl::domain::parse_acme_account_input(o);
        (void)certctrl::domain::parse_dns_provider_input(o);
        (void)certctrl::domain::parse_ca_input(o);
        (void)certctrl::domain::parse_device_input(o);
        if (auto const* installs = o.if_contains("installs")) {
            (void)certctrl::service::parse_installs(*installs);
        }
    }
    return 0;
}
