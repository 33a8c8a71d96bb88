#include "certctrl/service/issuance_worker.hpp"

#include "certctrl/acme/ari.hpp"
#include "certctrl/acme/client.hpp"
#include "certctrl/acme/jws.hpp"
#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/acme_accounts.hpp"
#include "certctrl/service/compute.hpp"
#include "certctrl/service/dns_solver.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <random>

namespace certctrl::service {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// Errors that end a run without touching the row: the lease went to another worker.
constexpr char const* lease_lost = "lease_lost";

app_error stop_error(char const* why) {
    return make_error(errc::conflict, why, {{"stop", why}});
}

bool is_stop(app_error const& e, char const* why) {
    auto const* s = e.params.if_contains("stop");
    return s != nullptr && s->is_string() && s->get_string() == why;
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer t(co_await asio::this_coro::executor);
    t.expires_after(d);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
}

std::string key_context(std::int64_t history_id) {
    return "issue_history." + std::to_string(history_id);
}

}  // namespace

issuance_worker::issuance_worker(asio::io_context& ioc, repo::issuance_repository& repo,
                                 issuance_service& issuance, dns_provider_service& dns,
                                 crypto::keyring const& keys, asio::thread_pool& cpu,
                                 config::issuance_config cfg, std::string instance_id)
    : ioc_(ioc),
      repo_(repo),
      issuance_(issuance),
      dns_(dns),
      keys_(keys),
      cpu_(cpu),
      cfg_(std::move(cfg)),
      instance_id_(std::move(instance_id)) {}

issuance_worker::~issuance_worker() {
    stop();
}

void issuance_worker::start() {
    running_ = true;
    for (unsigned i = 0; i < cfg_.workers; ++i) {
        slots_.push_back(std::make_unique<slot>(ioc_));
    }
    for (std::size_t i = 0; i < slots_.size(); ++i) {
        asio::co_spawn(slots_[i]->strand, loop(i), asio::detached);
    }
    if (cfg_.renewal_check_seconds > 0) {
        renewal_slot_ = std::make_unique<slot>(ioc_);
        asio::co_spawn(renewal_slot_->strand, renewals(), asio::detached);
    }
}

asio::awaitable<void> issuance_worker::renewals() {
    while (running_) {
        auto aw_due = repo_.due_for_renewal(unix_now(), 500);
        auto due = co_await std::move(aw_due);
        if (!due) {
            spdlog::warn("renewal check failed: {}", due.error().what);
        } else {
            std::size_t queued = 0;
            for (auto const& [user_id, cert_id] : *due) {
                auto aw = repo_.enqueue(user_id, cert_id, "renew", unix_now(), unix_now());
                auto r = co_await std::move(aw);
                if (r && r->created) {
                    ++queued;
                }
            }
            if (queued > 0) {
                spdlog::info("renewal: queued {} certificate(s)", queued);
                wake();
            }
        }
        if (!running_) {
            break;
        }
        renewal_slot_->timer.expires_after(std::chrono::seconds(cfg_.renewal_check_seconds));
        co_await renewal_slot_->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void issuance_worker::wake() {
    for (auto& s : slots_) {
        asio::post(s->strand, [t = &s->timer] { t->cancel(); });
    }
}

void issuance_worker::stop() {
    running_ = false;
    wake();
    if (renewal_slot_) {
        asio::post(renewal_slot_->strand, [t = &renewal_slot_->timer] { t->cancel(); });
    }
}

asio::awaitable<void> issuance_worker::loop(std::size_t index) {
    std::string const owner = instance_id_ + "/" + std::to_string(index);
    slot& s = *slots_[index];
    while (running_) {
        std::int64_t const now = unix_now();
        auto aw_claim = repo_.claim(owner, now, now + cfg_.lease_seconds);
        auto row = co_await std::move(aw_claim);
        if (row && *row) {
            auto aw_run = run(**row, owner);
            co_await std::move(aw_run);
            continue;
        }
        if (!row) {
            spdlog::warn("issuance worker {}: cannot claim work: {}", owner, row.error().what);
        }
        if (!running_) {
            break;
        }
        s.timer.expires_after(std::chrono::milliseconds(cfg_.poll_interval_ms));
        co_await s.timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> issuance_worker::run(domain::issue_row row, std::string owner) {
    auto aw_ctx = repo_.context(row.user_id, row.cert_id);
    auto ctx = co_await std::move(aw_ctx);
    if (!ctx) {
        spdlog::warn("issue {}: loading its certificate failed: {}", row.id, ctx.error().what);
        co_return;  // the lease expires and the row is claimed again
    }
    if (!*ctx) {
        auto aw = repo_.finish_without_certificate(
            row.id, "FAILED", "The certificate or its ACME account no longer exists", unix_now());
        co_await std::move(aw);
        co_return;
    }
    if ((*ctx)->account.provider == "SELF_CA") {
        auto aw = issuance_.issue_self_ca(std::move(**ctx), row);
        co_await std::move(aw);
        co_return;
    }
    spdlog::info("issue {} (certificate {}): ACME run by {}", row.id, row.cert_id, owner);
    auto aw_acme = run_acme(std::move(**ctx), row, owner);
    auto done = co_await std::move(aw_acme);
    auto aw_drop = repo_.drop_http_challenges(row.id);
    co_await std::move(aw_drop);
    if (done) {
        co_return;
    }
    app_error const& e = done.error();
    if (is_stop(e, lease_lost)) {
        spdlog::warn("issue {}: lease lost to another worker", row.id);
        co_return;
    }
    if (is_stop(e, "cancelled")) {
        auto aw = repo_.finish_without_certificate(row.id, "CANCELLED", "Cancelled by the user", unix_now());
        co_await std::move(aw);
        co_return;
    }
    if (!acme::retryable(e)) {
        spdlog::info("issue {} failed: {} {}", row.id, e.what, e.detail);
        auto aw = repo_.finish_without_certificate(row.id, "FAILED", e.what, unix_now());
        co_await std::move(aw);
        co_return;
    }
    // Transient: count the attempt in the resumable state and come back later.
    auto aw_state = repo_.acme_state(row.id);
    auto state_text = co_await std::move(aw_state);
    json::object state;
    if (state_text && !state_text->empty()) {
        boost::system::error_code ec;
        auto v = json::parse(*state_text, ec);
        if (!ec && v.is_object()) {
            state = v.get_object();
        }
    }
    std::int64_t const retries =
        (state.contains("retries") && state["retries"].is_int64() ? state["retries"].get_int64() : 0) + 1;
    state["retries"] = retries;
    auto aw_save = repo_.save_acme_state(row.id, json::serialize(state), "");
    co_await std::move(aw_save);
    if (retries >= static_cast<std::int64_t>(cfg_.max_attempts)) {
        auto aw = repo_.finish_without_certificate(
            row.id, "FAILED", "Gave up after " + std::to_string(retries) + " attempts: " + e.what,
            unix_now());
        co_await std::move(aw);
        co_return;
    }
    std::int64_t delay = static_cast<std::int64_t>(cfg_.retry_base_seconds)
                         << std::min<std::int64_t>(retries - 1, 10);
    if (auto const* ra = e.params.if_contains("retry_after"); ra != nullptr && ra->is_int64()) {
        delay = std::max(delay, ra->get_int64());
    }
    static thread_local std::mt19937 rng{std::random_device{}()};
    delay =
        std::min<std::int64_t>(3600, delay / 2 + std::uniform_int_distribution<std::int64_t>(0, delay)(rng));
    auto aw_retry = repo_.retry_later(row.id, unix_now() + delay,
                                      "Attempt " + std::to_string(retries) + " failed, retrying in " +
                                          std::to_string(delay) + " s: " + e.what);
    co_await std::move(aw_retry);
    spdlog::info("issue {}: transient failure, retry in {} s: {}", row.id, delay, e.what);
}

asio::awaitable<result<bool>> issuance_worker::run_acme(repo::issue_context ctx, domain::issue_row row,
                                                        std::string owner) {
    auto const& cert = ctx.cert;
    auto const& account = ctx.account;
    // The lease is renewed at every step; a cancel request stops the run at the next one.
    auto guard = [this, id = row.id, owner]() -> asio::awaitable<result<bool>> {
        auto aw = repo_.heartbeat(id, owner, unix_now() + cfg_.lease_seconds);
        auto r = co_await std::move(aw);
        if (!r) {
            co_return r.error();
        }
        if (!*r) {
            co_return stop_error(lease_lost);
        }
        if ((*r)->cancel_requested) {
            co_return stop_error("cancelled");
        }
        co_return true;
    };
#define CERTCTRL_STEP(expr)                          \
    {                                                \
        auto aw_step_ = (expr);                      \
        auto r_step_ = co_await std::move(aw_step_); \
        if (!r_step_) {                              \
            co_return r_step_.error();               \
        }                                            \
    }

    CERTCTRL_STEP(guard());
    json::object state;
    {
        auto aw = repo_.acme_state(row.id);
        auto text = co_await std::move(aw);
        if (!text) {
            co_return text.error();
        }
        boost::system::error_code ec;
        auto v = json::parse(text->empty() ? std::string("{}") : *text, ec);
        if (!ec && v.is_object()) {
            state = std::move(v.get_object());
        }
    }
    auto account_key =
        keys_.open(account.enc_account_key, acme_account_service::seal_context(cert.user_id, "key"));
    if (!account_key) {
        co_return make_error(errc::internal,
                             "The ACME account key does not open (was the master key changed?)");
    }
    std::string eab_hmac;
    if (account.eab_kid && !account.enc_eab_hmac.empty()) {
        auto h = keys_.open(account.enc_eab_hmac, acme_account_service::seal_context(cert.user_id, "eab"));
        if (!h) {
            co_return make_error(errc::internal, "The EAB key does not open (was the master key changed?)");
        }
        eab_hmac = std::move(*h);
    }
    http::outbound_options opts;
    opts.ca_file = cfg_.acme_ca_file;
    opts.timeout = std::chrono::milliseconds(cfg_.acme_timeout_ms);
    acme::client client(account.directory_url, *account_key, opts);
    if (account.kid && !account.kid->empty()) {
        client.set_kid(*account.kid);
    } else {
        auto aw = client.account(account.email, account.eab_kid.value_or(""), eab_hmac);
        auto kid = co_await std::move(aw);
        if (!kid) {
            co_return kid.error();
        }
        auto aw_kid = repo_.set_account_kid(account.id, *kid, unix_now());
        co_await std::move(aw_kid);
    }

    // DNS-01 through the certificate's DNS provider, when it has one.
    std::unique_ptr<dns_solver> solver;
    if (cert.dns_provider_id) {
        auto aw_p = dns_.get(cert.user_id, *cert.dns_provider_id);
        auto provider = co_await std::move(aw_p);
        if (!provider) {
            co_return provider.error();
        }
        auto creds = dns_.credentials(*provider);
        if (!creds) {
            co_return make_error(errc::internal, "The DNS provider's credentials do not open");
        }
        dns_solver_options dopts;
        dopts.http = opts;
        dopts.cloudflare_api = cfg_.cloudflare_api_url;
        dopts.propagation_wait = std::chrono::seconds(cfg_.dns_propagation_seconds);
        auto made = make_dns_solver(*provider, *creds, cpu_, dopts);
        if (!made) {
            co_return made.error();
        }
        solver = std::move(*made);
    }

    // The certificate's key: made once per row and kept sealed in the row's state, so a resumed order
    // finalizes with the same key.
    std::string leaf_key;
    if (auto const* k = state.if_contains("key"); k != nullptr && k->is_string()) {
        auto blob = base64_decode(k->get_string());
        auto opened = blob ? keys_.open(*blob, key_context(row.id))
                           : result<std::string>(make_error(errc::internal, "bad"));
        if (!opened) {
            co_return make_error(errc::internal, "The stored order key does not open");
        }
        leaf_key = std::move(*opened);
    } else {
        auto alg =
            crypto::parse_key_algorithm(cert.key_algorithm).value_or(crypto::key_algorithm::ecdsa_p256);
        auto keygen = [alg]() -> std::string {  // named: see compute.hpp
            try {
                return crypto::generate_private_key_pem(alg);
            } catch (std::exception const&) {
                return {};
            }
        };
        auto aw = async_compute(cpu_, std::move(keygen));
        leaf_key = co_await std::move(aw);
        if (leaf_key.empty()) {
            co_return make_error(errc::internal, "Generating the certificate key failed");
        }
        state["key"] = base64_encode(keys_.seal(leaf_key, key_context(row.id)));
        auto aw_save = repo_.save_acme_state(row.id, json::serialize(state), "");
        co_await std::move(aw_save);
    }

    // The order: resumed when one was created before (a restart), else a new one. A resumed order that went
    // invalid while no instance was running (its challenge could not be answered) is replaced, once.
    acme::order ord;
    if (auto const* u = state.if_contains("order_url");
        u != nullptr && u->is_string() && !u->get_string().empty()) {
        auto aw = client.get_order(std::string(u->get_string()));
        auto o = co_await std::move(aw);
        if (!o) {
            co_return o.error();
        }
        ord = std::move(*o);
        if (ord.status == "invalid" && !state.contains("replaced_order")) {
            spdlog::info("issue {}: resumed order {} is invalid ({}); starting a new order", row.id, ord.url,
                         ord.error_detail);
            state["replaced_order"] = ord.url;
            state.erase("order_url");
        }
    }
    if (!state.contains("order_url")) {
        // A renewal names the certificate it replaces (RFC 9773 §5), for CAs with renewalInfo.
        std::string replaces;
        if (row.kind == "renew" && !cert.cert_pem.empty()) {
            replaces = acme::ari_cert_id_of(cert.cert_pem).value_or("");
        }
        auto aw = client.new_order(cert.sans, replaces);
        auto o = co_await std::move(aw);
        if (!o) {
            co_return o.error();
        }
        ord = std::move(*o);
        state["order_url"] = ord.url;
        auto aw_save = repo_.save_acme_state(row.id, json::serialize(state), ord.url);
        co_await std::move(aw_save);
    }
    std::string const order_url = ord.url;

    // Waits for the CA's verdict on one authorization.
    auto poll = [&client, &guard](std::string authz_url) -> asio::awaitable<result<acme::authorization>> {
        for (int polls = 0;; ++polls) {
            int const wait_s = std::clamp(client.retry_after(), 1, 10);
            auto aw_sleep = sleep_for(std::chrono::milliseconds(polls == 0 ? 500 : wait_s * 1000));
            co_await std::move(aw_sleep);
            auto aw_guard = guard();
            auto g = co_await std::move(aw_guard);
            if (!g) {
                co_return g.error();
            }
            auto aw_poll = client.get_authorization(authz_url);
            auto a = co_await std::move(aw_poll);
            if (!a || a->status == "valid") {
                co_return a;
            }
            if (a->status != "pending") {
                co_return make_error(errc::external_service,
                                     "Validation of " + a->identifier + " failed (" + a->status + ")" +
                                         (a->error_detail.empty() ? "" : ": " + a->error_detail));
            }
            if (polls > 120) {
                co_return make_error(errc::external_service,
                                     "Validation of " + a->identifier + " did not finish in time",
                                     {{"retryable", true}});
            }
        }
    };
    if (ord.status == "pending") {
        for (auto const& authz_url : ord.authorizations) {
            CERTCTRL_STEP(guard());
            auto aw_a = client.get_authorization(authz_url);
            auto a = co_await std::move(aw_a);
            if (!a) {
                co_return a.error();
            }
            if (a->status == "valid") {
                continue;
            }
            if (a->status != "pending") {
                co_return make_error(errc::external_service,
                                     "The authorization for " + a->identifier + " is " + a->status +
                                         (a->error_detail.empty() ? "" : ": " + a->error_detail));
            }
            // With a DNS provider every name is proven through DNS-01; without one, HTTP-01 (not for
            // wildcards).
            char const* wanted = solver ? "dns-01" : "http-01";
            auto ch = std::find_if(a->challenges.begin(), a->challenges.end(),
                                   [wanted](acme::challenge const& c) { return c.type == wanted; });
            if (!solver && a->wildcard) {
                co_return make_error(
                    errc::external_service,
                    "*." + a->identifier +
                        " needs a DNS-01 challenge: wildcard names can only be validated through "
                        "DNS. Give the certificate a dns_provider_id");
            }
            if (ch == a->challenges.end()) {
                co_return make_error(errc::external_service, "The CA offers no " + std::string(wanted) +
                                                                 " challenge for " + a->identifier);
            }
            std::string const ka = acme::key_authorization(ch->token, *account_key);
            if (solver) {
                std::string const fqdn = "_acme-challenge." + a->identifier;
                std::string const value = acme::dns01_txt_value(ka);
                auto aw_present = solver->present(fqdn, value);
                auto presented = co_await std::move(aw_present);
                result<acme::authorization> verdict = presented.error();
                if (presented) {
                    auto aw_resp = client.respond(ch->url);
                    auto responded = co_await std::move(aw_resp);
                    if (responded) {
                        auto aw_poll = poll(authz_url);
                        verdict = co_await std::move(aw_poll);
                    } else {
                        verdict = responded.error();
                    }
                }
                // Clean up whatever happened; a failed cleanup is logged, not fatal.
                auto aw_clean = solver->cleanup(fqdn, value);
                auto cleaned = co_await std::move(aw_clean);
                if (!cleaned) {
                    spdlog::warn("issue {}: removing TXT {} failed: {}", row.id, fqdn, cleaned.error().what);
                }
                if (!verdict) {
                    co_return verdict.error();
                }
                continue;
            }
            auto aw_put = repo_.put_http_challenge(ch->token, ka, row.id, unix_now() + 3600);
            CERTCTRL_STEP(std::move(aw_put));
            if (ch->status == "pending") {
                auto aw_resp = client.respond(ch->url);
                CERTCTRL_STEP(std::move(aw_resp));
            }
            auto aw_poll = poll(authz_url);
            CERTCTRL_STEP(std::move(aw_poll));
        }
        auto aw_o = client.get_order(order_url);
        auto o = co_await std::move(aw_o);
        if (!o) {
            co_return o.error();
        }
        ord = std::move(*o);
    }
    if (ord.status == "ready") {
        CERTCTRL_STEP(guard());
        std::string csr;
        try {
            csr = crypto::make_csr_der(leaf_key, cert.sans);
        } catch (std::exception const& e) {
            co_return make_error(errc::internal, "Building the CSR failed", {}, e.what());
        }
        auto aw_f = client.finalize(ord.finalize, csr);
        auto o = co_await std::move(aw_f);
        if (!o) {
            co_return o.error();
        }
        ord = std::move(*o);
    }
    for (int polls = 0; ord.status == "processing" || ord.status == "ready"; ++polls) {
        if (polls > 120) {
            co_return make_error(errc::external_service, "The CA did not finish the order in time",
                                 {{"retryable", true}});
        }
        int const wait_s = std::clamp(client.retry_after(), 1, 10);
        auto aw_sleep = sleep_for(std::chrono::milliseconds(polls == 0 ? 300 : wait_s * 1000));
        co_await std::move(aw_sleep);
        CERTCTRL_STEP(guard());
        auto aw_o = client.get_order(order_url);
        auto o = co_await std::move(aw_o);
        if (!o) {
            co_return o.error();
        }
        ord = std::move(*o);
    }
    if (ord.status != "valid" || ord.certificate.empty()) {
        co_return make_error(
            errc::external_service,
            "The order ended " + ord.status + (ord.error_detail.empty() ? "" : ": " + ord.error_detail));
    }
    auto aw_dl = client.download(ord.certificate);
    auto chain = co_await std::move(aw_dl);
    if (!chain) {
        co_return chain.error();
    }
    auto info = crypto::inspect_certificate_pem(*chain);
    if (!info || !crypto::key_matches_certificate(leaf_key, *chain)) {
        co_return make_error(errc::external_service, "The CA's certificate does not match the order's key");
    }
    repo::issued_material m;
    for (auto const& block : crypto::split_certificates(*chain)) {
        m.cert_pem += block;
    }
    m.serial_number = info->serial_hex;
    m.not_before = info->not_before;
    m.not_after = info->not_after;
    seal_certificate_key(m, keys_, leaf_key, cert);
    auto aw_store = repo_.succeed(row.id, std::move(m), unix_now());
    auto stored = co_await std::move(aw_store);
    if (!stored) {
        co_return stored.error();
    }
    if (!*stored) {
        co_return stop_error(lease_lost);
    }
    spdlog::info("issue {} (certificate {}): SUCCESS, serial {}", row.id, cert.id, info->serial_hex);
    // RFC 9773: where the CA suggests a renewal window, renew at a random time inside it.
    if (auto ari_id = acme::ari_cert_id_of(*chain); ari_id) {
        auto aw_dir = client.load_directory();
        auto dir = co_await std::move(aw_dir);
        if (dir && !dir->renewal_info.empty()) {
            auto aw_ri = client.renewal_info(*ari_id);
            auto window = co_await std::move(aw_ri);
            if (window) {
                static thread_local std::mt19937_64 pick{std::random_device{}()};
                std::int64_t const when =
                    std::uniform_int_distribution<std::int64_t>(window->first, window->second)(pick);
                auto aw_set = repo_.set_renew_after(cert.id, when);
                co_await std::move(aw_set);
            } else {
                spdlog::info("issue {}: renewalInfo unavailable ({}); the 2/3 rule applies", row.id,
                             window.error().what);
            }
        }
    }
    co_return true;
#undef CERTCTRL_STEP
}

}  // namespace certctrl::service
