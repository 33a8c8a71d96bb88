#pragma once
// Repositories of the issuance resources: self-managed CAs, certificates, devices and assignments. Every
// query is scoped to the owner: another user's id behaves as absent.

#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/device.hpp"
#include "certctrl/repo/devices.hpp"
#include "certctrl/repo/identity.hpp"
#include "certctrl/repo/page.hpp"

namespace certctrl::repo {

class ca_repository {
  public:
    virtual ~ca_repository() = default;
    virtual task<domain::ca> create(domain::ca c) = 0;
    virtual task<page<domain::ca>> list(std::int64_t user_id, page_query q) = 0;
    virtual task<std::optional<domain::ca>> get(std::int64_t user_id, std::int64_t id) = 0;
    /// Errors: conflict when an ACME account (SELF_CA profile) still uses the CA.
    virtual task<bool> remove(std::int64_t user_id, std::int64_t id) = 0;
};

class certificate_repository {
  public:
    virtual ~certificate_repository() = default;
    /// Errors: not_found naming the field when the account or DNS provider is not one of the user's (checked
    /// in the same transaction as the insert).
    virtual task<domain::certificate> create(domain::certificate c) = 0;
    /// `acct_id`: only the certificates of that account.
    virtual task<page<domain::certificate>> list(std::int64_t user_id, page_query q,
                                                 std::optional<std::int64_t> acct_id) = 0;
    virtual task<std::optional<domain::certificate>> get(std::int64_t user_id, std::int64_t id) = 0;
    /// Removes the certificate with its keys, issue history and assignments in one transaction.
    virtual task<bool> remove(std::int64_t user_id, std::int64_t id) = 0;
    /// The certificates assigned to a device.
    virtual task<page<domain::certificate>> list_for_device(std::int64_t user_id, std::int64_t device_id,
                                                            page_query q) = 0;
    /// True when the user has such an ACME account.
    virtual task<bool> account_exists(std::int64_t user_id, std::int64_t acct_id) = 0;
};

class device_repository {
  public:
    virtual ~device_repository() = default;
    /// Errors: conflict when the public id is taken.
    virtual task<domain::device> create(domain::device d) = 0;
    virtual task<page<domain::device>> list(std::int64_t user_id, page_query q) = 0;
    virtual task<std::optional<domain::device>> get(std::int64_t user_id, std::int64_t id) = 0;
    virtual task<std::optional<domain::device>> get_by_public_id(std::int64_t user_id,
                                                                 std::string public_id) = 0;
    /// Removes the device and its assignments.
    virtual task<bool> remove(std::int64_t user_id, std::int64_t id) = 0;
    /// The devices holding a certificate.
    virtual task<page<domain::device>> list_for_certificate(std::int64_t user_id, std::int64_t cert_id,
                                                            page_query q) = 0;

    enum class assign_outcome {
        assigned,
        assigned_pending,
        already,
        no_certificate,
        no_device,
        device_inactive
    };
    /// Assigns when both belong to the user and the device is ACTIVE: seals the data key to the device where
    /// it can (else marks the wrap pending: assigned_pending), signals cert.updated and adds a default
    /// install item, all in one transaction.
    virtual task<assign_outcome> assign(std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id,
                                        std::int64_t now, device_sealer sealer) = 0;
    /// False when there was no such assignment.
    virtual task<bool> unassign(std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id) = 0;
    virtual task<std::optional<domain::assignment>> get_assignment(std::int64_t user_id, std::int64_t cert_id,
                                                                   std::int64_t device_id) = 0;
};

}  // namespace certctrl::repo
