#include "certctrl/domain/ca.hpp"

#include "fields.hpp"

#include <array>
#include <sstream>

namespace certctrl::domain {

namespace {

using namespace fields;

// The key algorithm from `algorithm` plus `key_size` / `curve_name`.
result<std::string> ca_algorithm(boost::json::object const& body) {
    CERTCTRL_TRY(alg, get_string(body, "algorithm", 32));
    CERTCTRL_TRY(size, get_int(body, "key_size", 1, 1 << 20));
    CERTCTRL_TRY(curve, get_string(body, "curve_name", 32));
    std::string const a = upper(alg.value_or("ECDSA"));
    if (a == "ECDSA" || a == "EC") {
        std::string const c = lower(curve.value_or(""));
        if (size && *size != 256 && *size != 384) {
            return bad("key_size", "key_size of an ECDSA CA must be 256 or 384 (or use curve_name)");
        }
        if (c.empty()) {
            return std::string(size && *size == 384 ? "ECDSA_P384" : "ECDSA_P256");
        }
        if (c == "prime256v1" || c == "p-256" || c == "secp256r1" || c == "p256") {
            return std::string("ECDSA_P256");
        }
        if (c == "secp384r1" || c == "p-384" || c == "p384") {
            return std::string("ECDSA_P384");
        }
        return bad("curve_name", "curve_name must be prime256v1 (P-256) or secp384r1 (P-384)");
    }
    if (a == "RSA") {
        std::int64_t const bits = size.value_or(2048);
        if (bits != 2048 && bits != 3072 && bits != 4096) {
            return bad("key_size", "key_size of an RSA CA must be 2048, 3072 or 4096");
        }
        return "RSA_" + std::to_string(bits);
    }
    for (char const* canonical : {"ECDSA_P256", "ECDSA_P384", "RSA_2048", "RSA_3072", "RSA_4096"}) {
        if (a == canonical) {
            return std::string(canonical);
        }
    }
    return bad("algorithm", "algorithm must be ECDSA or RSA (with key_size or curve_name)");
}

result<std::string> key_usage(boost::json::object const& body) {
    CERTCTRL_TRY(ku, get_string(body, "key_usage", 256));
    static constexpr std::array<char const*, 3> known = {"keyCertSign", "cRLSign", "digitalSignature"};
    if (!ku || ku->empty()) {
        return std::string("keyCertSign,cRLSign");
    }
    std::array<bool, 3> seen{};
    std::stringstream in(*ku);
    std::string item;
    while (std::getline(in, item, ',')) {
        auto const b = item.find_first_not_of(' ');
        auto const e = item.find_last_not_of(' ');
        item = b == std::string::npos ? "" : item.substr(b, e - b + 1);
        bool matched = false;
        for (std::size_t i = 0; i < known.size(); ++i) {
            if (lower(item) == lower(known[i])) {
                seen[i] = matched = true;
            }
        }
        if (!matched) {
            return bad("key_usage", "key_usage may list keyCertSign, cRLSign and digitalSignature; '" + item +
                                        "' is not one of them");
        }
    }
    if (!seen[0]) {
        return bad("key_usage", "key_usage of a CA must include keyCertSign");
    }
    std::string out;
    for (std::size_t i = 0; i < known.size(); ++i) {
        if (seen[i]) {
            out += (out.empty() ? "" : ",") + std::string(known[i]);
        }
    }
    return out;
}

}  // namespace

result<ca_input> parse_ca_input(boost::json::object const& body) {
    ca_input in;
    CERTCTRL_TRY(cn, str(body, "common_name", 64, true));
    in.subject.common_name = cn;
    CERTCTRL_TRY(name, str(body, "name", 128, false));
    in.name = name.empty() ? cn : name;
    CERTCTRL_TRY(alg, ca_algorithm(body));
    in.key_algorithm = alg;
    CERTCTRL_TRY(o, str(body, "organization", 64, false));
    in.subject.organization = o;
    CERTCTRL_TRY(ou, str(body, "organizational_unit", 64, false));
    in.subject.organizational_unit = ou;
    CERTCTRL_TRY(c, country(body, "country"));
    in.subject.country = c;
    CERTCTRL_TRY(st, str(body, "state", 128, false));
    in.subject.state = st;
    CERTCTRL_TRY(l, str(body, "locality", 128, false));
    in.subject.locality = l;
    CERTCTRL_TRY(days, get_int(body, "valid_days", 1, 36500));
    in.valid_days = days.value_or(3650);
    CERTCTRL_TRY(path, either(body, "max_path_length", "path_length"));
    if (path != nullptr) {
        if (!path->is_int64() || path->get_int64() < -1 || path->get_int64() > 16) {
            return bad("max_path_length", "max_path_length must be an integer in -1..16 (-1: no limit)");
        }
        in.path_length = static_cast<int>(path->get_int64());
    }
    CERTCTRL_TRY(ku, key_usage(body));
    in.key_usage = ku;
    return in;
}

algorithm_parts split_algorithm(std::string const& canonical) {
    if (canonical == "ECDSA_P256")
        return {"ECDSA", 256, "prime256v1"};
    if (canonical == "ECDSA_P384")
        return {"ECDSA", 384, "secp384r1"};
    if (canonical.rfind("RSA_", 0) == 0)
        return {"RSA", std::stoi(canonical.substr(4)), ""};
    return {canonical, 0, ""};
}

}  // namespace certctrl::domain
