#pragma once
// An RFC 8555 ACME client: directory, nonces (with badNonce retry), accounts (with EAB), orders,
// authorizations, challenges, finalize and certificate download. One object per issuance (not thread-safe:
// use it from one coroutine), over the CA's ca_session shared by every order to that CA.

#include "certctrl/acme/ca_session.hpp"
#include "certctrl/core/error.hpp"
#include "certctrl/net/outbound.hpp"

#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <vector>

namespace certctrl::acme {

struct challenge {
    std::string type;  // http-01, dns-01, ...
    std::string url;
    std::string token;
    std::string status;
};

struct authorization {
    std::string url;
    std::string status;  // pending, valid, invalid, deactivated, expired, revoked
    std::string identifier;
    bool wildcard = false;
    std::vector<challenge> challenges;
    std::string error_detail;  // from an invalid challenge
};

struct order {
    std::string url;
    std::string status;  // pending, ready, processing, valid, invalid
    std::vector<std::string> authorizations;
    std::string finalize;
    std::string certificate;
    std::string error_detail;
};

/// An ACME error: external_service with `params.acme_type` (the problem type without its urn prefix),
/// `params.retryable` and, when the CA sent one, `params.retry_after` (seconds).
bool retryable(app_error const& e);

class client {
  public:
    client(std::shared_ptr<ca_session> session, std::string account_key_pem)
        : session_(std::move(session)), key_pem_(std::move(account_key_pem)) {}
    /// A client with a session of its own (no connection or nonce shared with other orders).
    client(std::string directory_url, std::string account_key_pem, net::outbound_options opts)
        : session_(
              std::make_shared<ca_session>(std::move(directory_url), std::move(opts), ca_limits{}, nullptr)),
          key_pem_(std::move(account_key_pem)) {}

    net::awaitable<result<directory>> load_directory();
    /// The account URL (kid) for the key: registers it (agreeing to the terms, with EAB when given) or finds
    /// it. `eab_hmac_key` is raw bytes.
    net::awaitable<result<std::string>> account(std::string email, std::string eab_kid,
                                                std::string eab_hmac_key);
    void set_kid(std::string kid) { kid_ = std::move(kid); }
    /// Whether a user waits for this order (its requests go before renewals' when the CA's rate is spent).
    void set_urgent(bool urgent) { urgent_ = urgent; }

    /// newOrder for DNS identifiers; `replaces` is an ARI certificate id of the certificate being renewed.
    net::awaitable<result<order>> new_order(std::vector<std::string> names, std::string replaces);
    net::awaitable<result<order>> get_order(std::string url);
    net::awaitable<result<authorization>> get_authorization(std::string url);
    /// Tells the CA the challenge is ready to be validated.
    net::awaitable<result<bool>> respond(std::string challenge_url);
    net::awaitable<result<order>> finalize(std::string finalize_url, std::string csr_der);
    /// The certificate chain (PEM, leaf first).
    net::awaitable<result<std::string>> download(std::string certificate_url);
    /// RFC 9773: the CA's suggested renewal window for a certificate id. Errors: external_service (also when
    /// the directory has no renewalInfo).
    net::awaitable<result<std::pair<std::int64_t, std::int64_t>>> renewal_info(std::string cert_id);
    /// Seconds the CA asked to wait before polling again (Retry-After of the last response; 0 when none).
    int retry_after() const { return retry_after_; }

  private:
    struct reply {
        unsigned status = 0;
        std::string location;
        std::string body;
        boost::json::value json;
    };
    /// A signed POST (`payload` "" for POST-as-GET) with a fresh nonce; retried on badNonce.
    net::awaitable<result<reply>> post(std::string url, std::string payload, bool use_jwk = false,
                                       std::string accept = {});
    net::awaitable<result<std::string>> nonce();

    std::shared_ptr<ca_session> session_;
    std::string key_pem_;
    std::string kid_;
    bool urgent_ = true;
    int retry_after_ = 0;
};

/// Parses the ACME objects (exposed for tests).
order parse_order(boost::json::value const& v, std::string url);
authorization parse_authorization(boost::json::value const& v, std::string url);
/// The app_error of an ACME problem document answered with `status`.
app_error problem_error(unsigned status, std::string const& body, int retry_after);

}  // namespace certctrl::acme
