#include "certctrl/service/dns_providers.hpp"

#include <spdlog/spdlog.h>

#include "certctrl/core/ids.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace certctrl::service {

std::string dns_provider_service::legacy_seal_context(std::int64_t user_id) {
    return "dns_providers.credentials:" + std::to_string(user_id);
}

std::string dns_provider_service::seal_context(std::int64_t user_id, std::int64_t provider_id) {
    return legacy_seal_context(user_id) + ":" + std::to_string(provider_id);
}

namespace {}  // namespace

task<domain::dns_provider> dns_provider_service::create(std::int64_t user_id, domain::dns_provider_input in) {
    if (!in.credentials.empty() && keys_.empty()) {
        co_return make_error(errc::unavailable,
                             "No master key is configured (crypto.master_key_env / master_key_file)");
    }
    domain::dns_provider p;
    p.user_id = user_id;
    p.name = in.name;
    p.kind = in.kind;
    p.settings = in.settings;
    if (!in.credentials.empty()) {
        p.enc_credentials = keys_.seal(boost::json::serialize(in.credentials), legacy_seal_context(user_id));
    }
    p.created_at = p.updated_at = unix_now();
    auto aw = repo_.create(std::move(p));
    auto created = co_await std::move(aw);
    if (!created || in.credentials.empty()) {
        co_return created;
    }
    // Now that the row has its id, the credentials are sealed bound to it. Should this write fail, the
    // user-bound blob still opens (and rewrap-keys binds it later).
    created->enc_credentials =
        keys_.seal(boost::json::serialize(in.credentials), seal_context(user_id, created->id));
    auto aw_bind = repo_.replace(*created);
    if (auto bound = co_await std::move(aw_bind); !bound || !*bound) {
        spdlog::warn("DNS provider {}: binding its credentials to the row failed; left user-bound",
                     created->id);
    }
    co_return created;
}

task<domain::dns_provider> dns_provider_service::get(std::int64_t user_id, std::int64_t id) {
    auto aw = repo_.get(user_id, id);
    auto found = co_await std::move(aw);
    if (!found)
        co_return found.error();
    if (!*found)
        co_return make_error(errc::not_found, "DNS provider not found");
    co_return std::move(**found);
}

task<domain::dns_provider> dns_provider_service::replace(std::int64_t user_id, std::int64_t id,
                                                         domain::dns_provider_input in) {
    auto aw_get = get(user_id, id);
    auto current = co_await std::move(aw_get);
    if (!current)
        co_return current.error();
    if (current->kind != in.kind) {
        co_return make_error(errc::conflict, "kind cannot change; create a new DNS provider",
                             {{"field", "kind"}});
    }
    if (!in.credentials.empty() && keys_.empty()) {
        co_return make_error(errc::unavailable,
                             "No master key is configured (crypto.master_key_env / master_key_file)");
    }
    domain::dns_provider p = *current;
    p.name = in.name;
    p.settings = in.settings;
    p.enc_credentials = in.credentials.empty()
                            ? std::string()
                            : keys_.seal(boost::json::serialize(in.credentials), seal_context(user_id, id));
    p.updated_at = unix_now();
    auto aw_replace = repo_.replace(p);
    auto done = co_await std::move(aw_replace);
    if (!done)
        co_return done.error();
    if (!*done)
        co_return make_error(errc::not_found, "DNS provider not found");
    co_return p;
}

task<bool> dns_provider_service::remove(std::int64_t user_id, std::int64_t id) {
    auto aw = repo_.remove(user_id, id);
    auto removed = co_await std::move(aw);
    if (!removed) {
        if (removed.error().code == errc::conflict) {
            co_return make_error(errc::conflict,
                                 "Certificates still use this DNS provider; change them first");
        }
        co_return removed.error();
    }
    if (!*removed)
        co_return make_error(errc::not_found, "DNS provider not found");
    co_return true;
}

result<boost::json::object> dns_provider_service::credentials(domain::dns_provider const& p) const {
    if (p.enc_credentials.empty()) {
        return boost::json::object{};
    }
    auto plain =
        keys_.open_either(p.enc_credentials, seal_context(p.user_id, p.id), legacy_seal_context(p.user_id));
    if (!plain) {
        return plain.error();
    }
    boost::system::error_code ec;
    auto v = boost::json::parse(*plain, ec);
    if (ec || !v.is_object()) {
        return make_error(errc::internal, "Internal server error");
    }
    return std::move(v.get_object());
}

}  // namespace certctrl::service
