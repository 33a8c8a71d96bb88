// A DNS server's answer in wire format, read for its TXT strings as the DNS-01 and domain verification checks
// do.
#include "certctrl/dns/rfc2136.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    (void)certctrl::dns::txt_answers_of_wire(std::string_view(reinterpret_cast<char const*>(data), size));
    return 0;
}
