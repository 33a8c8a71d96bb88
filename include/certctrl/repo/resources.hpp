#pragma once
// Statement sets of the issuance resources, run on a unit of work (see work.hpp): self-managed CAs and
// certificates. Every query is scoped to the owner where it takes a user id: another user's id behaves as
// absent. Methods throw on SQL errors and run only inside a unit of work.

#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/repo/page.hpp"
#include "certctrl/repo/work.hpp"

#include <array>
#include <optional>
#include <utility>
#include <vector>

namespace certctrl::repo {

/// How a read locks the rows it returns (inside a transaction).
enum class row_lock { none, shared, update };

class ca_repository {
  public:
    virtual ~ca_repository() = default;
    /// Inserts a CA; returns it with its id.
    virtual domain::ca insert(work& w, domain::ca c) = 0;
    virtual page<domain::ca> list(work& w, std::int64_t user_id, page_query const& q) = 0;
    virtual std::optional<domain::ca> get(work& w, std::int64_t user_id, std::int64_t id,
                                          row_lock lock = row_lock::none) = 0;
    /// Replaces the sealed key of CA `id`.
    virtual void set_key(work& w, std::int64_t id, std::string const& enc_private_key) = 0;
    /// Deletes a CA. Throws a referenced-row error (conflict) while an ACME account uses it.
    virtual void remove(work& w, std::int64_t id) = 0;
    /// Counts a certificate issued under the CA.
    virtual void count_use(work& w, std::int64_t id, std::int64_t now) = 0;
};

/// The stored key of a certificate.
struct stored_key {
    crypto::gcm_box private_key;
    std::optional<crypto::wrapped_key> data_key;  // absent when no master copy is kept
};

/// What an issuance produced.
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
};

/// A certificate id with the version of its row (moved by every change of the row).
struct cert_version {
    std::int64_t id = 0;
    std::int64_t row_version = 0;
};

/// What a certificate list keeps (all when empty).
struct certificate_filter {
    enum class state { any, pending, active, expired, expiring };
    std::optional<std::int64_t> acct_id;  // only this account's
    state status = state::any;            // pending: never issued; expiring: active, ending within 30 days
    std::string name_contains;            // in the common name or another name, case-insensitively
    std::int64_t now = 0;                 // unix seconds, for the states that depend on the clock
};

class certificate_repository {
  public:
    virtual ~certificate_repository() = default;
    /// Inserts a certificate record; returns it with its id.
    virtual domain::certificate insert(work& w, domain::certificate c) = 0;
    /// The user's certificates that `f` keeps, newest first. The PEM texts are read only `with_pem` (else
    /// left empty; has_certificate still tells whether one was issued).
    virtual page<domain::certificate> list(work& w, std::int64_t user_id, page_query const& q,
                                           certificate_filter const& f, bool with_pem) = 0;
    /// The ids and row versions of a list() page (from the index alone when nothing but the account filters).
    virtual page<cert_version> list_versions(work& w, std::int64_t user_id, page_query const& q,
                                             certificate_filter const& f) = 0;
    /// The user's certificates among `ids` (without PEM texts), in no particular order; ids of other users or
    /// of no certificate are left out.
    virtual std::vector<domain::certificate> get_many(work& w, std::int64_t user_id,
                                                      std::vector<std::int64_t> const& ids) = 0;
    /// The certificates assigned to a device (PEM texts as in list()).
    virtual page<domain::certificate> list_for_device(work& w, std::int64_t user_id, std::int64_t device_id,
                                                      page_query const& q, bool with_pem) = 0;
    virtual std::optional<domain::certificate> get(work& w, std::int64_t user_id, std::int64_t id,
                                                   row_lock lock = row_lock::none) = 0;
    /// Stores a certificate's settings (names, account, DNS provider, key algorithm, policy, flags, subject
    /// fields) and moves its row version.
    virtual void update_settings(work& w, domain::certificate const& c, std::int64_t now) = 0;
    /// Deletes a certificate with its wrapped key, issue history and assignments.
    virtual void remove(work& w, std::int64_t id) = 0;
    /// The certificate's stored key; nothing before the first issuance.
    virtual std::optional<stored_key> key_of(work& w, std::int64_t user_id, std::int64_t id) = 0;
    /// Stores what an issuance produced on the certificate (and its master-wrapped data key, or drops it).
    virtual void store_issued(work& w, std::int64_t id, issued_material const& m, std::int64_t now) = 0;
    /// Records the CA's suggested renewal time (RFC 9773); 0 clears it.
    virtual void set_renew_after(work& w, std::int64_t id, std::int64_t when) = 0;
    /// RFC 9773: the renewal time picked in the CA's window, and when to ask the CA again (0: never).
    virtual void set_renewal_info(work& w, std::int64_t id, std::int64_t renew_after,
                                  std::int64_t next_check) = 0;
    /// Issued auto-renewing certificates whose renewal information is due for another look: {user id, id,
    /// renew_after}.
    virtual std::vector<std::array<std::int64_t, 3>> renewal_info_due(work& w, std::int64_t now,
                                                                      std::int64_t limit) = 0;
    /// Auto-renew certificates past two thirds of their lifetime (each shifted earlier by a per-certificate
    /// spread of up to 1/20 of it) without an open issue row: (user id, certificate id), oldest expiry first.
    virtual std::vector<std::pair<std::int64_t, std::int64_t>> due_for_renewal(work& w, std::int64_t now,
                                                                               std::int64_t limit) = 0;
    /// True when the user has the ACME account; `lock` keeps it from being deleted until commit.
    virtual bool account_exists(work& w, std::int64_t user_id, std::int64_t acct_id, row_lock lock) = 0;
    /// The provider of the user's ACME account ("SELF_CA", "letsencrypt", ...), or nothing.
    virtual std::optional<std::string> account_provider(work& w, std::int64_t user_id, std::int64_t acct_id,
                                                        row_lock lock) = 0;
    /// True when the user has the DNS provider; `lock` keeps it from being deleted until commit.
    virtual bool dns_provider_exists(work& w, std::int64_t user_id, std::int64_t id, row_lock lock) = 0;
};

}  // namespace certctrl::repo
