// The API key scope grammar ("obtype:obid[action,...]") and the permission check over what it parsed.
#include "certctrl/domain/permission.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size) {
    std::string_view const text(reinterpret_cast<char const*>(data), size);
    auto p = certctrl::domain::parse_scope(text);
    if (p) {
        std::vector<certctrl::domain::permission> perms{*p};
        (void)certctrl::domain::allows(perms, p->obtype, std::nullopt, "read");
        (void)certctrl::domain::allows(perms, "certificates", 1, "export");
    }
    return 0;
}
