#pragma once
// Statement set of domain ownership (see domain/domain_claim.hpp), run on a unit of work (work.hpp). Methods
// throw on SQL errors and run only inside a unit of work.

#include "certctrl/domain/domain_claim.hpp"
#include "certctrl/repo/page.hpp"
#include "certctrl/repo/work.hpp"

#include <optional>
#include <string>
#include <vector>

namespace certctrl::repo {

class domain_claim_repository {
  public:
    virtual ~domain_claim_repository() = default;
    /// The first claim of another user (not shared with `user_id`) that keeps `user_id` from holding `name`:
    /// the same name, a wildcard claim above it, or (for a wildcard `name`) any claim below its base. With
    /// `lock`, the rows and index ranges read are locked for update, so two transactions claiming related
    /// names run one after the other.
    virtual std::optional<domain::domain_claim> blocking(work& w, std::int64_t user_id,
                                                         std::string const& name, bool lock) = 0;
    /// Inserts the claim unless `name` is claimed already (by anyone).
    virtual void insert(work& w, domain::domain_claim const& c) = 0;
    virtual std::optional<domain::domain_claim> get(work& w, std::string const& name, bool lock = false) = 0;
    /// The claims of a user (shares included), by name.
    virtual page<domain::domain_claim> list(work& w, std::int64_t user_id, page_query const& q) = 0;
    /// Deletes `user_id`'s claim of `name` (and its shares). False when the user holds no such claim.
    virtual bool remove(work& w, std::int64_t user_id, std::string const& name) = 0;
    /// Gives the claim to `user_id` (verified by the admin's word; a share of the new owner is dropped).
    virtual void transfer(work& w, std::string const& name, std::int64_t user_id, std::int64_t now) = 0;
    virtual void share(work& w, std::string const& name, std::int64_t user_id, std::int64_t now) = 0;
    /// False when there was no such share.
    virtual bool unshare(work& w, std::string const& name, std::int64_t user_id) = 0;
    virtual void mark_verified(work& w, std::string const& name, std::int64_t now) = 0;
};

}  // namespace certctrl::repo
