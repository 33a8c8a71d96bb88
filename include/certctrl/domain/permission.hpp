#pragma once

#include "certctrl/core/error.hpp"

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certctrl::domain {

/// One API-key permission: `obtype:obid[action,...]`, e.g. `certificates:*[read]`,
/// `certificates:123[read,issue]`.
struct permission {
    std::string obtype;  // certificates, devices, acme_accounts, cas, dns_providers, apikeys, audit, ...
    std::string obid;    // "*" or a positive id
    std::vector<std::string> actions;  // read, write, issue, ...

    /// The grammar form, e.g. "certificates:*[read,issue]".
    std::string to_string() const;
    bool operator==(permission const&) const = default;
};

/// Object types a permission may name.
std::vector<std::string_view> const& known_obtypes();
/// Actions a permission may grant.
std::vector<std::string_view> const& known_actions();

/// Parses and validates the JSON form `[{obtype, obid, actions:[...]}, ...]` (obid may also be a number);
/// an entry may also be a scope string (parse_scope). Older obtype names (certs, acme, dns, ...) are stored
/// under their current ones. Errors: bad_request naming the entry and field. Duplicate actions are removed.
result<std::vector<permission>> parse_permissions(boost::json::value const& v);

/// Parses the grammar form `obtype:obid[action,...]`, or the legacy `certs.read` style (every object of the
/// type: `certificates:*[read]`; `certs.read,issue` for several actions).
result<permission> parse_scope(std::string_view s);

/// The actions a new key may be granted for each obtype: those some route enforces (e.g. certificates: read,
/// write, issue, assign, export; devices: read, write, exec), plus validate and revoke on
/// ForDeviceAuthenticate, which the agent contract's documents grant (they admit nothing more here). Errors:
/// bad_request naming the permission and the actions its obtype takes. Stored keys are not re-checked.
result<bool> check_grantable(std::vector<permission> const& perms);

/// The JSON form of a list (as stored and returned).
boost::json::array to_json(std::vector<permission> const& perms);

/// True when some permission names `obtype`, `obid` equal to `*` or to `id`, and `action`.
/// With `id` empty, only a `*` permission matches.
bool allows(std::vector<permission> const& perms, std::string_view obtype, std::optional<std::int64_t> id,
            std::string_view action);

/// True when every permission of `wanted` is allowed by `held` (for keys creating keys).
bool covers(std::vector<permission> const& held, std::vector<permission> const& wanted);

}  // namespace certctrl::domain
