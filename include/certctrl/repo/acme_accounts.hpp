#pragma once

#include "certctrl/domain/acme_account.hpp"
#include "certctrl/repo/identity.hpp"

namespace certctrl::repo {

/// ACME accounts of a user. Every query is scoped to the owner: another user's id behaves as absent.
class acme_account_repository {
  public:
    virtual ~acme_account_repository() = default;
    virtual task<domain::acme_account> create(domain::acme_account a) = 0;
    virtual task<page<domain::acme_account>> list(std::int64_t user_id, page_query q) = 0;
    virtual task<std::optional<domain::acme_account>> get(std::int64_t user_id, std::int64_t id) = 0;
    /// Updates name and email. Returns false when there is no such account.
    virtual task<bool> update(std::int64_t user_id, std::int64_t id, std::string name, std::string email,
                              std::int64_t now) = 0;
    /// Errors: conflict when certificates still use the account.
    virtual task<bool> remove(std::int64_t user_id, std::int64_t id) = 0;
    /// Replaces the sealed account and EAB keys ("" leaves that column NULL).
    virtual task<bool> set_secrets(std::int64_t user_id, std::int64_t id, std::string enc_account_key,
                                   std::string enc_eab_hmac) = 0;
    /// True when `ca_id` is a CA of `user_id`.
    virtual task<bool> ca_belongs_to(std::int64_t user_id, std::int64_t ca_id) = 0;
};

}  // namespace certctrl::repo
