#pragma once
// Domain ownership (issue 12, high 1): who may hold certificates from public ACME CAs for which names. See
// domain/domain_claim.hpp for the rules.

#include "certctrl/domain/domain_claim.hpp"
#include "certctrl/repo/repositories.hpp"
#include "certctrl/service/identity.hpp"

#include <functional>
#include <string>
#include <vector>

namespace certctrl::service {

/// The TXT strings a resolver answers for a name (strict verification). Errors: external_service.
using txt_lookup = std::function<task<std::vector<std::string>>(std::string fqdn)>;

/// Claims every name of `names` for `user_id` inside the caller's transaction (first claim wins). Errors:
/// conflict naming the first name another user holds (and the field, `domain_name` or `sans`).
result<bool> claim_names(repo::domain_claim_repository& claims, repo::work& w, std::int64_t user_id,
                         std::vector<std::string> const& names, std::string const& domain_name,
                         std::int64_t now);

/// Checks (without claiming) that no other user holds a name of `names`: for a worker about to order.
/// Errors: conflict as claim_names.
result<bool> check_names(repo::domain_claim_repository& claims, repo::work& w, std::int64_t user_id,
                         std::vector<std::string> const& names);

class domain_service {
  public:
    /// `strict`: issuance needs a TXT proof of each claim (issuance.domain_verification "dns_txt").
    domain_service(repo::repositories& r, audit_service& audit, txt_lookup lookup, bool strict)
        : r_(r), audit_(audit), lookup_(std::move(lookup)), strict_(strict) {}

    bool strict() const { return strict_; }
    /// How CNAME targets are looked up (same shape as the TXT lookup: targets of the name).
    void set_cname_lookup(txt_lookup lookup) { cname_lookup_ = std::move(lookup); }
    /// verify_domain of a dns-01-delegated certificate (agent contract 7): the `_acme-challenge.<name>`
    /// records of `names` that do not (yet) point at `target`. Errors: external_service (a lookup failed).
    task<std::vector<std::string>> missing_delegations(std::vector<std::string> names, std::string target);

    task<repo::page<domain::domain_claim>> list(std::int64_t user_id, repo::page_query q);
    /// Gives up the user's claim of `name` (and its shares). Errors: bad_request (not a name), not_found.
    task<bool> release(std::int64_t user_id, std::string name, client_info client);
    /// Looks up `_certctrl-challenge.<base>` and marks the user's claim verified when a TXT string there is
    /// its token. Errors: bad_request, not_found (not the user's claim), forbidden (no such TXT string,
    /// naming the record and value), external_service (the lookup failed).
    task<domain::domain_claim> verify(std::int64_t user_id, std::string name);
    /// Strict mode: every claim of `names` that `user_id` holds or was shared is verified, looking up the
    /// unverified ones. Errors: forbidden naming the first name without proof (record and value), as
    /// verify(). Always true when not strict.
    task<bool> require_verified(std::int64_t user_id, std::vector<std::string> names);

    /// Admin: the claim of `name` with its owner and shares. Errors: bad_request, not_found.
    task<domain::domain_claim> get(std::string name);
    /// Admin: gives the claim to `user_id` (claiming it for them if unclaimed). Errors: bad_request,
    /// not_found (no such user).
    task<domain::domain_claim> transfer(std::int64_t admin_id, std::string name, std::int64_t user_id,
                                        client_info client);
    /// Admin: lets `user_id` hold certificates for the claimed `name` too. Errors: not_found.
    task<domain::domain_claim> share(std::int64_t admin_id, std::string name, std::int64_t user_id,
                                     client_info client);
    /// Admin: withdraws a share. Errors: not_found.
    task<bool> unshare(std::int64_t admin_id, std::string name, std::int64_t user_id, client_info client);

  private:
    repo::repositories& r_;
    audit_service& audit_;
    txt_lookup lookup_;
    txt_lookup cname_lookup_;
    bool strict_;
};

}  // namespace certctrl::service
