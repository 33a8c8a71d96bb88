#pragma once

#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/dns_provider.hpp"
#include "certctrl/repo/dns_providers.hpp"
#include "certctrl/service/identity.hpp"

namespace certctrl::service {

/// DNS providers: validation, and credentials sealed under the master keyring (bound to the provider's
/// owner).
class dns_provider_service {
  public:
    dns_provider_service(repo::dns_provider_repository& repo, crypto::keyring const& keys)
        : repo_(repo), keys_(keys) {}

    /// Errors: bad_request, unavailable (no master key), database.
    task<domain::dns_provider> create(std::int64_t user_id, domain::dns_provider_input in);
    task<repo::page<domain::dns_provider>> list(std::int64_t user_id, repo::page_query q) {
        return repo_.list(user_id, q);
    }
    /// Errors: not_found.
    task<domain::dns_provider> get(std::int64_t user_id, std::int64_t id);
    /// Replaces the provider with a full new body of the same kind (secrets must be sent again).
    /// Errors: bad_request, not_found, conflict (kind change), unavailable.
    task<domain::dns_provider> replace(std::int64_t user_id, std::int64_t id, domain::dns_provider_input in);
    /// Errors: not_found, conflict (certificates still use it).
    task<bool> remove(std::int64_t user_id, std::int64_t id);

    /// The sealing context of a provider's credentials: bound to the owner.
    /// The context a provider's credentials are sealed under: bound to its row (and user), so a blob copied
    /// to another provider does not open there.
    static std::string seal_context(std::int64_t user_id, std::int64_t provider_id);
    /// The context of releases before row binding (user only): still opened, re-sealed by rewrap-keys.
    static std::string legacy_seal_context(std::int64_t user_id);

    /// The credentials of a provider, opened (for the issuance engine only; never for responses).
    result<boost::json::object> credentials(domain::dns_provider const& p) const;

  private:
    repo::dns_provider_repository& repo_;
    crypto::keyring const& keys_;
};

}  // namespace certctrl::service
