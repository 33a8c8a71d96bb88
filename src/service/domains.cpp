#include "certctrl/service/domains.hpp"

#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/domain/certificate.hpp"

#include <algorithm>

namespace certctrl::service {

namespace {

app_error held_by_another(std::string const& wanted, domain::domain_claim const& held,
                          std::string const& field) {
    std::string const how =
        wanted == held.name ? wanted + " is" : wanted + " falls under " + held.name + ", which is";
    return make_error(
        errc::conflict,
        how + " claimed by another user of this server; an admin can share or transfer the name",
        {{"field", field}, {"name", wanted}, {"claimed_name", held.name}});
}

result<std::string> claim_name_param(std::string const& name) {
    return domain::normalize_dns_name(name, "name");
}

app_error unproven(domain::domain_claim const& c) {
    std::string const record = domain::verification_record(c.name);
    return make_error(errc::forbidden,
                      "Prove control of " + c.name + " first: publish the TXT record " + record +
                          " with the value " + c.verify_token + ", then POST /apiv1/me/domains/" + c.name +
                          "/verify or issue again",
                      {{"name", c.name}, {"record", record}, {"value", c.verify_token}});
}

bool may_use(domain::domain_claim const& c, std::int64_t user_id) {
    return c.user_id == user_id ||
           std::find(c.shared_with.begin(), c.shared_with.end(), user_id) != c.shared_with.end();
}

}  // namespace

result<bool> claim_names(repo::domain_claim_repository& claims, repo::work& w, std::int64_t user_id,
                         std::vector<std::string> const& names, std::string const& domain_name,
                         std::int64_t now) {
    for (auto const& name : names) {
        if (auto held = claims.blocking(w, user_id, name, true)) {
            return held_by_another(name, *held, name == domain_name ? "domain_name" : "sans");
        }
    }
    for (auto const& name : names) {
        domain::domain_claim c;
        c.name = name;
        c.user_id = user_id;
        c.verify_token = crypto::random_base62(32);
        c.created_at = now;
        claims.insert(w, c);  // a claim of the user (or one shared with them) stays as it is
    }
    return true;
}

result<bool> check_names(repo::domain_claim_repository& claims, repo::work& w, std::int64_t user_id,
                         std::vector<std::string> const& names) {
    for (auto const& name : names) {
        if (auto held = claims.blocking(w, user_id, name, false)) {
            return held_by_another(name, *held, "domain_name");
        }
    }
    return true;
}

task<repo::page<domain::domain_claim>> domain_service::list(std::int64_t user_id, repo::page_query q) {
    return r_.db->read([this, user_id, q](repo::work& w) -> result<repo::page<domain::domain_claim>> {
        return r_.domains->list(w, user_id, q);
    });
}

task<bool> domain_service::release(std::int64_t user_id, std::string name, client_info client) {
    auto n = claim_name_param(name);
    if (!n) {
        co_return n.error();
    }
    auto op = r_.db->transact([this, user_id, &n](repo::work& w) -> result<bool> {
        if (!r_.domains->remove(w, user_id, *n)) {
            return make_error(errc::not_found, "You hold no claim of " + *n);
        }
        return true;
    });
    auto r = co_await std::move(op);
    if (r) {
        auto aw = audit_.record(user_id, "domain.release", "ok", std::move(client), {{"name", *n}});
        co_await std::move(aw);
    }
    co_return r;
}

task<domain::domain_claim> domain_service::verify(std::int64_t user_id, std::string name) {
    auto n = claim_name_param(name);
    if (!n) {
        co_return n.error();
    }
    auto aw_claim = r_.db->read([this, &n](repo::work& w) -> result<std::optional<domain::domain_claim>> {
        return r_.domains->get(w, *n);
    });
    auto claim = co_await std::move(aw_claim);
    if (!claim) {
        co_return claim.error();
    }
    if (!*claim || (*claim)->user_id != user_id) {
        co_return make_error(errc::not_found, "You hold no claim of " + *n);
    }
    domain::domain_claim c = std::move(**claim);
    if (c.verified_at) {
        co_return c;
    }
    auto aw_txt = lookup_(domain::verification_record(c.name));
    auto txt = co_await std::move(aw_txt);
    if (!txt) {
        co_return txt.error();
    }
    if (std::find(txt->begin(), txt->end(), c.verify_token) == txt->end()) {
        co_return unproven(c);
    }
    std::int64_t const now = unix_now();
    auto aw_mark = r_.db->transact([this, &c, now](repo::work& w) -> result<bool> {
        r_.domains->mark_verified(w, c.name, now);
        return true;
    });
    auto marked = co_await std::move(aw_mark);
    if (!marked) {
        co_return marked.error();
    }
    c.verified_at = now;
    co_return c;
}

task<bool> domain_service::require_verified(std::int64_t user_id, std::vector<std::string> names) {
    if (!strict_) {
        co_return true;
    }
    for (auto const& name : names) {
        auto aw_claim =
            r_.db->read([this, &name](repo::work& w) -> result<std::optional<domain::domain_claim>> {
                return r_.domains->get(w, name);
            });
        auto claim = co_await std::move(aw_claim);
        if (!claim) {
            co_return claim.error();
        }
        if (!*claim || !may_use(**claim, user_id)) {
            co_return make_error(errc::conflict, name + " is not claimed by this certificate's owner",
                                 {{"name", name}});
        }
        if ((*claim)->verified_at) {
            continue;
        }
        auto aw_verify = verify((*claim)->user_id, name);
        auto v = co_await std::move(aw_verify);
        if (!v) {
            co_return v.error();
        }
    }
    co_return true;
}

task<domain::domain_claim> domain_service::get(std::string name) {
    auto n = claim_name_param(name);
    if (!n) {
        co_return n.error();
    }
    auto op = r_.db->read([this, &n](repo::work& w) -> result<domain::domain_claim> {
        auto c = r_.domains->get(w, *n);
        return c ? result<domain::domain_claim>(std::move(*c))
                 : result<domain::domain_claim>(make_error(errc::not_found, *n + " is not claimed"));
    });
    co_return co_await std::move(op);
}

task<domain::domain_claim> domain_service::transfer(std::int64_t admin_id, std::string name,
                                                    std::int64_t user_id, client_info client) {
    auto n = claim_name_param(name);
    if (!n) {
        co_return n.error();
    }
    std::int64_t const now = unix_now();
    auto op = r_.db->transact([this, &n, user_id, now](repo::work& w) -> result<domain::domain_claim> {
        if (!r_.domains->get(w, *n, true)) {
            domain::domain_claim c;
            c.name = *n;
            c.user_id = user_id;
            c.verify_token = crypto::random_base62(32);
            c.verified_at = now;
            c.created_at = now;
            r_.domains->insert(w, c);  // FK: an unknown user is not_found
        } else {
            r_.domains->transfer(w, *n, user_id, now);
        }
        return std::move(*r_.domains->get(w, *n));
    });
    auto r = co_await std::move(op);
    if (!r && r.error().code == errc::not_found) {
        co_return make_error(errc::not_found, "No user " + std::to_string(user_id), {{"field", "user_id"}});
    }
    if (r) {
        auto aw = audit_.record(admin_id, "domain.transfer", "ok", std::move(client),
                                {{"name", *n}, {"user_id", user_id}});
        co_await std::move(aw);
    }
    co_return r;
}

task<domain::domain_claim> domain_service::share(std::int64_t admin_id, std::string name,
                                                 std::int64_t user_id, client_info client) {
    auto n = claim_name_param(name);
    if (!n) {
        co_return n.error();
    }
    std::int64_t const now = unix_now();
    bool unclaimed = false;
    auto op =
        r_.db->transact([this, &n, user_id, now, &unclaimed](repo::work& w) -> result<domain::domain_claim> {
            auto c = r_.domains->get(w, *n, true);
            if (!c) {
                unclaimed = true;
                return make_error(errc::not_found, *n + " is not claimed; transfer it instead");
            }
            if (c->user_id != user_id) {
                r_.domains->share(w, *n, user_id, now);  // FK: an unknown user is not_found
            }
            return std::move(*r_.domains->get(w, *n));
        });
    auto r = co_await std::move(op);
    if (!r && r.error().code == errc::not_found && !unclaimed) {
        co_return make_error(errc::not_found, "No user " + std::to_string(user_id), {{"field", "user_id"}});
    }
    if (r) {
        auto aw = audit_.record(admin_id, "domain.share", "ok", std::move(client),
                                {{"name", *n}, {"user_id", user_id}});
        co_await std::move(aw);
    }
    co_return r;
}

task<bool> domain_service::unshare(std::int64_t admin_id, std::string name, std::int64_t user_id,
                                   client_info client) {
    auto n = claim_name_param(name);
    if (!n) {
        co_return n.error();
    }
    auto op = r_.db->transact([this, &n, user_id](repo::work& w) -> result<bool> {
        if (!r_.domains->unshare(w, *n, user_id)) {
            return make_error(errc::not_found, *n + " is not shared with user " + std::to_string(user_id));
        }
        return true;
    });
    auto r = co_await std::move(op);
    if (r) {
        auto aw = audit_.record(admin_id, "domain.unshare", "ok", std::move(client),
                                {{"name", *n}, {"user_id", user_id}});
        co_await std::move(aw);
    }
    co_return r;
}

task<std::vector<std::string>> domain_service::missing_delegations(std::vector<std::string> names,
                                                                   std::string target) {
    std::vector<std::string> missing;
    if (!cname_lookup_) {
        co_return make_error(errc::external_service, "No DNS lookups are configured on this server");
    }
    for (auto const& n : names) {
        std::string const record = "_acme-challenge." + n;
        auto op = cname_lookup_(record);
        auto targets = co_await std::move(op);
        if (!targets) {
            co_return targets.error();
        }
        if (std::find(targets->begin(), targets->end(), target) == targets->end()) {
            missing.push_back(record);
        }
    }
    co_return missing;
}

}  // namespace certctrl::service
