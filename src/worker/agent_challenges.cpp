// The challenges agents answer (agent contract 7): HTTP-01 on the agents' web servers, TLS-ALPN-01 with a
// validation certificate made here. Signalled on the devices' feeds; receipt is a poll cursor or an ack.
#include "certctrl/worker/acme_run.hpp"

#include "step.hpp"

#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/compute.hpp"

#include <spdlog/spdlog.h>

namespace certctrl::worker {

// HTTP-01 served by the agents of the devices holding the certificate (agent contract 7): each gets
// acme.http01.start, the CA is asked once every one of them has received it (plus a grace for its listener),
// and acme.http01.stop follows whatever the outcome. The agent sends no readiness message of its own; receipt
// is its poll cursor or WebSocket ack.
net::awaitable<result<bool>> acme_run::prove_by_agents(std::string authz_url, acme::challenge ch,
                                                       std::string ka, std::string identifier) {
    // HTTP-01 (acme.http01.*) or TLS-ALPN-01 (acme.tlsalpn01.*, with a validation certificate made here).
    bool const alpn = ch.type == "tls-alpn-01";
    std::string const kind = alpn ? "acme.tlsalpn01" : "acme.http01";
    unsigned const port = alpn ? env_.cfg.agent_tls_alpn_port : env_.cfg.agent_http01_port;
    std::string const challenge_id = std::to_string(row_.id) + "-" + ch.token.substr(0, 16);
    unsigned const ttl = env_.cfg.agent_challenge_timeout_seconds + 240;
    boost::json::object start{{"challenge_id", challenge_id},
                              {"domain", identifier},
                              {"token", ch.token},
                              {"key_authorization", ka},
                              {"ttl_seconds", ttl}};
    if (alpn) {
        auto make = [identifier, ka]() -> crypto::root_ca {  // named: see compute.hpp
            try {
                return crypto::tls_alpn_certificate(identifier, ka);
            } catch (std::exception const&) {
                return {};
            }
        };
        auto aw_cert = service::async_compute(env_.cpu, std::move(make));
        crypto::root_ca const vc = co_await std::move(aw_cert);
        if (vc.cert_pem.empty()) {
            co_return make_error(errc::internal, "Making the TLS-ALPN-01 validation certificate failed");
        }
        start["listen"] = {{"bind", "0.0.0.0"}, {"port", port}};
        // A throwaway key that proves nothing but this one challenge (RFC 8737).
        start["certificate"] = {{"cert_pem", vc.cert_pem}, {"key_pem", vc.key_pem}};
    } else {
        start["listen"] = {{"http", {{"bind", "0.0.0.0"}, {"port", port}}}, {"https", {{"enabled", false}}}};
    }
    CERTCTRL_STEP(guard());
    auto aw_sent = env_.jobs.signal_holders(ctx_.cert.id, kind + ".start", start);
    auto sent = co_await std::move(aw_sent);
    if (!sent) {
        co_return sent.error();
    }
    if (sent->empty()) {
        co_return make_error(
            errc::external_service,
            "HTTP-01 for " + identifier +
                " is to be served by agents (challenge http-01-agent), but no active device holds "
                "this certificate: assign one");
    }
    auto stop = [&]() -> net::awaitable<void> {
        auto aw_stop = env_.jobs.signal_holders(ctx_.cert.id, kind + ".stop",
                                                boost::json::object{{"challenge_id", challenge_id}});
        auto stopped = co_await std::move(aw_stop);
        if (!stopped) {
            spdlog::warn("issue {}: {}.stop not sent: {}", row_.id, kind, stopped.error().what);
        }
    };
    auto const deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(env_.cfg.agent_challenge_timeout_seconds);
    std::vector<std::int64_t> waiting;
    for (;;) {
        auto aw_n = env_.jobs.not_received(*sent);
        auto missing = co_await std::move(aw_n);
        if (!missing) {
            co_await stop();
            co_return missing.error();
        }
        waiting = std::move(*missing);
        if (waiting.empty() || std::chrono::steady_clock::now() >= deadline) {
            break;
        }
        auto aw_wait = net::sleep_for(std::chrono::milliseconds(250));
        co_await std::move(aw_wait);
    }
    if (!waiting.empty()) {
        co_await stop();
        std::string ids;
        for (auto d : waiting) {
            ids += (ids.empty() ? "" : ", ") + std::to_string(d);
        }
        co_return make_error(errc::external_service,
                             "The agent of device " + ids + " did not pick up the " +
                                 (alpn ? "TLS-ALPN-01" : "HTTP-01") + " challenge for " + identifier +
                                 " within " + std::to_string(env_.cfg.agent_challenge_timeout_seconds) +
                                 " s (is it running and connected?)",
                             {{"retryable", true}});
    }
    if (env_.cfg.agent_challenge_grace_ms > 0) {
        auto aw_grace = net::sleep_for(std::chrono::milliseconds(env_.cfg.agent_challenge_grace_ms));
        co_await std::move(aw_grace);
    }
    result<acme::authorization> verdict = acme::authorization{};
    if (ch.status == "pending") {
        auto aw_resp = client_->respond(ch.url);
        auto responded = co_await std::move(aw_resp);
        if (!responded) {
            verdict = responded.error();
        }
    }
    if (verdict) {
        auto aw_poll = await_validation(authz_url);
        verdict = co_await std::move(aw_poll);
    }
    co_await stop();
    if (!verdict) {
        app_error e = verdict.error();
        e.what += std::string(" (") + (alpn ? "TLS-ALPN-01" : "HTTP-01") +
                  " served by the agents of the devices holding the certificate on port " +
                  std::to_string(port) + ")";
        co_return e;
    }
    co_return true;
}

}  // namespace certctrl::worker
