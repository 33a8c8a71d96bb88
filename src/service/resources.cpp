#include "certctrl/service/resources.hpp"

#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/compute.hpp"
#include "certctrl/service/devices.hpp"

#include <spdlog/spdlog.h>

#include "common.hpp"

namespace certctrl::service {

// ------------------------------------------------------------------------------------------------ CAs

std::string ca_service::seal_context(std::int64_t user_id) {
    return "cas.key:" + std::to_string(user_id);
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
    c.enc_private_key = keys_.seal(root->key_pem, seal_context(user_id));
    c.key_version = static_cast<int>(keys_.current_version());
    c.serial_number = root->info.serial_hex;
    c.path_length = in.path_length;
    c.valid_days = in.valid_days;
    c.key_usage = in.key_usage;
    c.not_before = root->info.not_before;
    c.not_after = root->info.not_after;
    c.created_at = c.updated_at = unix_now();
    auto aw = repo_.create(std::move(c));
    co_return co_await std::move(aw);
}

task<domain::ca> ca_service::get(std::int64_t user_id, std::int64_t id) {
    auto aw = repo_.get(user_id, id);
    auto r = co_await std::move(aw);
    co_return detail::found_or(std::move(r), "CA not found");
}

task<bool> ca_service::remove(std::int64_t user_id, std::int64_t id) {
    auto aw = repo_.remove(user_id, id);
    auto r = co_await std::move(aw);
    if (!r && r.error().code == errc::conflict) {
        co_return make_error(errc::conflict, "An ACME account (SELF_CA) still uses this CA; delete it first");
    }
    co_return detail::removed_or(std::move(r), "CA not found");
}

// --------------------------------------------------------------------------------------- certificates

task<domain::certificate> certificate_service::create(std::int64_t user_id, domain::certificate_input in) {
    domain::certificate c;
    c.user_id = user_id;
    c.public_id = crypto::uuid_v4();
    c.domain_name = in.domain_name;
    c.sans = in.sans;
    c.acct_id = in.acct_id;
    c.dns_provider_id = in.dns_provider_id;
    c.key_algorithm = in.key_algorithm;
    c.key_dist_policy = in.policy;
    c.auto_renew = in.auto_renew;
    c.client_auth = in.client_auth;
    c.server_decrypt_export = in.server_decrypt_export;
    c.organization = in.organization;
    c.organizational_unit = in.organizational_unit;
    c.country = in.country;
    c.state = in.state;
    c.locality = in.locality;
    c.created_at = c.updated_at = unix_now();
    auto aw = certs_.create(std::move(c));
    co_return co_await std::move(aw);
}

task<repo::page<domain::certificate>> certificate_service::list(std::int64_t user_id, repo::page_query q,
                                                                std::optional<std::int64_t> acct_id) {
    if (acct_id) {
        auto aw_acct = certs_.account_exists(user_id, *acct_id);
        auto exists = co_await std::move(aw_acct);
        if (!exists) {
            co_return exists.error();
        }
        if (!*exists) {
            co_return make_error(errc::not_found, "ACME account not found");
        }
    }
    auto aw = certs_.list(user_id, q, acct_id);
    co_return co_await std::move(aw);
}

task<domain::certificate> certificate_service::get(std::int64_t user_id, std::int64_t id) {
    auto aw = certs_.get(user_id, id);
    auto r = co_await std::move(aw);
    co_return detail::found_or(std::move(r), "Certificate not found");
}

task<bool> certificate_service::remove(std::int64_t user_id, std::int64_t id) {
    auto aw = certs_.remove(user_id, id);
    auto r = co_await std::move(aw);
    co_return detail::removed_or(std::move(r), "Certificate not found");
}

task<repo::page<domain::device>> certificate_service::devices_of(std::int64_t user_id, std::int64_t cert_id,
                                                                 repo::page_query q) {
    auto aw_cert = get(user_id, cert_id);
    auto cert = co_await std::move(aw_cert);
    if (!cert) {
        co_return cert.error();
    }
    auto aw = devices_.list_for_certificate(user_id, cert_id, q);
    co_return co_await std::move(aw);
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
    auto aw = devices_.create(std::move(d));
    auto r = co_await std::move(aw);
    if (!r && r.error().code == errc::conflict) {
        co_return make_error(errc::conflict, "A device with this device_public_id is already registered",
                             {{"field", "device_public_id"}});
    }
    co_return r;
}

task<domain::device> certificate_service::get_device(std::int64_t user_id, std::int64_t id) {
    auto aw = devices_.get(user_id, id);
    auto r = co_await std::move(aw);
    co_return detail::found_or(std::move(r), "Device not found");
}

task<domain::device> certificate_service::get_device_by_public_id(std::int64_t user_id,
                                                                  std::string public_id) {
    auto uuid = domain::normalize_uuid(public_id);
    if (!uuid) {
        co_return make_error(errc::bad_request, "device_public_id must be a UUID",
                             {{"param", "device_public_id"}});
    }
    auto aw = devices_.get_by_public_id(user_id, *uuid);
    auto r = co_await std::move(aw);
    co_return detail::found_or(std::move(r), "Device not found");
}

task<bool> certificate_service::remove_device(std::int64_t user_id, std::int64_t id) {
    auto aw = devices_.remove(user_id, id);
    auto r = co_await std::move(aw);
    co_return detail::removed_or(std::move(r), "Device not found");
}

task<repo::page<domain::certificate>> certificate_service::certificates_of(std::int64_t user_id,
                                                                           std::int64_t device_id,
                                                                           repo::page_query q) {
    auto aw_dev = get_device(user_id, device_id);
    auto dev = co_await std::move(aw_dev);
    if (!dev) {
        co_return dev.error();
    }
    auto aw = certs_.list_for_device(user_id, device_id, q);
    co_return co_await std::move(aw);
}

task<domain::certificate> certificate_service::certificate_of(std::int64_t user_id, std::int64_t device_id,
                                                              std::int64_t cert_id) {
    auto aw_a = devices_.get_assignment(user_id, cert_id, device_id);
    auto a = co_await std::move(aw_a);
    if (!a) {
        co_return a.error();
    }
    if (!*a) {
        co_return make_error(errc::not_found, "The certificate is not assigned to this device");
    }
    auto aw = get(user_id, cert_id);
    co_return co_await std::move(aw);
}

task<domain::assignment> certificate_service::assign(std::int64_t user_id, std::int64_t cert_id,
                                                     std::int64_t device_id) {
    using outcome = repo::device_repository::assign_outcome;
    auto aw = devices_.assign(user_id, cert_id, device_id, unix_now(), make_device_sealer(keys_));
    auto r = co_await std::move(aw);
    if (!r) {
        co_return r.error();
    }
    switch (*r) {
        case outcome::no_certificate:
            co_return make_error(errc::not_found, "Certificate " + std::to_string(cert_id) + " not found",
                                 {{"field", "cert_id"}});
        case outcome::no_device:
            co_return make_error(errc::not_found, "Device " + std::to_string(device_id) + " not found",
                                 {{"field", "device_id"}});
        case outcome::device_inactive:
            co_return make_error(errc::conflict, "The device is not ACTIVE", {{"field", "device_id"}});
        case outcome::already:
            co_return make_error(errc::conflict, "The certificate is already assigned to this device");
        case outcome::assigned:
        case outcome::assigned_pending:
            break;
    }
    auto aw_a = devices_.get_assignment(user_id, cert_id, device_id);
    auto a = co_await std::move(aw_a);
    co_return detail::found_or(std::move(a), "Assignment not found");
}

task<bool> certificate_service::unassign(std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id) {
    auto aw = devices_.unassign(user_id, cert_id, device_id);
    auto r = co_await std::move(aw);
    co_return detail::removed_or(std::move(r), "The certificate is not assigned to this device");
}

}  // namespace certctrl::service
