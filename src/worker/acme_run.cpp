#include "certctrl/worker/acme_run.hpp"

#include "step.hpp"

#include "certctrl/worker/renewal_info.hpp"

#include "certctrl/acme/ari.hpp"
#include "certctrl/acme/jws.hpp"
#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/dns/rfc2136.hpp"
#include "certctrl/service/acme_accounts.hpp"
#include "certctrl/service/compute.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

namespace certctrl::worker {

namespace {

// How long to wait before poll number `polls` of an authorization or order (issue 14): the CA's Retry-After
// when it sent one (capped at 10 s), else 50 ms growing by 1.6x per poll up to 2 s. The CA usually decides
// within tens of milliseconds of the challenge response, so a fixed first wait of half a second or more was
// most of an issuance's time.
std::chrono::milliseconds poll_delay(int polls, int retry_after_s) {
    if (retry_after_s > 0) {
        return std::chrono::seconds(std::min(retry_after_s, 10));
    }
    double ms = 50;
    for (int i = 0; i < polls && ms < 2000; ++i) {
        ms *= 1.6;
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(ms, 2000.0)));
}

// How long the CA may take to decide an authorization or finish an order before the attempt fails
// (retryable).
constexpr auto ca_decision_limit = std::chrono::minutes(5);

std::string key_context(std::int64_t history_id) {
    return order_key_context(history_id);
}

}  // namespace

app_error stop_error(char const* why) {
    return make_error(errc::conflict, why, {{"stop", why}});
}

bool is_stop(app_error const& e, char const* why) {
    auto const* s = e.params.if_contains("stop");
    return s != nullptr && s->is_string() && s->get_string() == why;
}

acme_run::acme_run(acme_env env, repo::issue_context ctx, domain::issue_row row, std::string owner,
                   acme_progress progress)
    : env_(env),
      ctx_(std::move(ctx)),
      row_(std::move(row)),
      owner_(std::move(owner)),
      progress_(std::move(progress)) {}

acme_run::~acme_run() = default;

net::awaitable<result<bool>> acme_run::run() {
    CERTCTRL_STEP(guard());
    // Domain ownership is checked again before anything is ordered: a renewal, or a name transferred since
    // the request, must not order a certificate for a name another user holds.
    // Each step's time goes into one log line at the end (where an issuance spends its time, issue 14).
    std::string timings;
    auto t = std::chrono::steady_clock::now();
    auto const started = t;
    auto lap = [&](char const* step) {
        auto const now = std::chrono::steady_clock::now();
        timings += fmt::format(" {}={}", step,
                               std::chrono::duration_cast<std::chrono::milliseconds>(now - t).count());
        t = now;
    };
    CERTCTRL_STEP(env_.jobs.check_names(row_.user_id, ctx_.cert.sans));
    CERTCTRL_STEP(open_account());
    lap("account_ms");
    CERTCTRL_STEP(open_solver());
    CERTCTRL_STEP(ensure_key());
    lap("key_ms");
    CERTCTRL_STEP(ensure_order());
    lap("order_ms");
    CERTCTRL_STEP(authorize());
    lap("authorizations_ms");
    CERTCTRL_STEP(finalize());
    lap("finalize_ms");
    CERTCTRL_STEP(store());
    lap("store_ms");
    spdlog::info("issue {}: certificate {} issued in {} ms:{}", row_.id, ctx_.cert.id,
                 std::chrono::duration_cast<std::chrono::milliseconds>(t - started).count(), timings);
    auto aw_ari = follow_renewal_info();
    co_await std::move(aw_ari);
    co_return true;
}

// Stores the progress while this worker holds the row; a lost lease stops the run.
net::awaitable<result<bool>> acme_run::save_progress() {
    auto aw = env_.jobs.save(row_.id, owner_, progress_);
    auto saved = co_await std::move(aw);
    if (!saved) {
        co_return saved.error();
    }
    if (!*saved) {
        co_return stop_error("lease_lost");
    }
    co_return true;
}

// The lease is renewed at every step (and every third of lease_seconds by the worker's keeper, so a long step
// keeps the row too); a cancel request stops the run at the next one.
net::awaitable<result<bool>> acme_run::guard() {
    auto aw = env_.jobs.heartbeat(row_.id, owner_, unix_now() + env_.cfg.lease_seconds);
    auto r = co_await std::move(aw);
    if (!r) {
        co_return r.error();
    }
    if (!*r) {
        co_return stop_error("lease_lost");
    }
    if ((*r)->cancel_requested) {
        co_return stop_error("cancelled");
    }
    co_return true;
}

net::awaitable<result<bool>> acme_run::open_account() {
    auto const& account = ctx_.account;
    using accounts = service::acme_account_service;
    auto key = env_.keys.open_either(account.enc_account_key,
                                     accounts::seal_context(ctx_.cert.user_id, "key", account.id),
                                     accounts::legacy_seal_context(ctx_.cert.user_id, "key"));
    if (!key) {
        co_return make_error(errc::internal,
                             "The ACME account key does not open (was the master key changed?)");
    }
    account_key_ = std::move(*key);
    std::string eab_hmac;
    if (account.eab_kid && !account.enc_eab_hmac.empty()) {
        auto h = env_.keys.open_either(account.enc_eab_hmac,
                                       accounts::seal_context(ctx_.cert.user_id, "eab", account.id),
                                       accounts::legacy_seal_context(ctx_.cert.user_id, "eab"));
        if (!h) {
            co_return make_error(errc::internal, "The EAB key does not open (was the master key changed?)");
        }
        eab_hmac = std::move(*h);
    }
    client_ = std::make_unique<acme::client>(
        env_.sessions.get(account.directory_url, acme_options(env_.cfg, env_.egress)), account_key_);
    client_->set_urgent(row_.kind != "renew");
    if (account.kid && !account.kid->empty()) {
        client_->set_kid(*account.kid);
        co_return true;
    }
    auto aw = client_->account(account.email, account.eab_kid.value_or(""), eab_hmac);
    auto kid = co_await std::move(aw);
    if (!kid) {
        co_return kid.error();
    }
    auto aw_kid = env_.jobs.set_account_kid(account.id, *kid);
    co_await std::move(aw_kid);
    co_return true;
}

// DNS-01 through the certificate's DNS provider, when it has one.
net::awaitable<result<bool>> acme_run::open_solver() {
    if (ctx_.cert.challenge == "dns-01-delegated") {
        // The operator's own zone, where the user's _acme-challenge CNAME points (agent contract 7).
        auto const& d = env_.cfg.delegation;
        if (d.domain.empty()) {
            co_return make_error(errc::external_service,
                                 "This certificate's challenge is dns-01-delegated, but the server has no "
                                 "delegation domain (issuance.delegation)");
        }
        domain::dns_provider p;
        p.name = "delegation";
        p.kind = "rfc2136";
        p.settings = boost::json::object{{"server", d.server},
                                         {"port", static_cast<std::int64_t>(d.port)},
                                         {"zone", d.zone},
                                         {"tsig_key_name", d.tsig_key_name},
                                         {"tsig_algorithm", d.tsig_algorithm}};
        dns_solver_options dopts;
        dopts.step_timeout = std::chrono::seconds(env_.cfg.dns_step_timeout_seconds);
        // The operator's configured server: no egress policy (it is not a user-supplied endpoint).
        auto made =
            make_dns_solver(p, boost::json::object{{"tsig_secret", d.tsig_secret}}, env_.dns_io, dopts);
        if (!made) {
            co_return made.error();
        }
        solver_ = std::move(*made);
        txt_domain_ = ctx_.cert.public_id + "." + d.domain;
        co_return true;
    }
    if (!ctx_.cert.dns_provider_id) {
        co_return true;
    }
    auto aw_p = env_.dns.get(ctx_.cert.user_id, *ctx_.cert.dns_provider_id);
    auto provider = co_await std::move(aw_p);
    if (!provider) {
        co_return provider.error();
    }
    auto creds = env_.dns.credentials(*provider);
    if (!creds) {
        co_return make_error(errc::internal, "The DNS provider's credentials do not open");
    }
    dns_solver_options dopts;
    dopts.http.ca_file = env_.cfg.acme_ca_file;
    dopts.http.egress = env_.egress;
    dopts.http.timeout = std::chrono::milliseconds(env_.cfg.acme_timeout_ms);
    dopts.cloudflare_api = env_.cfg.cloudflare_api_url;
    dopts.propagation_wait = std::chrono::seconds(env_.cfg.dns_propagation_seconds);
    std::tie(dopts.resolver, dopts.resolver_port) =
        dns::resolver_address(env_.cfg.domain_verification_resolver);
    dopts.authoritative_port = env_.cfg.dns_authoritative_port;
    dopts.step_timeout = std::chrono::seconds(env_.cfg.dns_step_timeout_seconds);
    auto made = make_dns_solver(*provider, *creds, env_.dns_io, dopts);
    if (!made) {
        co_return made.error();
    }
    solver_ = std::move(*made);
    co_return true;
}

// The certificate's key: made once per row and kept sealed in the row's progress, so a resumed order
// finalizes with the same key.
net::awaitable<result<bool>> acme_run::ensure_key() {
    if (!progress_.sealed_key.empty()) {
        auto blob = base64_decode(progress_.sealed_key);
        auto opened = blob ? env_.keys.open(*blob, key_context(row_.id))
                           : result<std::string>(make_error(errc::internal, ""));
        if (!opened) {
            co_return make_error(errc::internal, "The stored order key does not open");
        }
        leaf_key_ = std::move(*opened);
        co_return true;
    }
    auto alg =
        crypto::parse_key_algorithm(ctx_.cert.key_algorithm).value_or(crypto::key_algorithm::ecdsa_p256);
    auto keygen = [alg]() -> std::string {  // named: see compute.hpp
        try {
            return crypto::generate_private_key_pem(alg);
        } catch (std::exception const&) {
            return {};
        }
    };
    auto aw = service::async_compute(env_.cpu, std::move(keygen));
    leaf_key_ = co_await std::move(aw);
    if (leaf_key_.empty()) {
        co_return make_error(errc::internal, "Generating the certificate key failed");
    }
    progress_.sealed_key = base64_encode(env_.keys.seal(leaf_key_, key_context(row_.id)));
    auto aw_save = save_progress();
    co_return co_await std::move(aw_save);
}

// The order: resumed when one was created before (a restart), else a new one. A resumed order that went
// invalid while no instance was running (its challenge could not be answered) is replaced, once.
net::awaitable<result<bool>> acme_run::ensure_order() {
    if (!progress_.order_url.empty()) {
        auto aw = client_->get_order(progress_.order_url);
        auto o = co_await std::move(aw);
        if (!o) {
            co_return o.error();
        }
        order_ = std::move(*o);
        if (order_.status != "invalid" || !progress_.replaced_order.empty()) {
            spdlog::info("issue {}: resumed order {} ({})", row_.id, order_.url, order_.status);
            co_return true;
        }
        spdlog::info("issue {}: resumed order {} is invalid ({}); starting a new order", row_.id, order_.url,
                     order_.error_detail);
        progress_.replaced_order = order_.url;
        progress_.order_url.clear();
    }
    // A renewal names the certificate it replaces (RFC 9773 §5), for CAs with renewalInfo.
    std::string replaces;
    if (row_.kind == "renew" && !ctx_.cert.cert_pem.empty()) {
        replaces = acme::ari_cert_id_of(ctx_.cert.cert_pem).value_or("");
    }
    auto aw = client_->new_order(ctx_.cert.sans, replaces);
    auto o = co_await std::move(aw);
    if (!o) {
        co_return o.error();
    }
    order_ = std::move(*o);
    progress_.order_url = order_.url;
    auto aw_save = save_progress();
    co_return co_await std::move(aw_save);
}

// Waits for the CA's verdict on one authorization.
net::awaitable<result<acme::authorization>> acme_run::await_validation(std::string authz_url) {
    auto const deadline = std::chrono::steady_clock::now() + ca_decision_limit;
    for (int polls = 0;; ++polls) {
        auto aw_sleep = net::sleep_for(poll_delay(polls, client_->retry_after()));
        co_await std::move(aw_sleep);
        auto aw_guard = guard();
        auto g = co_await std::move(aw_guard);
        if (!g) {
            co_return g.error();
        }
        auto aw_poll = client_->get_authorization(authz_url);
        auto a = co_await std::move(aw_poll);
        if (!a || a->status == "valid") {
            co_return a;
        }
        if (a->status != "pending") {
            co_return make_error(errc::external_service,
                                 "Validation of " + a->identifier + " failed (" + a->status + ")" +
                                     (a->error_detail.empty() ? "" : ": " + a->error_detail));
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            co_return make_error(errc::external_service,
                                 "Validation of " + a->identifier + " did not finish in time",
                                 {{"retryable", true}});
        }
    }
}

// Answers one name's challenge: DNS-01 through the provider (or the delegation zone) when there is one, else
// HTTP-01 on the listener, or the agents' challenges (those are awaited here). Nothing when it is valid
// already.
net::awaitable<result<std::optional<acme_run::proof>>> acme_run::begin_proof(std::string authz_url) {
    CERTCTRL_STEP(guard());
    auto aw_a = client_->get_authorization(authz_url);
    auto a = co_await std::move(aw_a);
    if (!a) {
        co_return a.error();
    }
    if (a->status == "valid") {
        co_return std::nullopt;
    }
    if (a->status != "pending") {
        co_return make_error(errc::external_service,
                             "The authorization for " + a->identifier + " is " + a->status +
                                 (a->error_detail.empty() ? "" : ": " + a->error_detail));
    }
    bool const alpn = !solver_ && ctx_.cert.challenge == "tls-alpn-01-agent";
    char const* wanted = solver_ ? "dns-01" : alpn ? "tls-alpn-01" : "http-01";
    auto ch = std::find_if(a->challenges.begin(), a->challenges.end(),
                           [wanted](acme::challenge const& c) { return c.type == wanted; });
    if (!solver_ && a->wildcard) {
        co_return make_error(
            errc::external_service,
            "*." + a->identifier +
                " needs a DNS-01 challenge: wildcard names can only be validated through DNS. Give "
                "the certificate a dns_provider_id (or \"challenge\": \"dns-01-delegated\")");
    }
    if (ch == a->challenges.end()) {
        co_return make_error(errc::external_service,
                             "The CA offers no " + std::string(wanted) + " challenge for " + a->identifier);
    }
    std::string const ka = acme::key_authorization(ch->token, account_key_);
    if (solver_) {
        // Delegated: the TXT record lives where the user's CNAME points.
        proof p{authz_url, txt_domain_.empty() ? "_acme-challenge." + a->identifier : txt_domain_,
                acme::dns01_txt_value(ka)};
        CERTCTRL_STEP(guard());
        auto aw_present = solver_->present(p.fqdn, p.value);
        auto presented = co_await std::move(aw_present);
        if (!presented) {
            auto aw_clean = remove_record(p);
            co_await std::move(aw_clean);
            co_return presented.error();
        }
        auto aw_resp = client_->respond(ch->url);
        auto responded = co_await std::move(aw_resp);
        if (!responded) {
            auto aw_clean = remove_record(p);
            co_await std::move(aw_clean);
            co_return responded.error();
        }
        co_return p;
    }
    if (std::find(ctx_.cert.sans.begin(), ctx_.cert.sans.end(), a->identifier) == ctx_.cert.sans.end()) {
        co_return make_error(errc::external_service, "The CA asked to validate " + a->identifier +
                                                         ", which is not a name of this certificate");
    }
    if (ctx_.cert.challenge == "http-01-agent" || alpn) {
        // Agents are waited for one name at a time (each start, receipt and stop is its own step).
        CERTCTRL_STEP(prove_by_agents(authz_url, *ch, ka, a->identifier));
        co_return std::nullopt;
    }
    CERTCTRL_STEP(env_.jobs.put_http_challenge(ch->token, a->identifier, ka, row_.id, unix_now() + 3600));
    if (ch->status == "pending") {
        CERTCTRL_STEP(client_->respond(ch->url));
    }
    co_return proof{authz_url, "", ""};
}

// Removes a DNS-01 record of a proof; a failed cleanup is logged, not fatal.
net::awaitable<void> acme_run::remove_record(proof const& p) {
    if (p.fqdn.empty() || !solver_) {
        co_return;
    }
    // Removed even when the lease was lost or the order cancelled.
    auto aw_clean = solver_->cleanup(p.fqdn, p.value);
    auto cleaned = co_await std::move(aw_clean);
    if (!cleaned) {
        spdlog::warn("issue {}: removing TXT {} failed: {}", row_.id, p.fqdn, cleaned.error().what);
    }
}

// Proves every name of the order: each challenge is answered first (records published, the CA told to look),
// then the verdicts are awaited, so the CA validates all names at once instead of one after another; DNS-01
// records are removed whatever happened.
net::awaitable<result<bool>> acme_run::authorize() {
    if (order_.status != "pending") {
        co_return true;
    }
    std::vector<proof> open;
    std::optional<app_error> failure;
    for (auto const& authz_url : order_.authorizations) {
        auto aw_b = begin_proof(authz_url);
        auto b = co_await std::move(aw_b);
        if (!b) {
            failure = b.error();
            break;
        }
        if (*b) {
            open.push_back(std::move(**b));
        }
    }
    for (auto const& p : open) {
        if (failure) {
            break;
        }
        auto aw_v = await_validation(p.authz_url);
        auto v = co_await std::move(aw_v);
        if (!v) {
            failure = v.error();
        }
    }
    for (auto const& p : open) {
        auto aw_clean = remove_record(p);
        co_await std::move(aw_clean);
    }
    if (failure) {
        co_return *failure;
    }
    auto aw_o = client_->get_order(order_.url);
    auto o = co_await std::move(aw_o);
    if (!o) {
        co_return o.error();
    }
    order_ = std::move(*o);
    co_return true;
}

net::awaitable<result<bool>> acme_run::finalize() {
    if (order_.status == "ready") {
        CERTCTRL_STEP(guard());
        std::string csr;
        try {
            csr = crypto::make_csr_der(leaf_key_, ctx_.cert.sans);
        } catch (std::exception const& e) {
            co_return make_error(errc::internal, "Building the CSR failed", {}, e.what());
        }
        auto aw_f = client_->finalize(order_.finalize, csr);
        auto o = co_await std::move(aw_f);
        if (!o) {
            co_return o.error();
        }
        order_ = std::move(*o);
    }
    auto const deadline = std::chrono::steady_clock::now() + ca_decision_limit;
    for (int polls = 0; order_.status == "processing" || order_.status == "ready"; ++polls) {
        if (std::chrono::steady_clock::now() >= deadline) {
            co_return make_error(errc::external_service, "The CA did not finish the order in time",
                                 {{"retryable", true}});
        }
        auto aw_sleep = net::sleep_for(poll_delay(polls, client_->retry_after()));
        co_await std::move(aw_sleep);
        CERTCTRL_STEP(guard());
        auto aw_o = client_->get_order(order_.url);
        auto o = co_await std::move(aw_o);
        if (!o) {
            co_return o.error();
        }
        order_ = std::move(*o);
    }
    if (order_.status != "valid" || order_.certificate.empty()) {
        co_return make_error(errc::external_service,
                             "The order ended " + order_.status +
                                 (order_.error_detail.empty() ? "" : ": " + order_.error_detail));
    }
    co_return true;
}

net::awaitable<result<bool>> acme_run::store() {
    auto aw_dl = client_->download(order_.certificate);
    auto chain = co_await std::move(aw_dl);
    if (!chain) {
        co_return chain.error();
    }
    auto info = crypto::inspect_certificate_pem(*chain);
    if (!info || !crypto::key_matches_certificate(leaf_key_, *chain)) {
        co_return make_error(errc::external_service, "The CA's certificate does not match the order's key");
    }
    repo::issued_material m;
    for (auto const& block : crypto::split_certificates(*chain)) {
        m.cert_pem += block;
    }
    m.serial_number = info->serial_hex;
    m.not_before = info->not_before;
    m.not_after = info->not_after;
    service::seal_certificate_key(m, env_.keys, crypto::private_key_der(leaf_key_), ctx_.cert);
    // A row that failed over says so on SUCCESS too: which account issued, and why the others gave way.
    std::string const note = progress_.failovers.empty()
                                 ? std::string()
                                 : "Issued through ACME account " + std::to_string(ctx_.account.id) +
                                       " after: " + progress_.failovers;
    auto aw_store =
        env_.issuance.complete(row_.id, owner_, row_.user_id, ctx_.cert.id, std::move(m), std::nullopt, note);
    auto stored = co_await std::move(aw_store);
    if (!stored) {
        co_return stored.error();
    }
    if (!*stored) {
        co_return stop_error("lease_lost");
    }
    chain_ = std::move(*chain);
    spdlog::info("issue {} (certificate {}): SUCCESS, serial {}", row_.id, ctx_.cert.id, info->serial_hex);
    co_return true;
}

// RFC 9773: where the CA suggests a renewal window, renew at a random time inside it, and look again when the
// CA says.
net::awaitable<void> acme_run::follow_renewal_info() {
    auto aw = worker::follow_renewal_info(env_.jobs, *client_, env_.cfg, ctx_.cert.id, chain_, 0);
    co_await std::move(aw);
}

#undef CERTCTRL_STEP

}  // namespace certctrl::worker
