#pragma once
// The device side (agent contract 2.3, 2.4, 5, 6): the OAuth 2.0 device grant, registration, device tokens,
// the update feed with its long-poll, key delivery, install configs and device CAs.

#include "certctrl/config/config.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/principal.hpp"
#include "certctrl/repo/devices.hpp"
#include "certctrl/repo/issuance.hpp"
#include "certctrl/repo/resources.hpp"
#include "certctrl/service/identity.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>

namespace certctrl::service {

/// The claims of a device access token (HS256 JWT; agent contract 2.4).
struct device_claims {
    std::int64_t user_id = 0;     // "sub", a string in the token
    std::int64_t device_id = 0;   // "device_id", an integer
    std::int64_t session_id = 0;  // "sid"
    std::int64_t issued_at = 0;   // "iat"
    std::int64_t expires_at = 0;  // "exp"
};

/// Signs with a key derived from the current master key; the header's "kid" names its version.
std::string sign_device_token(crypto::keyring const& keys, device_claims const& claims);

/// Verifies signature (HS256 only), expiry and the claims. Errors: unauthenticated (malformed, bad
/// signature, unknown key, expired), bad_request (no device_id claim).
result<device_claims> verify_device_token(crypto::keyring const& keys, std::string_view token,
                                          std::int64_t now);

/// Seals data keys to device keys with the master keyring (for the repositories).
repo::device_sealer make_device_sealer(crypto::keyring const& keys);

/// A freshly minted pair of device tokens.
struct device_tokens {
    std::string access_token;
    std::string refresh_token;
    std::int64_t expires_in = 0;
    std::int64_t refresh_expires_in = 0;
    std::int64_t device_id = 0;
};

class device_auth_service {
  public:
    device_auth_service(repo::device_auth_repository& repo, crypto::keyring const& keys,
                        config::devices_config const& cfg, std::string public_url);

    struct grant {
        std::string device_code;
        std::string user_code;
        std::string verification_uri;
        std::string verification_uri_complete;
        std::int64_t interval = 5;
        std::int64_t expires_in = 900;
    };
    /// device_start. Errors: bad_request (interval < 1, expires_in outside 30..3600), database.
    task<grant> start(std::vector<std::string> scopes, std::int64_t interval, std::int64_t expires_in);
    /// device_verify by a logged-in user. Returns approved | denied. Errors: not_found, database.
    task<std::string> verify(std::int64_t user_id, std::string user_code, bool approve);

    struct poll_answer {
        std::string status;
        std::int64_t interval = 0;
        std::int64_t user_id = 0;
        std::string registration_code;  // when ready
        std::int64_t registration_code_ttl = 0;
    };
    /// device_poll. Errors: not_found (unknown device_code), database.
    task<poll_answer> poll(std::string device_code);

    struct registration_answer {
        domain::device device;
        device_tokens tokens;
        bool created = false;
    };
    /// POST /apiv1/device/registration (with a registration code) and the API-key path (without).
    /// Errors: bad_request, unauthenticated (bad code), conflict (public id of another user), database.
    task<registration_answer> register_device(repo::device_registration reg,
                                              std::optional<std::string> registration_code);
    /// A registration retry without a code (agent contract 2.3 step 4): the refresh token of that same device
    /// (checked before it rotates) stands in for the code. Errors: as refresh().
    task<registration_answer> re_register(std::string refresh_token, std::int64_t user_id,
                                          std::string device_public_id);
    /// POST /auth/refresh. Errors: unauthenticated, refresh_token_rotated (reuse: the session is revoked).
    task<device_tokens> refresh(std::string refresh_token);
    /// The principal behind a device access token. Errors: unauthenticated, bad_request, forbidden.
    task<domain::principal> authenticate(std::string token);
    /// PUT .../devices/:device_id {status?, name?}: REVOKED or LOST ends the device's sessions.
    /// Errors: not_found.
    task<domain::device> update_device(std::int64_t user_id, std::int64_t device_id, std::string status,
                                       std::string name) {
        return repo_.update_device(user_id, device_id, std::move(status), std::move(name), unix_now());
    }
    /// Removes expired grants and refresh tokens.
    task<std::int64_t> purge();

  private:
    device_tokens mint(repo::device_session const& s, std::string refresh_token) const;

    repo::device_auth_repository& repo_;
    crypto::keyring const& keys_;
    config::devices_config cfg_;
    std::string verification_uri_;
};

/// Wakes long-polls when their device's feed grows. One poller per instance watches the feed's highest id
/// (every `period`), so signals written by any instance or worker wake the waiters here; a waiter holds no
/// thread, only a timer.
class update_notifier {
  public:
    update_notifier(repo::device_feed_repository& feed, std::chrono::milliseconds period)
        : feed_(feed), period_(period) {}

    /// Runs until the executor stops (co_spawn it once).
    boost::asio::awaitable<void> run();

    /// Waits until the device's feed may have grown, or `deadline`. Register with watch() before reading the
    /// feed, so nothing committed in between is missed.
    struct waiter;
    std::shared_ptr<waiter> watch(boost::asio::any_io_executor ex, std::int64_t device_id);
    boost::asio::awaitable<void> wait(std::shared_ptr<waiter> w,
                                      std::chrono::steady_clock::time_point deadline);
    void unwatch(std::shared_ptr<waiter> const& w);
    std::size_t waiting() const;
    /// Shutdown: wakes every waiter, and later waits return at once.
    void stop();
    bool stopping() const { return stopping_; }

  private:
    void wake(std::vector<std::int64_t> const& devices);

    repo::device_feed_repository& feed_;
    std::chrono::milliseconds period_;
    mutable std::mutex mu_;
    std::multimap<std::int64_t, std::shared_ptr<waiter>> waiters_;
    std::atomic<bool> stopping_{false};
};

/// A page of the update feed.
struct update_batch {
    std::string cursor;
    std::vector<repo::device_signal> signals;
};

/// Everything a device fetches, and the user-side management of install configs and device CAs.
class device_service {
  public:
    device_service(repo::device_feed_repository& feed, repo::device_repository& devices,
                   crypto::keyring const& keys, update_notifier& notifier, config::devices_config const& cfg)
        : feed_(feed), devices_(devices), keys_(keys), notifier_(notifier), cfg_(cfg) {}

    /// The signals after `cursor` ("" or "0-0": from the start), waiting up to `wait_s` for one.
    /// Errors: updates_cursor_expired (params for the resync), database.
    task<update_batch> updates(std::int64_t device_id, std::string cursor, std::size_t limit,
                               unsigned wait_s);

    /// The certificate assigned to the device. Errors: not_found (not assigned).
    task<repo::device_cert_material> certificate(std::int64_t user_id, std::int64_t device_id,
                                                 std::int64_t cert_id);
    /// deploy-materials (agent contract 5.3). Errors: not_found (not assigned), conflict with key
    /// WRAP_PENDING (wrap missing) or NOT_ISSUED, forbidden with key EXPORT_FORBIDDEN, internal.
    task<boost::json::object> deploy_materials(std::int64_t user_id, std::int64_t device_id,
                                               std::int64_t cert_id);
    /// A CA assigned to the device. Errors: not_found.
    task<domain::ca> ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id);
    /// The device's install config (an empty version 0 one when none was written). Errors: not_found.
    task<repo::install_config> install_config(std::int64_t user_id, std::int64_t device_id);
    /// The agent's notify events. Errors: bad_request.
    task<bool> notify(std::int64_t device_id, boost::json::object body, std::string ip);

    /// PUT install-config: `{installs:[...]|installs_json, after_update_script?, change_note?}`.
    /// Errors: bad_request, not_found.
    task<repo::install_config> put_install_config(std::int64_t user_id, std::int64_t device_id,
                                                  boost::json::object body, std::string updated_by);
    task<repo::page<repo::install_config>> install_config_history(std::int64_t user_id,
                                                                  std::int64_t device_id,
                                                                  repo::page_query q) {
        return feed_.install_config_history(user_id, device_id, q);
    }
    /// Restores a version as a new version. Errors: bad_request, not_found.
    task<repo::install_config> restore_install_config(std::int64_t user_id, std::int64_t device_id,
                                                      int version, std::string change_note,
                                                      std::string updated_by);
    /// POST /apiv1/me/install-config-update/:device_public_id: patches matched by (ob_type, ob_id[, id]);
    /// only type, enabled, cmd, cmd_argv, timeout_ms, env (and after_update_script) change.
    /// Errors: bad_request, not_found.
    task<repo::install_config> patch_install_config(std::int64_t user_id, std::string device_public_id,
                                                    boost::json::value body, std::string updated_by);

    task<repo::page<domain::ca>> device_cas(std::int64_t user_id, std::int64_t device_id,
                                            repo::page_query q) {
        return feed_.device_cas(user_id, device_id, q);
    }
    /// Errors: not_found, conflict (already assigned).
    task<bool> assign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id);
    /// Errors: not_found.
    task<bool> unassign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id);

  private:
    repo::device_feed_repository& feed_;
    repo::device_repository& devices_;
    crypto::keyring const& keys_;
    update_notifier& notifier_;
    config::devices_config cfg_;
};

/// Validates an install config's items (agent contract 4.6). Errors: bad_request naming the item.
result<boost::json::array> parse_installs(boost::json::value const& v);

}  // namespace certctrl::service
