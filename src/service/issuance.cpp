#include "certctrl/service/issuance.hpp"

#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/compute.hpp"
#include "certctrl/service/devices.hpp"
#include "certctrl/service/resources.hpp"
#include "certctrl/service/zip.hpp"

#include "common.hpp"

#include <spdlog/spdlog.h>

namespace certctrl::service {

namespace {

constexpr std::int64_t default_self_ca_validity = 90LL * 86400;

}  // namespace

std::string issuance_service::data_key_context(std::int64_t cert_id) {
    return "certificates." + std::to_string(cert_id);
}

void seal_certificate_key(repo::issued_material& m, crypto::keyring const& keys, std::string const& key_pem,
                          domain::certificate const& cert) {
    std::string data_key = crypto::random_bytes(32);
    m.private_key = crypto::aes256gcm_encrypt(data_key, crypto::private_key_der(key_pem));
    m.data_key = keys.wrap(data_key, issuance_service::data_key_context(cert.id));
    m.keep_master_copy = cert.key_dist_policy != "DEVICE_REQUIRED";
    m.plain_data_key = std::move(data_key);
    m.sealer = make_device_sealer(keys);
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

task<issue_outcome> issuance_service::request(std::int64_t user_id, std::int64_t cert_id, std::string kind) {
    auto aw_budget = limits_.check(rate_limiter::limit::issuance, "user:" + std::to_string(user_id));
    auto budget = co_await std::move(aw_budget);
    if (!budget) {
        co_return budget.error();
    }
    auto aw_ctx = repo_.context(user_id, cert_id);
    auto ctx = co_await std::move(aw_ctx);
    if (!ctx) {
        co_return ctx.error();
    }
    // A SELF_CA row is started right here; workers leave it alone for a minute so the caller gets SUCCESS.
    bool const inline_ca = *ctx && (*ctx)->account.provider == "SELF_CA";
    std::int64_t const now = unix_now();
    auto aw_enqueue = repo_.enqueue(user_id, cert_id, kind, now, inline_ca ? now + 60 : now);
    auto queued = co_await std::move(aw_enqueue);
    if (!queued) {
        co_return queued.error();
    }
    issue_outcome out{queued->row, std::nullopt};
    if (!queued->created) {
        co_return out;  // single in-flight: the open row answers
    }
    if (!inline_ca) {
        if (on_queued_) {
            on_queued_();
        }
        co_return out;
    }
    auto aw_start = repo_.start(out.row.id, "inline", unix_now() + 300, unix_now());
    auto started = co_await std::move(aw_start);
    if (!started) {
        co_return started.error();
    }
    if (*started) {
        auto aw_issue = issue_self_ca(std::move(**ctx), out.row);
        auto issued = co_await std::move(aw_issue);
        if (!issued) {
            co_return issued.error();
        }
    }
    auto aw_row = repo_.get(out.row.id);
    auto row = co_await std::move(aw_row);
    if (!row) {
        co_return row.error();
    }
    if (*row) {
        out.row = **row;
    }
    if (out.row.status == "SUCCESS") {
        auto aw_cert = certs_.get(user_id, cert_id);
        auto cert = co_await std::move(aw_cert);
        if (cert && *cert) {
            out.cert = **cert;
        }
    }
    co_return out;
}

task<bool> issuance_service::issue_self_ca(repo::issue_context ctx, domain::issue_row row) {
    if (!ctx.ca) {
        auto aw = repo_.finish_without_certificate(
            row.id, "FAILED", "The account's CA no longer exists; choose another account", unix_now());
        co_return co_await std::move(aw);
    }
    auto issue = [&keys = keys_,
                  ctx]() -> certctrl::result<repo::issued_material> {  // named: see compute.hpp
        try {
            auto ca_key = keys.open(ctx.ca->enc_private_key, ca_service::seal_context(ctx.cert.user_id));
            if (!ca_key) {
                return make_error(errc::internal, "The CA key does not open (master key changed?)");
            }
            auto alg = crypto::parse_key_algorithm(ctx.cert.key_algorithm);
            if (!alg) {
                return make_error(errc::internal, "Unknown key algorithm " + ctx.cert.key_algorithm);
            }
            std::string const key_pem = crypto::generate_private_key_pem(*alg);
            crypto::leaf_request req;
            req.ca_cert_pem = ctx.ca->cert_pem;
            req.ca_key_pem = *ca_key;
            req.key_pem = key_pem;
            req.dns_names = ctx.cert.sans;
            req.subject.organization = ctx.cert.organization;
            req.subject.organizational_unit = ctx.cert.organizational_unit;
            req.subject.country = ctx.cert.country;
            req.subject.state = ctx.cert.state;
            req.subject.locality = ctx.cert.locality;
            req.valid_seconds = ctx.account.cert_valid_seconds.value_or(default_self_ca_validity);
            req.client_auth = ctx.cert.client_auth;
            auto leaf = crypto::issue_leaf(req);
            repo::issued_material m;
            m.cert_pem = leaf.cert_pem + ctx.ca->cert_pem;
            m.serial_number = leaf.info.serial_hex;
            m.not_before = leaf.info.not_before;
            m.not_after = leaf.info.not_after;
            m.self_signed = true;
            m.verified = true;
            seal_certificate_key(m, keys, key_pem, ctx.cert);
            return m;
        } catch (std::exception const& e) {
            return make_error(errc::internal, "SELF_CA issuance failed", {}, e.what());
        }
    };
    auto aw_issue = async_compute(cpu_, std::move(issue));
    auto material = co_await std::move(aw_issue);
    if (!material) {
        spdlog::error("issue {} (certificate {}): {} {}", row.id, row.cert_id, material.error().what,
                      material.error().detail);
        auto aw_fail = repo_.finish_without_certificate(
            row.id, "FAILED",
            material.error().what + (material.error().detail.empty() ? "" : ": " + material.error().detail),
            unix_now());
        co_return co_await std::move(aw_fail);
    }
    auto aw_store = repo_.succeed(row.id, std::move(*material), unix_now());
    auto stored = co_await std::move(aw_store);
    if (stored && *stored) {
        auto aw_use = repo_.note_ca_use(ctx.ca->id, unix_now());
        co_await std::move(aw_use);
    }
    co_return stored;
}

task<repo::page<domain::issue_row>> issuance_service::history(std::int64_t user_id, std::int64_t cert_id,
                                                              repo::page_query q) {
    auto aw_cert = result(user_id, cert_id);
    auto cert = co_await std::move(aw_cert);
    if (!cert) {
        co_return cert.error();
    }
    auto aw = repo_.list(user_id, cert_id, q);
    co_return co_await std::move(aw);
}

task<domain::certificate> issuance_service::result(std::int64_t user_id, std::int64_t cert_id) {
    auto aw = certs_.get(user_id, cert_id);
    auto cert = co_await std::move(aw);
    co_return detail::found_or(std::move(cert), "Certificate not found");
}

task<domain::issue_row> issuance_service::cancel(std::int64_t user_id, std::int64_t cert_id,
                                                 std::int64_t history_id) {
    auto aw = repo_.cancel(user_id, cert_id, history_id, unix_now());
    co_return co_await std::move(aw);
}

task<export_material> issuance_service::export_for(std::int64_t user_id, std::int64_t cert_id) {
    auto aw_cert = result(user_id, cert_id);
    auto cert = co_await std::move(aw_cert);
    if (!cert) {
        co_return cert.error();
    }
    domain::certificate const& c = *cert;
    if (c.cert_pem.empty() || !c.has_key) {
        co_return make_error(errc::conflict,
                             "The certificate has not been issued yet (POST .../issues first)");
    }
    if (c.key_dist_policy == "DEVICE_REQUIRED") {
        co_return make_error(
            errc::forbidden,
            "Policy DEVICE_REQUIRED: the private key only ever reaches devices, never an export");
    }
    if (!c.server_decrypt_export) {
        co_return make_error(errc::forbidden,
                             "Export of the private key is off for this certificate "
                             "(server_decrypt_export is false; policy " +
                                 c.key_dist_policy + ")");
    }
    auto aw_key = repo_.key_of(user_id, cert_id);
    auto stored = co_await std::move(aw_key);
    if (!stored) {
        co_return stored.error();
    }
    if (!*stored) {
        co_return make_error(errc::conflict,
                             "The certificate has not been issued yet (POST .../issues first)");
    }
    auto key = open_certificate_key(keys_, **stored, cert_id);
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
