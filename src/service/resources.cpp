#include "certctrl/service/resources.hpp"

#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/compute.hpp"
#include "certctrl/service/device_auth.hpp"
#include "certctrl/service/domains.hpp"

#include <spdlog/spdlog.h>

namespace certctrl::service {

namespace {

app_error not_found(char const* what) {
    return make_error(errc::not_found, what);
}

}  // namespace

// ------------------------------------------------------------------------------------------------ CAs

std::string ca_service::legacy_seal_context(std::int64_t user_id) {
    return "cas.key:" + std::to_string(user_id);
}

std::string ca_service::seal_context(std::int64_t user_id, std::int64_t ca_id) {
    return legacy_seal_context(user_id) + ":" + std::to_string(ca_id);
}

task<domain::ca> ca_service::create(std::int64_t user_id, domain::ca_input in) {
    if (keys_.empty()) {
        co_return make_error(errc::unavailable,
                             "No master key is configured (crypto.master_key_env / master_key_file)");
    }
    crypto::root_ca_request req;
    req.algorithm = *crypto::parse_key_algorithm(in.key_algorithm);
    req.subject = {in.subject.common_name, in.subject.organization, in.subject.organizational_unit,
                   in.subject.country,     in.subject.state,        in.subject.locality};
    req.valid_days = in.valid_days;
    req.path_length = in.path_length;
    req.key_usage = in.key_usage;
    auto make_root = [req]() -> std::optional<crypto::root_ca> {  // named: see compute.hpp
        try {
            return crypto::create_root_ca(req);
        } catch (std::exception const& e) {
            spdlog::error("CA creation failed: {}", e.what());
            return std::nullopt;
        }
    };
    auto aw_root = async_compute(cpu_, std::move(make_root));
    std::optional<crypto::root_ca> root = co_await std::move(aw_root);
    if (!root) {
        co_return make_error(errc::internal, "CA creation failed");
    }
    domain::ca c;
    c.user_id = user_id;
    c.name = in.name;
    c.key_algorithm = in.key_algorithm;
    c.subject = in.subject;
    c.subject_line = root->info.subject;
    c.cert_pem = root->cert_pem;
    c.enc_private_key = "";  // sealed once the row has its id (below), in the same transaction
    c.key_version = static_cast<int>(keys_.current_version());
    c.serial_number = root->info.serial_hex;
    c.path_length = in.path_length;
    c.valid_days = in.valid_days;
    c.key_usage = in.key_usage;
    c.not_before = root->info.not_before;
    c.not_after = root->info.not_after;
    c.created_at = c.updated_at = unix_now();
    auto op = r_.db->transact([this, &c, &root](repo::work& w) -> result<domain::ca> {
        domain::ca made = r_.cas->insert(w, c);
        made.enc_private_key = keys_.seal(root->key_pem, seal_context(made.user_id, made.id));
        r_.cas->set_key(w, made.id, made.enc_private_key);
        return made;
    });
    co_return co_await std::move(op);
}

task<repo::page<domain::ca>> ca_service::list(std::int64_t user_id, repo::page_query q) {
    return r_.db->read([this, user_id, q](repo::work& w) -> result<repo::page<domain::ca>> {
        return r_.cas->list(w, user_id, q);
    });
}

task<domain::ca> ca_service::get(std::int64_t user_id, std::int64_t id) {
    return r_.db->read([this, user_id, id](repo::work& w) -> result<domain::ca> {
        auto c = r_.cas->get(w, user_id, id);
        return c ? result<domain::ca>(std::move(*c)) : not_found("CA not found");
    });
}

task<bool> ca_service::remove(std::int64_t user_id, std::int64_t id) {
    auto op = r_.db->transact([this, user_id, id](repo::work& w) -> result<bool> {
        auto ca = r_.cas->get(w, user_id, id, repo::row_lock::update);
        if (!ca) {
            return not_found("CA not found");
        }
        // The devices that trust it are told (ca.unassigned) in the same transaction.
        signals_.emit_all(
            w, r_.device_cas->devices_of(w, id), "ca.unassigned",
            boost::json::object{{"ca_id", id}, {"serial", ca->serial_number}, {"ca_name", ca->name}});
        r_.device_cas->remove_all(w, id);
        r_.cas->remove(w, id);
        return true;
    });
    auto r = co_await std::move(op);
    if (!r && r.error().code == errc::conflict) {
        co_return make_error(errc::conflict, "An ACME account (SELF_CA) still uses this CA; delete it first");
    }
    co_return r;
}

// --------------------------------------------------------------------------------------- certificates

namespace {

// The fallback accounts of a certificate whose account has `provider`: each the user's own (shared-locked
// until the write commits) and an ACME one; a private CA takes no part in failover.
result<bool> check_fallbacks(repo::repositories& r, repo::work& w, std::int64_t user_id,
                             std::string const& provider, std::vector<std::int64_t> const& ids) {
    if (!ids.empty() && provider == "SELF_CA") {
        return make_error(errc::bad_request, "fallback_acct_ids apply to certificates from ACME CAs only",
                          {{"field", "fallback_acct_ids"}});
    }
    for (auto id : ids) {
        auto p = r.certificates->account_provider(w, user_id, id, repo::row_lock::shared);
        if (!p) {
            return make_error(errc::not_found, "ACME account " + std::to_string(id) + " not found",
                              {{"field", "fallback_acct_ids"}});
        }
        if (*p == "SELF_CA") {
            return make_error(errc::bad_request,
                              "fallback_acct_ids name ACME accounts only; account " + std::to_string(id) +
                                  " is a private CA",
                              {{"field", "fallback_acct_ids"}});
        }
    }
    return true;
}

}  // namespace

task<domain::certificate> certificate_service::create(std::int64_t user_id, domain::certificate_input in) {
    domain::certificate c;
    c.user_id = user_id;
    c.public_id = crypto::uuid_v4();
    c.domain_name = in.domain_name;
    c.sans = in.sans;
    c.acct_id = in.acct_id;
    c.fallback_acct_ids = in.fallback_acct_ids;
    c.dns_provider_id = in.dns_provider_id;
    c.key_algorithm = in.key_algorithm;
    c.key_dist_policy = in.policy;
    c.auto_renew = in.auto_renew;
    c.client_auth = in.client_auth;
    c.server_decrypt_export = in.server_decrypt_export;
    c.challenge = in.challenge;
    c.organization = in.organization;
    c.organizational_unit = in.organizational_unit;
    c.country = in.country;
    c.state = in.state;
    c.locality = in.locality;
    c.created_at = c.updated_at = unix_now();
    return r_.db->transact([this, c = std::move(c)](repo::work& w) -> result<domain::certificate> {
        // Shared locks keep the account and provider from being deleted before the insert commits.
        auto provider = r_.certificates->account_provider(w, c.user_id, c.acct_id, repo::row_lock::shared);
        if (!provider) {
            return make_error(errc::not_found, "ACME account " + std::to_string(c.acct_id) + " not found",
                              {{"field", "acct_id"}});
        }
        CERTCTRL_TRY(fallbacks_ok, check_fallbacks(r_, w, c.user_id, *provider, c.fallback_acct_ids));
        (void)fallbacks_ok;
        if (c.dns_provider_id &&
            !r_.certificates->dns_provider_exists(w, c.user_id, *c.dns_provider_id, repo::row_lock::shared)) {
            return make_error(errc::not_found,
                              "DNS provider " + std::to_string(*c.dns_provider_id) + " not found",
                              {{"field", "dns_provider_id"}});
        }
        if (*provider != "SELF_CA") {
            // Names of certificates from ACME CAs belong to the first user who claims them; a SELF_CA
            // certificate's names are private to its user and claim nothing.
            CERTCTRL_TRY(claimed,
                         claim_names(*r_.domains, w, c.user_id, c.sans, c.domain_name, c.created_at));
            (void)claimed;
        }
        return r_.certificates->insert(w, c);
    });
}

task<certificate_update> certificate_service::update(std::int64_t user_id, std::int64_t id,
                                                     boost::json::object patch) {
    std::int64_t const now = unix_now();
    return r_.db->transact([this, user_id, id, now,
                            patch = std::move(patch)](repo::work& w) -> result<certificate_update> {
        auto cur = r_.certificates->get(w, user_id, id, repo::row_lock::update);
        if (!cur) {
            return not_found("Certificate not found");
        }
        CERTCTRL_TRY(in, domain::merge_certificate_patch(*cur, patch));
        domain::certificate next = *cur;
        next.domain_name = in.domain_name;
        next.sans = in.sans;
        next.acct_id = in.acct_id;
        next.fallback_acct_ids = in.fallback_acct_ids;
        next.dns_provider_id = in.dns_provider_id;
        next.key_algorithm = in.key_algorithm;
        next.key_dist_policy = in.policy;
        next.auto_renew = in.auto_renew;
        next.client_auth = in.client_auth;
        next.server_decrypt_export = in.server_decrypt_export;
        next.challenge = in.challenge;
        next.organization = in.organization;
        next.organizational_unit = in.organizational_unit;
        next.country = in.country;
        next.state = in.state;
        next.locality = in.locality;
        certificate_update out;
        bool reissue = false;
        auto note = [&](bool differs, char const* field, bool needs_reissue) {
            if (differs) {
                out.changed.emplace_back(field);
                reissue = reissue || needs_reissue;
            }
        };
        note(next.domain_name != cur->domain_name, "domain_name", true);
        note(next.sans != cur->sans, "sans", true);
        note(next.acct_id != cur->acct_id, "acct_id", true);
        note(next.fallback_acct_ids != cur->fallback_acct_ids, "fallback_acct_ids", false);
        note(next.dns_provider_id != cur->dns_provider_id, "dns_provider_id", false);
        note(next.key_algorithm != cur->key_algorithm, "key_algorithm", true);
        note(next.key_dist_policy != cur->key_dist_policy, "key_dist_policy", false);
        note(next.auto_renew != cur->auto_renew, "auto_renew", false);
        note(next.client_auth != cur->client_auth, "client_auth", true);
        note(next.server_decrypt_export != cur->server_decrypt_export, "server_decrypt_export", false);
        note(next.challenge != cur->challenge, "challenge", false);
        note(next.organization != cur->organization || next.organizational_unit != cur->organizational_unit ||
                 next.country != cur->country || next.state != cur->state || next.locality != cur->locality,
             "subject", true);
        bool const issued = cur->has_certificate;
        bool const policy_changed = next.key_dist_policy != cur->key_dist_policy;
        if (issued && policy_changed &&
            (cur->key_dist_policy == "DEVICE_REQUIRED" || next.key_dist_policy == "DEVICE_REQUIRED")) {
            return make_error(
                errc::conflict,
                "The policy cannot change to or from DEVICE_REQUIRED once a key exists (the key "
                "would have to leave or reach the server); create a new certificate with that "
                "policy",
                {{"field", "key_dist_policy"}});
        }
        auto provider = r_.certificates->account_provider(w, user_id, next.acct_id, repo::row_lock::shared);
        if (!provider) {
            return make_error(errc::not_found, "ACME account " + std::to_string(next.acct_id) + " not found",
                              {{"field", "acct_id"}});
        }
        CERTCTRL_TRY(fallbacks_ok, check_fallbacks(r_, w, user_id, *provider, next.fallback_acct_ids));
        (void)fallbacks_ok;
        if (next.dns_provider_id && next.dns_provider_id != cur->dns_provider_id &&
            !r_.certificates->dns_provider_exists(w, user_id, *next.dns_provider_id,
                                                  repo::row_lock::shared)) {
            return make_error(errc::not_found,
                              "DNS provider " + std::to_string(*next.dns_provider_id) + " not found",
                              {{"field", "dns_provider_id"}});
        }
        if (*provider != "SELF_CA" && (next.sans != cur->sans || next.acct_id != cur->acct_id)) {
            CERTCTRL_TRY(claimed, claim_names(*r_.domains, w, user_id, next.sans, next.domain_name, now));
            (void)claimed;
        }
        if (out.changed.empty()) {
            out.cert = std::move(*cur);
            return out;
        }
        r_.certificates->update_settings(w, next, now);
        if (issued && policy_changed) {
            // HYBRID <-> MASTER_ONLY: the devices holding it are sealed again (or not) and told.
            auto devices = r_.assignments->devices_of(w, id);
            r_.devices->lock(w, devices);
            for (auto d : devices) {
                (void)wraps_.wrap(w, id, d);
            }
        }
        auto fresh = r_.certificates->get(w, user_id, id);
        out.cert = fresh ? std::move(*fresh) : std::move(next);
        out.reissue_required = issued && reissue;
        return out;
    });
}

task<repo::page<domain::certificate>> certificate_service::list(std::int64_t user_id, repo::page_query q,
                                                                repo::certificate_filter f, bool with_pem) {
    f.now = unix_now();
    return r_.db->read([this, user_id, q, f = std::move(f),
                        with_pem](repo::work& w) -> result<repo::page<domain::certificate>> {
        if (f.acct_id && !r_.certificates->account_exists(w, user_id, *f.acct_id, repo::row_lock::none)) {
            return not_found("ACME account not found");
        }
        return r_.certificates->list(w, user_id, q, f, with_pem);
    });
}

task<certificate_listing> certificate_service::list_changed(
    std::int64_t user_id, repo::page_query q, repo::certificate_filter f,
    std::function<bool(repo::cert_version const&)> known) {
    f.now = unix_now();
    return r_.db->read([this, user_id, q, f = std::move(f),
                        known = std::move(known)](repo::work& w) -> result<certificate_listing> {
        if (f.acct_id && !r_.certificates->account_exists(w, user_id, *f.acct_id, repo::row_lock::none)) {
            return not_found("ACME account not found");
        }
        certificate_listing out;
        out.page = r_.certificates->list_versions(w, user_id, q, f);
        std::vector<std::int64_t> unknown;
        for (auto const& v : out.page.items) {
            if (!known(v)) {
                unknown.push_back(v.id);
            }
        }
        if (!unknown.empty()) {
            out.rows = r_.certificates->get_many(w, user_id, unknown);
        }
        return out;
    });
}

task<domain::certificate> certificate_service::get(std::int64_t user_id, std::int64_t id) {
    return r_.db->read([this, user_id, id](repo::work& w) -> result<domain::certificate> {
        auto c = r_.certificates->get(w, user_id, id);
        return c ? result<domain::certificate>(std::move(*c)) : not_found("Certificate not found");
    });
}

task<bool> certificate_service::remove(std::int64_t user_id, std::int64_t id) {
    return r_.db->transact([this, user_id, id](repo::work& w) -> result<bool> {
        if (!r_.certificates->get(w, user_id, id, repo::row_lock::update)) {
            return not_found("Certificate not found");
        }
        // Devices holding it are told (cert.unassigned) in the same transaction; a new assignment waits for
        // the certificate's lock, so the list is complete.
        signals_.emit_all(w, r_.assignments->devices_of(w, id), "cert.unassigned",
                          boost::json::object{{"cert_id", id}});
        events_.emit_certificate(w, user_id, "certificate.deleted", id);  // the record as it was
        r_.certificates->remove(w, id);
        return true;
    });
}

task<repo::page<domain::device>> certificate_service::devices_of(std::int64_t user_id, std::int64_t cert_id,
                                                                 repo::page_query q) {
    return r_.db->read([this, user_id, cert_id, q](repo::work& w) -> result<repo::page<domain::device>> {
        if (!r_.certificates->get(w, user_id, cert_id)) {
            return not_found("Certificate not found");
        }
        return r_.devices->list_for_certificate(w, user_id, cert_id, q);
    });
}

// -------------------------------------------------------------------------------------------- devices

task<domain::device> certificate_service::register_device(std::int64_t user_id, domain::device_input in,
                                                          client_info client) {
    domain::device d;
    d.user_id = user_id;
    d.device_public_id = in.device_public_id.value_or(crypto::uuid_v4());
    d.name = in.name;
    d.description = in.description;
    d.device_type = in.device_type;
    d.platform = in.platform;
    d.model = in.model;
    d.app_version = in.app_version;
    d.ip = client.ip.substr(0, 45);
    d.user_agent = client.user_agent.substr(0, 255);
    d.created_at = unix_now();
    auto op = r_.db->transact([this, &d](repo::work& w) -> result<domain::device> {
        if (max_devices_ > 0 &&
            r_.devices->count_locked(w, d.user_id) >= static_cast<std::int64_t>(max_devices_)) {
            return device_quota_error(max_devices_);
        }
        return r_.devices->insert(w, d);
    });
    auto r = co_await std::move(op);
    if (!r && r.error().code == errc::conflict) {
        co_return make_error(errc::conflict, "A device with this device_public_id is already registered",
                             {{"field", "device_public_id"}});
    }
    co_return r;
}

task<repo::page<domain::device>> certificate_service::list_devices(std::int64_t user_id, repo::page_query q) {
    return r_.db->read([this, user_id, q](repo::work& w) -> result<repo::page<domain::device>> {
        return r_.devices->list(w, user_id, q);
    });
}

task<domain::device> certificate_service::get_device(std::int64_t user_id, std::int64_t id) {
    return r_.db->read([this, user_id, id](repo::work& w) -> result<domain::device> {
        auto d = r_.devices->get(w, user_id, id);
        return d ? result<domain::device>(std::move(*d)) : not_found("Device not found");
    });
}

task<domain::device> certificate_service::get_device_by_public_id(std::int64_t user_id,
                                                                  std::string public_id) {
    auto uuid = domain::normalize_uuid(public_id);
    if (!uuid) {
        co_return make_error(errc::bad_request, "device_public_id must be a UUID",
                             {{"param", "device_public_id"}});
    }
    auto op = r_.db->read([this, user_id, &uuid](repo::work& w) -> result<domain::device> {
        auto d = r_.devices->by_public_id(w, user_id, *uuid);
        return d ? result<domain::device>(std::move(*d)) : not_found("Device not found");
    });
    co_return co_await std::move(op);
}

task<bool> certificate_service::remove_device(std::int64_t user_id, std::int64_t id) {
    return r_.db->transact([this, user_id, id](repo::work& w) -> result<bool> {
        if (!r_.devices->lock_owned(w, user_id, id)) {
            return not_found("Device not found");
        }
        r_.devices->remove(w, id);
        return true;
    });
}

task<repo::page<domain::certificate>> certificate_service::certificates_of(std::int64_t user_id,
                                                                           std::int64_t device_id,
                                                                           repo::page_query q,
                                                                           bool with_pem) {
    return r_.db->read(
        [this, user_id, device_id, q, with_pem](repo::work& w) -> result<repo::page<domain::certificate>> {
            if (!r_.devices->get(w, user_id, device_id)) {
                return not_found("Device not found");
            }
            return r_.certificates->list_for_device(w, user_id, device_id, q, with_pem);
        });
}

task<domain::certificate> certificate_service::certificate_of(std::int64_t user_id, std::int64_t device_id,
                                                              std::int64_t cert_id) {
    return r_.db->read([this, user_id, device_id, cert_id](repo::work& w) -> result<domain::certificate> {
        if (!r_.assignments->get(w, user_id, cert_id, device_id)) {
            return not_found("The certificate is not assigned to this device");
        }
        auto c = r_.certificates->get(w, user_id, cert_id);
        return c ? result<domain::certificate>(std::move(*c)) : not_found("Certificate not found");
    });
}

task<domain::assignment> certificate_service::assign(std::int64_t user_id, std::int64_t cert_id,
                                                     std::int64_t device_id) {
    return r_.db->transact([this, user_id, cert_id, device_id](repo::work& w) -> result<domain::assignment> {
        // The certificate first, then the device: the order issuance success takes them in.
        auto cert = r_.certificates->get(w, user_id, cert_id, repo::row_lock::shared);
        if (!cert) {
            return make_error(errc::not_found, "Certificate " + std::to_string(cert_id) + " not found",
                              {{"field", "cert_id"}});
        }
        if (!r_.devices->lock_owned(w, user_id, device_id)) {
            return make_error(errc::not_found, "Device " + std::to_string(device_id) + " not found",
                              {{"field", "device_id"}});
        }
        auto dev = r_.devices->get(w, user_id, device_id);
        if (dev->status != "ACTIVE") {
            return make_error(errc::conflict, "The device is not ACTIVE", {{"field", "device_id"}});
        }
        if (r_.assignments->exists(w, cert_id, device_id)) {
            return make_error(errc::conflict, "The certificate is already assigned to this device");
        }
        std::int64_t const now = unix_now();
        r_.assignments->insert(w, cert_id, device_id, now);
        // The key is sealed to the device now where it can be (cert.updated is signalled either way), and the
        // install config gains an item for the certificate so the agent deploys something.
        wraps_.wrap(w, cert_id, device_id);
        configs_.add_default_item(w, user_id, device_id, cert_id, cert->domain_name, now);
        return std::move(*r_.assignments->get(w, user_id, cert_id, device_id));
    });
}

task<bool> certificate_service::unassign(std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id) {
    return r_.db->transact([this, user_id, cert_id, device_id](repo::work& w) -> result<bool> {
        if (!r_.devices->lock_owned(w, user_id, device_id) ||
            !r_.assignments->remove(w, user_id, cert_id, device_id)) {
            return not_found("The certificate is not assigned to this device");
        }
        signals_.emit(w, device_id, "cert.unassigned", boost::json::object{{"cert_id", cert_id}});
        return true;
    });
}

}  // namespace certctrl::service
