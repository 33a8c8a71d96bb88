#pragma once
// Issuance: the issue history (which doubles as the job queue) and the issued material of certificates.

#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/acme_account.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/issuance.hpp"
#include "certctrl/repo/devices.hpp"
#include "certctrl/repo/identity.hpp"
#include "certctrl/repo/page.hpp"

namespace certctrl::repo {

/// What an issuance produced, stored in one transaction with the row's SUCCESS.
struct issued_material {
    std::string cert_pem;  // leaf first, then the chain
    std::string serial_number;
    std::int64_t not_before = 0;
    std::int64_t not_after = 0;
    bool self_signed = false;
    bool verified = false;
    crypto::gcm_box private_key;   // AES-256-GCM of the PKCS#8 DER under the data key, no AAD
    crypto::wrapped_key data_key;  // the data key under the master key, AAD = certificate context
    bool keep_master_copy = true;  // false under DEVICE_REQUIRED: only the device wraps hold the data key
    std::string plain_data_key;    // sealed to each assigned device in the same transaction, never stored
    device_sealer sealer;
};

/// Everything an issuance of one certificate needs.
struct issue_context {
    domain::certificate cert;
    domain::acme_account account;
    std::optional<domain::ca> ca;  // SELF_CA accounts only
};

/// The stored key of a certificate.
struct stored_key {
    crypto::gcm_box private_key;
    std::optional<crypto::wrapped_key> data_key;  // absent when no master copy is kept
};

class issuance_repository {
  public:
    virtual ~issuance_repository() = default;

    struct enqueued {
        domain::issue_row row;
        bool created = false;  // false: an open row already existed and is returned instead
    };
    /// Opens a PENDING row for the certificate unless one is open (PENDING/PROCESSING), which is returned
    /// instead. The unique key on inflight_cert_id guarantees one open row across instances. Errors:
    /// not_found. Workers leave the row alone until `run_after` (a row the caller starts itself).
    virtual task<enqueued> enqueue(std::int64_t user_id, std::int64_t cert_id, std::string kind,
                                   std::int64_t now, std::int64_t run_after) = 0;
    /// The rows of a certificate, newest first.
    virtual task<page<domain::issue_row>> list(std::int64_t user_id, std::int64_t cert_id, page_query q) = 0;
    virtual task<std::optional<domain::issue_row>> get(std::int64_t history_id) = 0;
    /// PENDING -> PROCESSING with a lease; false when the row was not PENDING (someone else has it).
    virtual task<bool> start(std::int64_t history_id, std::string owner, std::int64_t lease_until,
                             std::int64_t now) = 0;
    /// Stores the material on the certificate and closes the row as SUCCESS, in one transaction; false when
    /// the row is no longer PROCESSING (cancelled or taken over).
    virtual task<bool> succeed(std::int64_t history_id, issued_material m, std::int64_t now) = 0;
    /// Closes the row as FAILED (or CANCELLED when `cancelled`) with a message a user can act on.
    virtual task<bool> finish_without_certificate(std::int64_t history_id, std::string status,
                                                  std::string message, std::int64_t now) = 0;
    /// Cancels a PENDING row at once; flags a PROCESSING one for its worker. Returns the row afterwards.
    /// Errors: not_found (no such row of this certificate), conflict (already finished).
    virtual task<domain::issue_row> cancel(std::int64_t user_id, std::int64_t cert_id,
                                           std::int64_t history_id, std::int64_t now) = 0;
    /// The certificate with its account (and CA for SELF_CA). Nothing when the certificate is not the user's.
    virtual task<std::optional<issue_context>> context(std::int64_t user_id, std::int64_t cert_id) = 0;
    /// The certificate's stored key; nothing before the first issuance.
    virtual task<std::optional<stored_key>> key_of(std::int64_t user_id, std::int64_t cert_id) = 0;
    /// Counts a certificate issued by a CA.
    virtual task<bool> note_ca_use(std::int64_t ca_id, std::int64_t now) = 0;

    // ---- workers
    /// Claims the oldest runnable row: PENDING with run_after <= now, or PROCESSING whose lease expired (a
    /// worker died). SELECT ... FOR UPDATE SKIP LOCKED, so instances never claim the same row.
    virtual task<std::optional<domain::issue_row>> claim(std::string owner, std::int64_t now,
                                                         std::int64_t lease_until) = 0;
    /// Extends the lease; the row afterwards (e.g. cancel_requested), or nothing when the lease was lost.
    virtual task<std::optional<domain::issue_row>> heartbeat(std::int64_t history_id, std::string owner,
                                                             std::int64_t lease_until) = 0;
    /// The row's resumable ACME state (JSON text, "" when none).
    virtual task<std::string> acme_state(std::int64_t history_id) = 0;
    /// Stores the state; `order_url` "" keeps the recorded acme_order_id.
    virtual task<bool> save_acme_state(std::int64_t history_id, std::string state, std::string order_url) = 0;
    /// Back to PENDING until `run_after`, keeping the state, with the reason in error_message.
    virtual task<bool> retry_later(std::int64_t history_id, std::int64_t run_after, std::string message) = 0;
    /// Records the account URL (kid) the CA gave an account.
    virtual task<bool> set_account_kid(std::int64_t account_id, std::string kid, std::int64_t now) = 0;
    /// Auto-renew certificates past two thirds of their lifetime (each shifted earlier by a per-certificate
    /// spread of up to 1/20 of it, so a batch issued together does not renew together) without an open row:
    /// (user id, certificate id), oldest expiry first.
    virtual task<std::vector<std::pair<std::int64_t, std::int64_t>>> due_for_renewal(std::int64_t now,
                                                                                     std::int64_t limit) = 0;
    /// Records the CA's suggested renewal time (RFC 9773) for a certificate; 0 clears it.
    virtual task<bool> set_renew_after(std::int64_t cert_id, std::int64_t when) = 0;
    /// HTTP-01 key authorizations served by every instance's challenge listener.
    virtual task<bool> put_http_challenge(std::string token, std::string key_authorization,
                                          std::int64_t history_id, std::int64_t expires_at) = 0;
    virtual task<bool> drop_http_challenges(std::int64_t history_id) = 0;
    virtual task<std::optional<std::string>> http_challenge(std::string token, std::int64_t now) = 0;
};

}  // namespace certctrl::repo
