#pragma once
// The egress policy: which addresses the server may connect to for user-supplied endpoints (ACME directories
// and every URL they return, webhook URLs, RFC 2136 servers). Loopback, private, link-local (cloud metadata),
// shared, multicast and reserved ranges are refused unless an operator allows them (egress.allow). Callers
// resolve a name, check every address and connect only to the checked ones (no second lookup, so no DNS
// rebinding between the check and the connection).

#include "certctrl/core/error.hpp"

#include <boost/asio/ip/address.hpp>

#include <optional>
#include <string>
#include <vector>

namespace certctrl::net {

class egress_policy {
  public:
    /// A policy that refuses the internal ranges except `allow` (CIDRs such as "127.0.0.0/8", "::1/128", or
    /// single addresses). `enforce` false allows everything. Errors: bad_request naming the entry.
    static result<egress_policy> make(std::vector<std::string> const& allow, bool enforce = true);
    /// Allows everything (tools, tests of other things).
    static egress_policy open();

    /// Why `a` may not be reached ("loopback", "private", "link-local", ...), or nothing when it may.
    std::optional<std::string> refuses(boost::asio::ip::address const& a) const;
    /// refuses() for a numeric address text; a text that is not an address is refused.
    std::optional<std::string> refuses(std::string const& numeric) const;

  private:
    struct cidr {
        boost::asio::ip::address base;
        unsigned bits = 0;
    };
    bool enforce_ = true;
    std::vector<cidr> allow_;
};

/// The refused range `a` falls in ("loopback", "private", ...), or nothing for a public address.
std::optional<std::string> internal_range_of(boost::asio::ip::address const& a);

}  // namespace certctrl::net
