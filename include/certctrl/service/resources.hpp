#pragma once
// Services of the issuance resources: self-managed CAs, certificates, devices and assignments.

#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/device.hpp"
#include "certctrl/repo/repositories.hpp"
#include "certctrl/service/device_keys.hpp"
#include "certctrl/service/identity.hpp"
#include "certctrl/service/install_configs.hpp"
#include "certctrl/service/webhooks.hpp"

#include <boost/asio/thread_pool.hpp>

#include <functional>
#include <vector>

namespace certctrl::service {

/// Self-managed root CAs: the key is generated server-side and kept sealed under the master keyring.
class ca_service {
  public:
    ca_service(repo::repositories& r, device_signals const& signals, crypto::keyring const& keys,
               boost::asio::thread_pool& cpu)
        : r_(r), signals_(signals), keys_(keys), cpu_(cpu) {}

    /// Errors: unavailable (no master key), internal (OpenSSL), database.
    task<domain::ca> create(std::int64_t user_id, domain::ca_input in);
    task<repo::page<domain::ca>> list(std::int64_t user_id, repo::page_query q);
    /// Errors: not_found.
    task<domain::ca> get(std::int64_t user_id, std::int64_t id);
    /// Devices that trust the CA are told (ca.unassigned) in the same transaction. Errors: not_found,
    /// conflict (an ACME account still uses it).
    task<bool> remove(std::int64_t user_id, std::int64_t id);

    /// The sealing context of a CA key: bound to the owner and the CA's row.
    static std::string seal_context(std::int64_t user_id, std::int64_t ca_id);
    /// The context of releases before row binding (owner only): still opened, re-sealed by rewrap-keys.
    static std::string legacy_seal_context(std::int64_t user_id);

  private:
    repo::repositories& r_;
    device_signals const& signals_;
    crypto::keyring const& keys_;
    boost::asio::thread_pool& cpu_;
};

/// Certificate records, devices and the assignments between them.
/// A list page for a caller that keeps certificates it has rendered: the ids and row versions of the page,
/// and the rows of those it has no rendering of.
struct certificate_listing {
    repo::page<repo::cert_version> page;
    std::vector<domain::certificate> rows;  // without PEM texts, in no particular order
};

/// What an update changed.
struct certificate_update {
    domain::certificate cert;
    std::vector<std::string> changed;  // field names, as the record spells them
    bool reissue_required = false;     // a changed setting reaches the certificate only with a new issuance
};

class certificate_service {
  public:
    /// `max_devices`: devices a user may register (0: no cap).
    certificate_service(repo::repositories& r, device_signals const& signals, device_keys const& wraps,
                        install_config_service const& configs, webhook_events const& events,
                        std::size_t max_devices = 0)
        : r_(r),
          signals_(signals),
          wraps_(wraps),
          configs_(configs),
          events_(events),
          max_devices_(max_devices) {}

    /// An ACME certificate claims its names for the user (domains.hpp). Errors: not_found (account or DNS
    /// provider not the user's, naming the field), conflict (a name is another user's), database.
    task<domain::certificate> create(std::int64_t user_id, domain::certificate_input in);
    /// PATCH/PUT: changes the certificate's settings (domain::merge_certificate_patch). Names, account, key
    /// algorithm, client_auth and subject fields apply from the next issuance (reissue_required tells when
    /// one is issued already); new names of an ACME certificate are claimed now. After the first issuance
    /// the policy may move between HYBRID and MASTER_ONLY only (the assigned devices are sealed again and
    /// signalled); to or from DEVICE_REQUIRED the key would have to move, which is refused (conflict).
    /// Errors: bad_request, not_found (certificate, account or DNS provider, naming the field), conflict.
    task<certificate_update> update(std::int64_t user_id, std::int64_t id, boost::json::object patch);
    /// The certificates `f` keeps (f.now is set here); `with_pem`: with the PEM texts (?detail=most).
    /// Errors: not_found (no such account).
    task<repo::page<domain::certificate>> list(std::int64_t user_id, repo::page_query q,
                                               repo::certificate_filter f, bool with_pem);
    /// list() without PEM texts, reading in full only the rows for which `known(id, row_version)` is false
    /// (it runs on a database thread while the caller waits). One read. Errors: not_found (no such account).
    task<certificate_listing> list_changed(std::int64_t user_id, repo::page_query q,
                                           repo::certificate_filter f,
                                           std::function<bool(repo::cert_version const&)> known);
    /// Errors: not_found.
    task<domain::certificate> get(std::int64_t user_id, std::int64_t id);
    /// Removes keys, history and assignments too; devices holding it are told (cert.unassigned) in the same
    /// transaction. Errors: not_found.
    task<bool> remove(std::int64_t user_id, std::int64_t id);
    /// The devices holding a certificate. Errors: not_found (no such certificate).
    task<repo::page<domain::device>> devices_of(std::int64_t user_id, std::int64_t cert_id,
                                                repo::page_query q);

    /// Registers a device from the user side. Errors: conflict (public id taken), database.
    task<domain::device> register_device(std::int64_t user_id, domain::device_input in, client_info client);
    task<repo::page<domain::device>> list_devices(std::int64_t user_id, repo::page_query q);
    /// Errors: not_found.
    task<domain::device> get_device(std::int64_t user_id, std::int64_t id);
    /// Errors: bad_request (not a UUID), not_found.
    task<domain::device> get_device_by_public_id(std::int64_t user_id, std::string public_id);
    /// Removes the device and its assignments. Errors: not_found.
    task<bool> remove_device(std::int64_t user_id, std::int64_t id);
    /// The certificates assigned to a device. Errors: not_found (no such device).
    task<repo::page<domain::certificate>> certificates_of(std::int64_t user_id, std::int64_t device_id,
                                                          repo::page_query q, bool with_pem);
    /// One certificate assigned to a device. Errors: not_found (no device, or the certificate is not
    /// assigned).
    task<domain::certificate> certificate_of(std::int64_t user_id, std::int64_t device_id,
                                             std::int64_t cert_id);

    /// Assigns a certificate to an ACTIVE device, sealing its data key to the device where the policy and the
    /// stored keys allow (`wrap_pending` otherwise), signalling cert.updated and adding a default install
    /// item, in one transaction. Errors: not_found (either missing), conflict (already assigned, or the
    /// device is not ACTIVE).
    task<domain::assignment> assign(std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id);
    /// Signals cert.unassigned. Errors: not_found (no such assignment).
    task<bool> unassign(std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id);

  private:
    repo::repositories& r_;
    device_signals const& signals_;
    device_keys const& wraps_;
    install_config_service const& configs_;
    webhook_events const& events_;
    std::size_t max_devices_ = 0;
};

}  // namespace certctrl::service
