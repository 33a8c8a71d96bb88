#include "certctrl/service/acme_accounts.hpp"

#include <spdlog/spdlog.h>

#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/keys.hpp"
#include "certctrl/service/compute.hpp"

namespace certctrl::service {

std::string acme_account_service::legacy_seal_context(std::int64_t user_id, std::string_view what) {
    return "acme_accounts." + std::string(what) + ":" + std::to_string(user_id);
}

std::string acme_account_service::seal_context(std::int64_t user_id, std::string_view what,
                                               std::int64_t account_id) {
    return legacy_seal_context(user_id, what) + ":" + std::to_string(account_id);
}

task<domain::acme_account> acme_account_service::create(std::int64_t user_id, domain::acme_account_input in) {
    if (keys_.empty()) {
        co_return make_error(errc::unavailable,
                             "No master key is configured (crypto.master_key_env / master_key_file)");
    }
    if (in.ca_id) {
        auto aw_ca = repo_.ca_belongs_to(user_id, *in.ca_id);
        auto owned = co_await std::move(aw_ca);
        if (!owned)
            co_return owned.error();
        if (!*owned) {
            co_return make_error(errc::not_found, "CA " + std::to_string(*in.ca_id) + " not found",
                                 {{"field", "ca_id"}});
        }
    }
    domain::acme_account a;
    a.user_id = user_id;
    a.name = in.name;
    a.email = in.email;
    a.provider = in.provider;
    a.directory_url = in.directory_url;
    a.ca_id = in.ca_id;
    a.key_algorithm = in.key_algorithm;
    a.eab_kid = in.eab_kid;
    a.leaf_key_algorithm = in.leaf_key_algorithm;
    a.leaf_rsa_bits = in.leaf_rsa_bits;
    a.leaf_ec_curve = in.leaf_ec_curve;
    a.cert_valid_seconds = in.cert_valid_seconds;
    std::string account_pem;
    if (!in.key_algorithm.empty()) {
        auto alg = *crypto::parse_key_algorithm(in.key_algorithm);
        auto keygen = [alg] { return crypto::generate_private_key_pem(alg); };  // named: see compute.hpp
        auto aw_key = async_compute(cpu_, std::move(keygen));
        std::string pem = co_await std::move(aw_key);
        account_pem = pem;
        a.enc_account_key = keys_.seal(pem, legacy_seal_context(user_id, "key"));
    }
    if (!in.eab_hmac_key.empty()) {
        a.enc_eab_hmac = keys_.seal(in.eab_hmac_key, legacy_seal_context(user_id, "eab"));
    }
    a.created_at = a.updated_at = unix_now();
    auto aw_create = repo_.create(std::move(a));
    auto created = co_await std::move(aw_create);
    if (!created || (account_pem.empty() && in.eab_hmac_key.empty())) {
        co_return created;
    }
    // Now that the row has its id, its secrets are sealed bound to it. Should this write fail, the user-bound
    // blobs still open (and rewrap-keys binds them later).
    if (!account_pem.empty()) {
        created->enc_account_key = keys_.seal(account_pem, seal_context(user_id, "key", created->id));
    }
    if (!in.eab_hmac_key.empty()) {
        created->enc_eab_hmac = keys_.seal(in.eab_hmac_key, seal_context(user_id, "eab", created->id));
    }
    auto aw_bind = repo_.set_secrets(user_id, created->id, created->enc_account_key, created->enc_eab_hmac);
    if (auto bound = co_await std::move(aw_bind); !bound || !*bound) {
        spdlog::warn("ACME account {}: binding its keys to the row failed; left user-bound", created->id);
    }
    co_return created;
}

task<domain::acme_account> acme_account_service::get(std::int64_t user_id, std::int64_t id) {
    auto aw = repo_.get(user_id, id);
    auto found = co_await std::move(aw);
    if (!found)
        co_return found.error();
    if (!*found)
        co_return make_error(errc::not_found, "ACME account not found");
    co_return std::move(**found);
}

task<domain::acme_account> acme_account_service::update(std::int64_t user_id, std::int64_t id,
                                                        boost::json::object body) {
    auto aw_get = get(user_id, id);
    auto current = co_await std::move(aw_get);
    if (!current)
        co_return current.error();
    std::string name = current->name;
    std::string email = current->email;
    if (auto const* v = body.if_contains("name")) {
        if (!v->is_string() || v->get_string().empty() || v->get_string().size() > 128) {
            co_return make_error(errc::bad_request, "name must be a string of 1-128 characters",
                                 {{"field", "name"}});
        }
        name = std::string(v->get_string());
    }
    if (auto const* v = body.if_contains("email")) {
        if (!v->is_string() || v->get_string().size() > 254 ||
            (!v->get_string().empty() && check_email(std::string(v->get_string())))) {
            co_return make_error(errc::bad_request, "email must look like name@domain", {{"field", "email"}});
        }
        email = std::string(v->get_string());
    }
    for (char const* fixed : {"provider", "directory_url", "ca_id", "key_algorithm"}) {
        if (auto const* v = body.if_contains(fixed); v != nullptr && !v->is_null()) {
            bool const same = (std::string_view(fixed) == "provider" && v->is_string() &&
                               v->get_string() == current->provider) ||
                              (std::string_view(fixed) == "directory_url" && v->is_string() &&
                               v->get_string() == current->directory_url) ||
                              (std::string_view(fixed) == "ca_id" && v->is_int64() && current->ca_id &&
                               v->get_int64() == *current->ca_id) ||
                              (std::string_view(fixed) == "key_algorithm" && v->is_string() &&
                               v->get_string() == current->key_algorithm);
            if (!same) {
                co_return make_error(
                    errc::conflict,
                    std::string(fixed) + " cannot change once the account exists; create a new one",
                    {{"field", fixed}});
            }
        }
    }
    auto aw_update = repo_.update(user_id, id, name, email, unix_now());
    auto updated = co_await std::move(aw_update);
    if (!updated)
        co_return updated.error();
    if (!*updated)
        co_return make_error(errc::not_found, "ACME account not found");
    auto aw_again = get(user_id, id);
    co_return co_await std::move(aw_again);
}

task<bool> acme_account_service::remove(std::int64_t user_id, std::int64_t id) {
    auto aw = repo_.remove(user_id, id);
    auto removed = co_await std::move(aw);
    if (!removed) {
        if (removed.error().code == errc::conflict) {
            co_return make_error(errc::conflict,
                                 "Certificates still use this ACME account; delete them first");
        }
        co_return removed.error();
    }
    if (!*removed)
        co_return make_error(errc::not_found, "ACME account not found");
    co_return true;
}

}  // namespace certctrl::service
