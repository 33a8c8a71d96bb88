#pragma once
// Issuance: requests (single in-flight per certificate), SELF_CA inline issuance in one transaction, the
// outcome of a worker's issuance, cancellation, and the export of issued material where the key policy lets
// the server decrypt.

#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/issuance.hpp"
#include "certctrl/repo/repositories.hpp"
#include "certctrl/service/device_keys.hpp"
#include "certctrl/service/domains.hpp"
#include "certctrl/service/identity.hpp"
#include "certctrl/service/webhooks.hpp"

#include <boost/asio/thread_pool.hpp>

#include <functional>

namespace certctrl::service {

/// What a request to issue answers: the history row, and the certificate when it was issued inline.
struct issue_outcome {
    domain::issue_row row;
    std::optional<domain::certificate> cert;
    bool fresh = false;  // this request made the row (false: the open row answered)
};

/// Decrypted material for an export.
struct export_material {
    domain::certificate cert;
    std::string leaf_pem;
    std::string chain_pem;  // issuers after the leaf ("" when none)
    std::string key_pem;    // PKCS#8
};

/// The zip bundle of agent contract 5.4 and the PKCS#12 password (sent in X-Export-Password, not in the zip).
struct export_zip {
    std::int64_t cert_id = 0;
    std::string zip;
    std::string password;
};

class issuance_service {
  public:
    issuance_service(repo::repositories& r, device_keys const& wraps, crypto::keyring const& keys,
                     boost::asio::thread_pool& cpu, rate_limiter& limits, domain_service& domains,
                     webhook_events const& events);

    /// Called when a row is queued for a worker (the worker pool wakes up instead of waiting to poll).
    void on_queued(std::function<void()> f) { on_queued_ = std::move(f); }

    /// Requests an issuance (or renewal): answers the open row when there is one (single in-flight, which
    /// spends nothing); a new row counts against the user's budget, rate_limits.self_ca_issuance_per_hour for
    /// SELF_CA certificates and issuance_per_hour for ACME ones (a spent budget refuses up front). A SELF_CA
    /// certificate is issued here: the key and certificate are made on the CPU pool, then stored with a
    /// SUCCESS row, the device wraps and the CA's count in one transaction. Other certificates (from ACME
    /// CAs) first claim their names for the user (domains.hpp; strict mode: each claim proven by TXT) and
    /// then get a PENDING row for the workers. Errors: not_found, rate_limited, conflict (a name is another
    /// user's), forbidden (strict mode: no proof yet), database. `may_issue_from(account)`: for an API key,
    /// the scope it lacks to issue from a SELF_CA account (a private CA), if any; the request is then refused
    /// (forbidden, params.scope) before anything is made.
    task<issue_outcome> request(
        std::int64_t user_id, std::int64_t cert_id, std::string kind,
        std::function<std::optional<std::string>(domain::acme_account const&)> may_issue_from = {});
    /// The certificate's history rows, newest first. Errors: not_found.
    task<repo::page<domain::issue_row>> history(std::int64_t user_id, std::int64_t cert_id,
                                                repo::page_query q);
    /// The certificate record (GET .../issue-result). Errors: not_found.
    task<domain::certificate> result(std::int64_t user_id, std::int64_t cert_id);
    /// Cancels a PENDING row at once; flags a PROCESSING one for its worker. Errors: not_found, conflict
    /// (already finished).
    task<domain::issue_row> cancel(std::int64_t user_id, std::int64_t cert_id, std::int64_t history_id);
    /// The certificate with its key, where the policy allows server-side decryption. Errors: not_found,
    /// forbidden (policy), conflict (not issued yet), internal (the key does not open).
    task<export_material> export_for(std::int64_t user_id, std::int64_t cert_id);
    /// export_for() packed as the zip of agent contract 5.4 (private.key, certificate.pem, chain.pem when
    /// there is a chain, fullchain.pem, certificate.der, bundle.pfx, meta.json). Errors: as export_for,
    /// internal.
    task<export_zip> zip_for(std::int64_t user_id, std::int64_t cert_id);

    // ---- workers
    /// A SELF_CA leaf for the certificate, made on the CPU pool. Errors: internal (no CA, the CA key does not
    /// open, OpenSSL).
    task<repo::issued_material> make_self_ca(repo::issue_context ctx);
    /// Stores the material on the certificate, seals it to the devices holding it and closes the worker's row
    /// as SUCCESS, in one transaction; `ca_id` counts a SELF_CA issuance. False when the row is no longer
    /// PROCESSING (cancelled or taken over). `note`: the row's message (e.g. which CA failed over).
    task<bool> complete(std::int64_t history_id, std::string owner, std::int64_t user_id,
                        std::int64_t cert_id, repo::issued_material m, std::optional<std::int64_t> ca_id,
                        std::string note = "");
    /// Closes a row as FAILED (or CANCELLED) with a message a user can act on; a FAILED row emits
    /// certificate.issue_failed in the same transaction. With `owner` (a worker), only while that worker
    /// holds the row's lease.
    task<bool> close(std::int64_t history_id, std::string status, std::string message,
                     std::string owner = "");

    /// AAD of a certificate's master-wrapped data key.
    static std::string data_key_context(std::int64_t cert_id);

  private:
    task<issue_outcome> issue_inline(repo::issue_context ctx, std::string kind);
    /// Stores an issuance's outcome on the certificate, seals it to `devices` and emits certificate.issued
    /// (the first certificate) or .renewed (inside `w`, the certificate's row locked, `devices` read under
    /// that lock; `history_id` the row it closes).
    void store(repo::work& w, std::int64_t user_id, std::int64_t cert_id, std::int64_t history_id,
               std::vector<std::int64_t> const& devices, repo::issued_material const& m,
               std::optional<std::int64_t> ca_id, std::int64_t now) const;
    /// certificate.issue_failed for history row `row` (inside `w`).
    void emit_failed(repo::work& w, domain::issue_row const& row) const;

    repo::repositories& r_;
    device_keys const& wraps_;
    crypto::keyring const& keys_;
    boost::asio::thread_pool& cpu_;
    rate_limiter& limits_;
    domain_service& domains_;
    webhook_events const& events_;
    std::function<void()> on_queued_;
    /// Parsed CA certificates and keys by CA id (with the sealed key they came from, so a changed CA is
    /// reread).
    struct issuers;
    std::shared_ptr<issuers> issuers_;
};

/// Encrypts a private key (PKCS#8 DER) into `m` as the agent contract stores it: AES-256-GCM under a fresh
/// 32-byte data key (no AAD), the data key wrapped under the current master key (kept unless the policy is
/// DEVICE_REQUIRED) and kept in plain in `m` to seal for the assigned devices.
void seal_certificate_key(repo::issued_material& m, crypto::keyring const& keys, std::string const& key_der,
                          domain::certificate const& cert);

/// The PEM private key back from its stored form. Errors: forbidden (no master copy), internal.
result<std::string> open_certificate_key(crypto::keyring const& keys, repo::stored_key const& stored,
                                         std::int64_t cert_id);

}  // namespace certctrl::service
