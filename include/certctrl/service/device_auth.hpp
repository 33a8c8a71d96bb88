#pragma once
// Device onboarding and device tokens (agent contract 2.3, 2.4): the OAuth 2.0 device grant, registration
// with an X25519 key, HS256 access tokens and rotating refresh tokens, revocation.

#include "certctrl/config/config.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/domain/principal.hpp"
#include "certctrl/repo/repositories.hpp"
#include "certctrl/service/device_keys.hpp"
#include "certctrl/service/identity.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certctrl::service {

/// 403 when a user holds `quota` devices already (devices.max_devices_per_user).
app_error device_quota_error(std::size_t quota);

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
    device_auth_service(repo::repositories& r, device_keys const& wraps, crypto::keyring const& keys,
                        config::devices_config const& cfg, std::string public_url);

    struct grant {
        std::string device_code;
        std::string user_code;
        std::string verification_uri;
        std::string verification_uri_complete;
        std::int64_t interval = 5;
        std::int64_t expires_in = 900;
    };
    /// device_start. Errors: bad_request (interval outside 1..60, expires_in outside 30..3600), database.
    task<grant> start(std::vector<std::string> scopes, std::int64_t interval, std::int64_t expires_in);
    /// device_verify by a logged-in user. Returns approved | denied. `device_public_id`: the user allows the
    /// grant to register that existing device of theirs again (with a new key); without it the grant only
    /// creates new devices. Errors: bad_request, not_found (code, or no such device of the user), database.
    task<std::string> verify(std::int64_t user_id, std::string user_code, bool approve,
                             std::optional<std::string> device_public_id = std::nullopt);

    struct poll_answer {
        std::string status;  // authorization_pending | slow_down | access_denied | expired | ready
        std::int64_t interval = 0;
        std::int64_t user_id = 0;
        std::string registration_code;  // when ready
        std::int64_t registration_code_ttl = 0;
    };
    /// device_poll: slow_down when polled faster than the interval (which then grows by 5 s); ready once
    /// (the grant is ISSUED with a registration code). Errors: not_found (unknown device_code), database.
    task<poll_answer> poll(std::string device_code);

    struct registration_answer {
        domain::device device;
        device_tokens tokens;
        bool created = false;
    };
    /// What may register an existing device again (its device_public_id is taken). A provisioning key or a
    /// registration code alone only creates new devices: a device that exists is re-registered (and its
    /// certificates sealed to the new key) only with one of these.
    struct rekey_proof {
        /// The caller's credential may write that device (a session of its user, or devices:<id>[write]).
        std::function<bool(std::int64_t device_id)> may_write_device;
        /// The device's current refresh token, as the agent may send it with a registration.
        std::string refresh_token;
    };
    /// POST /apiv1/device/registration (with a registration code) and the API-key path (without). Registers a
    /// new device, or an existing one (same device_public_id, same row) when `proof` or a grant approved for
    /// that device allows it, and opens a session; earlier sessions end. A code must be the user's, unexpired
    /// and unused (single use). A REVOKED or LOST device stays out. A new key re-seals every assignment of
    /// the device. Errors: bad_request, unauthenticated (bad or used code), conflict (public id of another
    /// user, or an existing device without proof), forbidden (revoked device), database.
    task<registration_answer> register_device(repo::device_registration reg,
                                              std::optional<std::string> registration_code,
                                              rekey_proof proof = {});
    /// A registration retry without a code (agent contract 2.3 step 4): the refresh token of that same device
    /// (checked before it rotates) stands in for the code. Errors: as refresh(), forbidden.
    task<registration_answer> re_register(std::string refresh_token, std::int64_t user_id,
                                          std::string device_public_id);
    /// POST /auth/refresh. Errors: unauthenticated, refresh_token_rotated (reuse: the session is revoked).
    task<device_tokens> refresh(std::string refresh_token);
    /// The principal behind a device access token: the device is the user's and ACTIVE, its session open.
    /// Errors: unauthenticated, bad_request, forbidden.
    task<domain::principal> authenticate(std::string token);
    /// True when `token` is a device access token this server signed and it has not expired (no database
    /// read: authenticate() checks the device and session).
    bool signed_here(std::string_view token) const;
    /// PUT .../devices/:device_id {status?, name?}: REVOKED or LOST ends the device's sessions (its tokens
    /// stop working at once). Errors: not_found.
    task<domain::device> update_device(std::int64_t user_id, std::int64_t device_id, std::string status,
                                       std::string name);
    /// Removes expired grants, refresh tokens and sessions.
    task<std::int64_t> purge();

  private:
    struct rotated {
        repo::device_session session;
        std::string refresh_token;
    };
    /// Rotates a refresh token inside `w`. `expect_user`/`expect_public_id` (0/"": any) refuse a token of
    /// another device before anything changes. Reuse of a rotated token ends the session.
    // Whether an existing device may register again: a grant approved for it, `proof`'s credential, or its
    // live refresh token.
    bool may_register_again(repo::work& w, repo::device_repository::identity const& existing,
                            std::string const& public_id,
                            std::optional<std::string> const& approved_public_id, rekey_proof const& proof,
                            std::int64_t now) const;
    result<rotated> rotate(repo::work& w, std::string const& refresh_token, std::int64_t expect_user,
                           std::string const& expect_public_id) const;
    device_tokens mint(repo::device_session const& s, std::string refresh_token) const;

    repo::repositories& r_;
    device_keys const& wraps_;
    crypto::keyring const& keys_;
    config::devices_config cfg_;
    std::string verification_uri_;
};

}  // namespace certctrl::service
