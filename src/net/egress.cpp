#include "certctrl/net/egress.hpp"

#include <array>
#include <cstdint>

namespace certctrl::net {

namespace {

using boost::asio::ip::address;
using boost::asio::ip::address_v4;
using boost::asio::ip::address_v6;

// True when the first `bits` bits of `a` and `b` (same size) are equal.
template <std::size_t N>
bool prefix_equal(std::array<unsigned char, N> const& a, std::array<unsigned char, N> const& b,
                  unsigned bits) {
    for (std::size_t i = 0; i < N && bits > 0; ++i) {
        unsigned const take = bits >= 8 ? 8 : bits;
        unsigned char const mask = static_cast<unsigned char>(0xFF00u >> take);
        if ((a[i] & mask) != (b[i] & mask)) {
            return false;
        }
        bits -= take;
    }
    return true;
}

std::optional<std::string> v4_range(address_v4 const& a) {
    struct range {
        char const* base;
        unsigned bits;
        char const* name;
    };
    static constexpr range ranges[] = {
        {"0.0.0.0", 8, "this-network"},        {"10.0.0.0", 8, "private"},
        {"100.64.0.0", 10, "shared"},          {"127.0.0.0", 8, "loopback"},
        {"169.254.0.0", 16, "link-local"},     {"172.16.0.0", 12, "private"},
        {"192.0.0.0", 24, "reserved"},         {"192.0.2.0", 24, "documentation"},
        {"192.168.0.0", 16, "private"},        {"198.18.0.0", 15, "benchmarking"},
        {"198.51.100.0", 24, "documentation"}, {"203.0.113.0", 24, "documentation"},
        {"224.0.0.0", 4, "multicast"},         {"240.0.0.0", 4, "reserved"},
    };
    for (auto const& r : ranges) {
        if (prefix_equal(a.to_bytes(), boost::asio::ip::make_address_v4(r.base).to_bytes(), r.bits)) {
            return std::string(r.name);
        }
    }
    return std::nullopt;
}

std::optional<std::string> v6_range(address_v6 const& a) {
    if (a.is_v4_mapped()) {
        return v4_range(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a));
    }
    auto const b = a.to_bytes();
    if (a.is_loopback()) {
        return "loopback";
    }
    if (a.is_unspecified()) {
        return "this-network";
    }
    struct range {
        char const* base;
        unsigned bits;
        char const* name;
    };
    static constexpr range ranges[] = {
        {"fc00::", 7, "private"},      {"fe80::", 10, "link-local"}, {"fec0::", 10, "site-local"},
        {"ff00::", 8, "multicast"},    {"100::", 64, "discard"},     {"2001:db8::", 32, "documentation"},
        {"::", 96, "ipv4-compatible"},
    };
    for (auto const& r : ranges) {
        if (prefix_equal(b, boost::asio::ip::make_address_v6(r.base).to_bytes(), r.bits)) {
            return std::string(r.name);
        }
    }
    // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address: judged by it.
    if (prefix_equal(b, boost::asio::ip::make_address_v6("64:ff9b::").to_bytes(), 96)) {
        return v4_range(address_v4({b[12], b[13], b[14], b[15]}));
    }
    if (prefix_equal(b, boost::asio::ip::make_address_v6("2002::").to_bytes(), 16)) {
        return v4_range(address_v4({b[2], b[3], b[4], b[5]}));
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string> internal_range_of(address const& a) {
    return a.is_v4() ? v4_range(a.to_v4()) : v6_range(a.to_v6());
}

result<egress_policy> egress_policy::make(std::vector<std::string> const& allow, bool enforce) {
    egress_policy p;
    p.enforce_ = enforce;
    for (auto const& entry : allow) {
        auto const slash = entry.find('/');
        boost::system::error_code ec;
        auto const base = boost::asio::ip::make_address(entry.substr(0, slash), ec);
        unsigned bits = base.is_v4() ? 32 : 128;
        bool ok = !ec;
        if (ok && slash != std::string::npos) {
            std::string const n = entry.substr(slash + 1);
            ok = !n.empty() && n.size() <= 3 && n.find_first_not_of("0123456789") == std::string::npos &&
                 std::stoul(n) <= bits;
            if (ok) {
                bits = static_cast<unsigned>(std::stoul(n));
            }
        }
        if (!ok) {
            return make_error(errc::bad_request, "egress.allow: '" + entry + "' is not an address or CIDR",
                              {{"field", "egress.allow"}});
        }
        p.allow_.push_back({base, bits});
    }
    return p;
}

egress_policy egress_policy::open() {
    egress_policy p;
    p.enforce_ = false;
    return p;
}

std::optional<std::string> egress_policy::refuses(address const& a) const {
    if (!enforce_) {
        return std::nullopt;
    }
    address const plain =
        a.is_v6() && a.to_v6().is_v4_mapped()
            ? address(boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()))
            : a;
    for (auto const& c : allow_) {
        if (c.base.is_v4() && plain.is_v4() &&
            prefix_equal(plain.to_v4().to_bytes(), c.base.to_v4().to_bytes(), c.bits)) {
            return std::nullopt;
        }
        if (c.base.is_v6() && plain.is_v6() &&
            prefix_equal(plain.to_v6().to_bytes(), c.base.to_v6().to_bytes(), c.bits)) {
            return std::nullopt;
        }
    }
    return internal_range_of(plain);
}

std::optional<std::string> egress_policy::refuses(std::string const& numeric) const {
    boost::system::error_code ec;
    auto const a = boost::asio::ip::make_address(numeric, ec);
    if (ec) {
        return enforce_ ? std::optional<std::string>("not an address") : std::nullopt;
    }
    return refuses(a);
}

}  // namespace certctrl::net
