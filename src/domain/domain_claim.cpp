#include "certctrl/domain/domain_claim.hpp"

namespace certctrl::domain {

std::string_view claim_base(std::string_view name) {
    return is_wildcard(name) ? name.substr(2) : name;
}

bool is_wildcard(std::string_view name) {
    return name.size() > 2 && name.substr(0, 2) == "*.";
}

std::string reversed_name(std::string_view base) {
    std::string out;
    out.reserve(base.size() + 1);
    std::size_t end = base.size();
    while (end > 0) {
        std::size_t const dot = base.rfind('.', end - 1);
        std::size_t const begin = dot == std::string_view::npos ? 0 : dot + 1;
        out.append(base.substr(begin, end - begin));
        out += '.';
        if (dot == std::string_view::npos) {
            break;
        }
        end = dot;
    }
    return out;
}

std::vector<std::string> reversed_ancestors(std::string_view base) {
    std::string const all = reversed_name(base);
    std::vector<std::string> out;
    for (std::size_t i = 0; i + 1 < all.size(); ++i) {
        if (all[i] == '.') {
            out.push_back(all.substr(0, i + 1));
        }
    }
    return out;
}

std::string verification_record(std::string_view name) {
    return "_certctrl-challenge." + std::string(claim_base(name));
}

}  // namespace certctrl::domain
