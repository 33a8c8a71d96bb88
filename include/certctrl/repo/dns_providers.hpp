#pragma once

#include "certctrl/domain/dns_provider.hpp"
#include "certctrl/repo/identity.hpp"

namespace certctrl::repo {

/// DNS providers of a user; every query is scoped to the owner.
class dns_provider_repository {
  public:
    virtual ~dns_provider_repository() = default;
    virtual task<domain::dns_provider> create(domain::dns_provider p) = 0;
    virtual task<page<domain::dns_provider>> list(std::int64_t user_id, page_query q) = 0;
    virtual task<std::optional<domain::dns_provider>> get(std::int64_t user_id, std::int64_t id) = 0;
    /// Replaces name, settings and sealed credentials. Returns false when there is no such provider.
    virtual task<bool> replace(domain::dns_provider p) = 0;
    /// Errors: conflict when certificates still use the provider.
    virtual task<bool> remove(std::int64_t user_id, std::int64_t id) = 0;
};

}  // namespace certctrl::repo
