#include "certctrl/service/issuance.hpp"

#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/compute.hpp"
#include "certctrl/service/resources.hpp"
#include "certctrl/service/zip.hpp"

#include <spdlog/spdlog.h>

#include <map>
#include <mutex>

namespace certctrl::service {

namespace {

constexpr std::int64_t default_self_ca_validity = 90LL * 86400;

app_error cert_not_found() {
    return make_error(errc::not_found, "Certificate not found");
}

// The certificate record as it reads after `m` was stored on it.
domain::certificate issued_record(domain::certificate c, repo::issued_material const& m, std::int64_t now) {
    c.cert_pem = m.cert_pem;
    c.serial_number = m.serial_number;
    c.not_before = m.not_before;
    c.not_after = m.not_after;
    c.self_signed = m.self_signed;
    c.verified = m.verified;
    c.has_key = true;
    c.has_certificate = true;
    c.updated_at = now;
    return c;
}

}  // namespace

struct issuance_service::issuers {
    std::mutex mu;
    std::map<std::int64_t, std::pair<std::string, std::shared_ptr<crypto::leaf_issuer const>>> by_ca;

    // The CA's issuer, parsed on first use. Throws like leaf_issuer, and when the key does not open.
    std::shared_ptr<crypto::leaf_issuer const> of(domain::ca const& ca, crypto::keyring const& keys) {
        {
            std::lock_guard lock(mu);
            if (auto it = by_ca.find(ca.id); it != by_ca.end() && it->second.first == ca.enc_private_key) {
                return it->second.second;
            }
        }
        auto ca_key = keys.open_either(ca.enc_private_key, ca_service::seal_context(ca.user_id, ca.id),
                                       ca_service::legacy_seal_context(ca.user_id));
        if (!ca_key) {
            throw std::runtime_error("The CA key does not open (master key changed?)");
        }
        auto made = std::make_shared<crypto::leaf_issuer const>(ca.cert_pem, *ca_key);
        std::lock_guard lock(mu);
        if (by_ca.size() >= 1000) {
            by_ca.clear();  // bounds memory; the next issuances parse again
        }
        by_ca[ca.id] = {ca.enc_private_key, made};
        return made;
    }
};

issuance_service::issuance_service(repo::repositories& r, device_keys const& wraps,
                                   crypto::keyring const& keys, boost::asio::thread_pool& cpu,
                                   rate_limiter& limits, domain_service& domains,
                                   webhook_events const& events)
    : r_(r),
      wraps_(wraps),
      keys_(keys),
      cpu_(cpu),
      limits_(limits),
      domains_(domains),
      events_(events),
      issuers_(std::make_shared<issuers>()) {}

std::string issuance_service::data_key_context(std::int64_t cert_id) {
    return "certificates." + std::to_string(cert_id);
}

void seal_certificate_key(repo::issued_material& m, crypto::keyring const& keys, std::string const& key_der,
                          domain::certificate const& cert) {
    std::string data_key = crypto::random_bytes(32);
    m.private_key = crypto::aes256gcm_encrypt(data_key, key_der);
    m.data_key = keys.wrap(data_key, issuance_service::data_key_context(cert.id));
    m.keep_master_copy = cert.key_dist_policy != "DEVICE_REQUIRED";
    m.plain_data_key = std::move(data_key);
}

result<std::string> open_certificate_key(crypto::keyring const& keys, repo::stored_key const& stored,
                                         std::int64_t cert_id) {
    if (!stored.data_key) {
        return make_error(errc::forbidden, "The server keeps no copy of this certificate's key");
    }
    CERTCTRL_TRY(data_key, keys.unwrap(*stored.data_key, issuance_service::data_key_context(cert_id)));
    CERTCTRL_TRY(der, crypto::aes256gcm_decrypt(data_key, stored.private_key));
    try {
        return crypto::private_key_pem_from_der(der);
    } catch (std::exception const& e) {
        return make_error(errc::internal, "Stored private key does not parse", {}, e.what());
    }
}

void issuance_service::store(repo::work& w, std::int64_t user_id, std::int64_t cert_id,
                             std::int64_t history_id, std::vector<std::int64_t> const& devices,
                             repo::issued_material const& m, std::optional<std::int64_t> ca_id,
                             std::int64_t now) const {
    // Subscribers are looked up first: whether this is the first certificate or a renewal is read before
    // the store, and only when someone listens.
    auto const subs = events_.subscribers(w, user_id);
    std::optional<domain::certificate> before;
    if (!subs.empty()) {
        before = r_.certificates->get(w, user_id, cert_id);
    }
    r_.certificates->store_issued(w, cert_id, m, now);
    if (before) {
        // The record as the store left it, without reading it again.
        events_.emit(
            w, subs, user_id, before->has_certificate ? "certificate.renewed" : "certificate.issued", cert_id,
            [&] {
                return boost::json::object{
                    {"history_id", history_id},
                    {"certificate", domain::webhook_certificate_record(issued_record(*before, m, now), now)}};
            });
    }
    // Every device holding the certificate gets the new data key sealed to it (or a pending mark) and a
    // cert.updated signal, in this same transaction.
    wraps_.wrap_all(w, cert_id, devices, m.plain_data_key);
    if (ca_id) {
        r_.cas->count_use(w, *ca_id, now);
    }
}

task<issue_outcome> issuance_service::request(
    std::int64_t user_id, std::int64_t cert_id, std::string kind,
    std::function<std::optional<std::string>(domain::acme_account const&)> may_issue_from) {
    auto aw_ctx =
        r_.db->read([this, user_id, cert_id](repo::work& w) -> certctrl::result<repo::issue_context> {
            auto ctx = r_.issuance->context(w, user_id, cert_id);
            return ctx ? certctrl::result<repo::issue_context>(std::move(*ctx)) : cert_not_found();
        });
    auto ctx = co_await std::move(aw_ctx);
    if (!ctx) {
        co_return ctx.error();
    }
    if (ctx->account.provider == "SELF_CA" && may_issue_from) {
        if (auto missing = may_issue_from(ctx->account)) {
            co_return make_error(errc::forbidden,
                                 "The API key lacks the scope " + *missing +
                                     " to issue from this private CA (acme_accounts:<acct_id>[issue] or "
                                     "cas:<ca_id>[issue] also do)",
                                 {{"scope", *missing}});
        }
    }
    // The budget: a repeated request that the open row answers costs nothing.
    bool const self_ca = ctx->account.provider == "SELF_CA";
    auto const which = self_ca ? rate_limiter::limit::self_ca_issuance : rate_limiter::limit::issuance;
    std::string const budget_key = "user:" + std::to_string(user_id);
    // Spent first (so a burst of parallel requests cannot all pass), given back when nothing new was made.
    if (auto budget = limits_.check(which, budget_key); !budget) {
        co_return budget.error();
    }
    auto spend = [&](certctrl::result<issue_outcome> const& r) {
        if (!r || !r->fresh) {
            limits_.refund(which, budget_key);
        }
    };
    if (self_ca) {
        auto aw_inline = issue_inline(std::move(*ctx), std::move(kind));
        auto out = co_await std::move(aw_inline);
        spend(out);
        co_return out;
    }
    if (domains_.strict()) {
        // Strict mode: the names are claimed, then each claim proven by its TXT record, before a row is
        // queued.
        auto aw_claim =
            r_.db->transact([this, user_id, &cert = ctx->cert](repo::work& w) -> certctrl::result<bool> {
                return claim_names(*r_.domains, w, user_id, cert.sans, cert.domain_name, unix_now());
            });
        auto claimed = co_await std::move(aw_claim);
        if (!claimed) {
            limits_.refund(which, budget_key);
            co_return claimed.error();
        }
        auto aw_proof = domains_.require_verified(user_id, ctx->cert.sans);
        auto proof = co_await std::move(aw_proof);
        if (!proof) {
            limits_.refund(which, budget_key);
            co_return proof.error();
        }
    }
    // An ACME certificate's names are the user's (claimed now if they were not: certificates older than
    // domain ownership claim at their next issuance) before anything is ordered.
    auto aw_queue = r_.db->transact([this, user_id, cert_id, &kind,
                                     &cert = ctx->cert](repo::work& w) -> certctrl::result<issue_outcome> {
        auto slot = r_.issuance->lock_slot(w, user_id, cert_id);
        if (!slot) {
            return cert_not_found();
        }
        CERTCTRL_TRY(claimed, claim_names(*r_.domains, w, user_id, cert.sans, cert.domain_name, unix_now()));
        (void)claimed;
        if (slot->open_row) {
            return issue_outcome{*slot->open_row, std::nullopt};  // single in-flight: the open row answers
        }
        domain::issue_row row;
        row.cert_id = cert_id;
        row.user_id = user_id;
        row.attempt = slot->attempts + 1;
        row.kind = kind;
        row.created_at = unix_now();
        if (auto id = r_.issuance->insert(w, row, row.created_at)) {
            row.id = *id;
            return issue_outcome{row, std::nullopt, true};
        }
        // A renewal queued meanwhile (it does not wait for the certificate's lock) holds the slot: it
        // answers.
        if (auto open = r_.issuance->open_row(w, cert_id)) {
            return issue_outcome{*open, std::nullopt};
        }
        return make_error(errc::conflict, "The certificate's issuance is changing; try again");
    });
    auto queued = co_await std::move(aw_queue);
    spend(queued);
    if (queued && queued->row.status == "PENDING" && on_queued_) {
        on_queued_();
    }
    co_return queued;
}

task<repo::issued_material> issuance_service::make_self_ca(repo::issue_context ctx) {
    if (!ctx.ca) {
        co_return make_error(errc::internal, "The account's CA no longer exists; choose another account");
    }
    auto issue =
        [&keys = keys_, issuers = issuers_,
         ctx = std::move(ctx)]() -> certctrl::result<repo::issued_material> {  // named: see compute.hpp
        try {
            auto alg = crypto::parse_key_algorithm(ctx.cert.key_algorithm);
            if (!alg) {
                return make_error(errc::internal, "Unknown key algorithm " + ctx.cert.key_algorithm);
            }
            auto const issuer = issuers->of(*ctx.ca, keys);
            crypto::private_key const key = crypto::generate_private_key(*alg);
            crypto::leaf_request req;
            req.dns_names = ctx.cert.sans;
            req.subject.organization = ctx.cert.organization;
            req.subject.organizational_unit = ctx.cert.organizational_unit;
            req.subject.country = ctx.cert.country;
            req.subject.state = ctx.cert.state;
            req.subject.locality = ctx.cert.locality;
            req.valid_seconds = ctx.account.cert_valid_seconds.value_or(default_self_ca_validity);
            req.client_auth = ctx.cert.client_auth;
            auto leaf = issuer->issue(key.get(), req);
            repo::issued_material m;
            m.cert_pem = leaf.cert_pem + ctx.ca->cert_pem;
            m.serial_number = leaf.info.serial_hex;
            m.not_before = leaf.info.not_before;
            m.not_after = leaf.info.not_after;
            m.self_signed = true;
            m.verified = true;
            seal_certificate_key(m, keys, crypto::private_key_der(key.get()), ctx.cert);
            return m;
        } catch (std::exception const& e) {
            return make_error(errc::internal, "SELF_CA issuance failed", {}, e.what());
        }
    };
    auto aw_issue = async_compute(cpu_, std::move(issue));
    co_return co_await std::move(aw_issue);
}

task<issue_outcome> issuance_service::issue_inline(repo::issue_context ctx, std::string kind) {
    std::int64_t const user_id = ctx.cert.user_id;
    std::int64_t const cert_id = ctx.cert.id;
    std::optional<std::int64_t> const ca_id = ctx.ca ? std::optional<std::int64_t>(ctx.ca->id) : std::nullopt;
    domain::certificate cert = ctx.cert;
    // The key and certificate are made before the transaction, so no lock is held while the CPU works.
    auto aw_make = make_self_ca(std::move(ctx));
    auto made = co_await std::move(aw_make);
    if (!made) {
        spdlog::error("certificate {}: SELF_CA issuance failed: {} {}", cert_id, made.error().what,
                      made.error().detail);
    }
    auto aw_store = r_.db->transact([this, user_id, cert_id, ca_id, &kind, &made,
                                     &cert](repo::work& w) -> certctrl::result<issue_outcome> {
        auto slot = r_.issuance->lock_slot(w, user_id, cert_id);
        if (!slot) {
            return cert_not_found();
        }
        if (slot->open_row) {
            return issue_outcome{*slot->open_row, std::nullopt};  // single in-flight: the open row answers
        }
        std::int64_t const now = unix_now();
        domain::issue_row row;
        row.cert_id = cert_id;
        row.user_id = user_id;
        row.attempt = slot->attempts + 1;
        row.kind = kind;
        row.started_at = row.completed_at = row.created_at = now;
        row.status = made ? "SUCCESS" : "FAILED";
        if (!made) {
            row.error_message =
                made.error().what + (made.error().detail.empty() ? "" : ": " + made.error().detail);
        }
        row.id = *r_.issuance->insert(w, row, now);  // a closed row takes no slot
        if (!made) {
            emit_failed(w, row);
            return issue_outcome{row, std::nullopt, true};
        }
        store(w, user_id, cert_id, row.id, slot->devices, *made, ca_id, now);
        return issue_outcome{row, issued_record(cert, *made, now), true};
    });
    co_return co_await std::move(aw_store);
}

task<bool> issuance_service::complete(std::int64_t history_id, std::string owner, std::int64_t user_id,
                                      std::int64_t cert_id, repo::issued_material m,
                                      std::optional<std::int64_t> ca_id, std::string note) {
    return r_.db->transact([this, history_id, owner = std::move(owner), user_id, cert_id, m = std::move(m),
                            ca_id, note = std::move(note)](repo::work& w) -> certctrl::result<bool> {
        // The certificate row first (the lock order of assignments), then the worker's row: stored only while
        // this worker still holds the lease (a worker that lost it must not overwrite the new holder's work).
        auto slot = r_.issuance->lock_slot(w, user_id, cert_id);
        if (!slot || !r_.issuance->held_by(w, history_id, owner)) {
            return false;
        }
        std::int64_t const now = unix_now();
        store(w, user_id, cert_id, history_id, slot->devices, m, ca_id, now);
        r_.issuance->close(w, history_id, "SUCCESS", note, now);
        return true;
    });
}

task<bool> issuance_service::close(std::int64_t history_id, std::string status, std::string message,
                                   std::string owner) {
    if (status != "FAILED") {
        return r_.db->read(
            [this, history_id, status, message, owner](repo::work& w) -> certctrl::result<bool> {
                return r_.issuance->close(w, history_id, status, message, unix_now(), owner);
            });
    }
    return r_.db->transact(
        [this, history_id, status, message, owner](repo::work& w) -> certctrl::result<bool> {
            if (!r_.issuance->close(w, history_id, status, message, unix_now(), owner)) {
                return false;
            }
            if (auto row = r_.issuance->get(w, history_id)) {
                emit_failed(w, *row);
            }
            return true;
        });
}

void issuance_service::emit_failed(repo::work& w, domain::issue_row const& row) const {
    events_.emit_certificate(
        w, row.user_id, "certificate.issue_failed", row.cert_id,
        boost::json::object{{"history_id", row.id}, {"attempt", row.attempt}, {"error", row.error_message}});
}

task<repo::page<domain::issue_row>> issuance_service::history(std::int64_t user_id, std::int64_t cert_id,
                                                              repo::page_query q) {
    return r_.db->read(
        [this, user_id, cert_id, q](repo::work& w) -> certctrl::result<repo::page<domain::issue_row>> {
            if (!r_.certificates->get(w, user_id, cert_id)) {
                return cert_not_found();
            }
            return r_.issuance->list(w, user_id, cert_id, q);
        });
}

task<domain::certificate> issuance_service::result(std::int64_t user_id, std::int64_t cert_id) {
    return r_.db->read([this, user_id, cert_id](repo::work& w) -> certctrl::result<domain::certificate> {
        auto c = r_.certificates->get(w, user_id, cert_id);
        return c ? certctrl::result<domain::certificate>(std::move(*c)) : cert_not_found();
    });
}

task<domain::issue_row> issuance_service::cancel(std::int64_t user_id, std::int64_t cert_id,
                                                 std::int64_t history_id) {
    return r_.db->transact(
        [this, user_id, cert_id, history_id](repo::work& w) -> certctrl::result<domain::issue_row> {
            auto row = r_.issuance->get(w, history_id, repo::row_lock::update);
            if (!row || row->user_id != user_id || row->cert_id != cert_id) {
                return make_error(errc::not_found, "Issue history row not found");
            }
            if (row->status == "PENDING") {
                r_.issuance->close(w, history_id, "CANCELLED", "Cancelled by the user", unix_now());
            } else if (row->status == "PROCESSING") {
                r_.issuance->request_cancel(w, history_id);
            } else {
                return make_error(errc::conflict, "The issuance already finished (" + row->status + ")");
            }
            return std::move(*r_.issuance->get(w, history_id));
        });
}

task<export_material> issuance_service::export_for(std::int64_t user_id, std::int64_t cert_id) {
    using stored = std::pair<domain::certificate, std::optional<repo::stored_key>>;
    auto op = r_.db->read([this, user_id, cert_id](repo::work& w) -> certctrl::result<stored> {
        auto c = r_.certificates->get(w, user_id, cert_id);
        if (!c) {
            return cert_not_found();
        }
        return stored{std::move(*c), r_.certificates->key_of(w, user_id, cert_id)};
    });
    auto found = co_await std::move(op);
    if (!found) {
        co_return found.error();
    }
    domain::certificate const& c = found->first;
    if (c.cert_pem.empty() || !c.has_key || !found->second) {
        co_return make_error(errc::conflict,
                             "The certificate has not been issued yet (POST .../issues first)");
    }
    if (c.key_dist_policy == "DEVICE_REQUIRED") {
        co_return make_error(
            errc::forbidden,
            "Policy DEVICE_REQUIRED: the private key only ever reaches devices, never an export");
    }
    if (!c.server_decrypt_export) {
        co_return make_error(
            errc::forbidden,
            "Export of the private key is off for this certificate (server_decrypt_export is "
            "false; policy " +
                c.key_dist_policy + ")");
    }
    auto key = open_certificate_key(keys_, *found->second, cert_id);
    if (!key) {
        co_return key.error();
    }
    export_material out;
    out.cert = c;
    auto blocks = crypto::split_certificates(c.cert_pem);
    if (blocks.empty()) {
        co_return make_error(errc::internal, "Stored certificate PEM holds no certificate");
    }
    out.leaf_pem = blocks.front();
    for (std::size_t i = 1; i < blocks.size(); ++i) {
        out.chain_pem += blocks[i];
    }
    out.key_pem = std::move(*key);
    co_return out;
}

task<export_zip> issuance_service::zip_for(std::int64_t user_id, std::int64_t cert_id) {
    auto aw_material = export_for(user_id, cert_id);
    auto material = co_await std::move(aw_material);
    if (!material) {
        co_return material.error();
    }
    auto pack = [m = std::move(*material)]() -> certctrl::result<export_zip> {  // named: see compute.hpp
        try {
            export_zip out;
            out.cert_id = m.cert.id;
            // 40 characters of [A-Za-z0-9]: inside the documented alphabet A-Za-z0-9-_.
            out.password = crypto::random_base62(40);
            std::string const fullchain = m.leaf_pem + m.chain_pem;
            std::vector<std::pair<std::string, std::string>> entries;
            entries.emplace_back("private.key", m.key_pem);
            entries.emplace_back("certificate.pem", m.leaf_pem);
            if (!m.chain_pem.empty()) {
                entries.emplace_back("chain.pem", m.chain_pem);
            }
            entries.emplace_back("fullchain.pem", fullchain);
            entries.emplace_back("certificate.der", crypto::certificate_der(m.leaf_pem));
            entries.emplace_back(
                "bundle.pfx",
                crypto::make_pkcs12(m.key_pem, fullchain, out.password,
                                    m.cert.domain_name.empty() ? "Certificate" : m.cert.domain_name));
            entries.emplace_back("meta.json", "{\"cert_id\":" + std::to_string(m.cert.id) + "}");
            out.zip = make_zip(entries);
            return out;
        } catch (std::exception const& e) {
            return make_error(errc::internal, "Building the export bundle failed", {}, e.what());
        }
    };
    auto aw_pack = async_compute(cpu_, std::move(pack));
    co_return co_await std::move(aw_pack);
}

}  // namespace certctrl::service
