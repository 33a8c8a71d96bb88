#pragma once

#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/acme_account.hpp"
#include "certctrl/repo/acme_accounts.hpp"
#include "certctrl/service/identity.hpp"

namespace certctrl::service {

/// ACME accounts: validation, server-side account keys (sealed under the master keyring), ownership rules.
class acme_account_service {
  public:
    acme_account_service(repo::acme_account_repository& repo, crypto::keyring const& keys,
                         boost::asio::thread_pool& cpu)
        : repo_(repo), keys_(keys), cpu_(cpu) {}

    /// Creates an account for `user_id`. Generates the account key (not for SELF_CA) and seals it and the EAB
    /// key. Errors: bad_request, not_found (ca_id not one of the user's CAs), unavailable (no master key),
    /// database.
    task<domain::acme_account> create(std::int64_t user_id, domain::acme_account_input in);
    task<repo::page<domain::acme_account>> list(std::int64_t user_id, repo::page_query q) {
        return repo_.list(user_id, q);
    }
    /// Errors: not_found.
    task<domain::acme_account> get(std::int64_t user_id, std::int64_t id);
    /// Changes name and email (provider and keys are fixed once created). Errors: bad_request, not_found,
    /// conflict.
    task<domain::acme_account> update(std::int64_t user_id, std::int64_t id, boost::json::object body);
    /// Errors: not_found, conflict (certificates still use it).
    task<bool> remove(std::int64_t user_id, std::int64_t id);

    /// The sealing context of an account's secrets: bound to the owner, so a blob moved to another user
    /// fails.
    /// The context an account's `what` ("key", "eab") is sealed under: bound to its user and row.
    static std::string seal_context(std::int64_t user_id, std::string_view what, std::int64_t account_id);
    /// The context of releases before row binding (user only): still opened, re-sealed by rewrap-keys.
    static std::string legacy_seal_context(std::int64_t user_id, std::string_view what);

  private:
    repo::acme_account_repository& repo_;
    crypto::keyring const& keys_;
    boost::asio::thread_pool& cpu_;
};

}  // namespace certctrl::service
