#include "certctrl/worker/jobs.hpp"

#include "certctrl/core/ids.hpp"
#include "certctrl/service/domains.hpp"

#include <boost/json.hpp>

namespace certctrl::worker {

namespace json = boost::json;

acme_progress acme_progress::parse(std::string const& text) {
    acme_progress p;
    boost::system::error_code ec;
    auto v = json::parse(text.empty() ? std::string("{}") : text, ec);
    if (ec || !v.is_object()) {
        return p;
    }
    auto const& o = v.get_object();
    auto str = [&o](char const* k) {
        auto const* x = o.if_contains(k);
        return x && x->is_string() ? std::string(x->get_string()) : std::string();
    };
    p.sealed_key = str("key");
    p.order_url = str("order_url");
    p.replaced_order = str("replaced_order");
    if (auto const* r = o.if_contains("retries"); r && r->is_int64()) {
        p.retries = r->get_int64();
    }
    if (auto const* a = o.if_contains("account_index"); a && a->is_int64()) {
        p.account_index = a->get_int64();
    }
    p.failovers = str("failovers");
    return p;
}

std::string acme_progress::to_json() const {
    json::object o;
    if (!sealed_key.empty()) {
        o["key"] = sealed_key;
    }
    if (!order_url.empty()) {
        o["order_url"] = order_url;
    }
    if (!replaced_order.empty()) {
        o["replaced_order"] = replaced_order;
    }
    if (retries > 0) {
        o["retries"] = retries;
    }
    if (account_index > 0) {
        o["account_index"] = account_index;
    }
    if (!failovers.empty()) {
        o["failovers"] = failovers;
    }
    return json::serialize(o);
}

std::string order_key_context(std::int64_t history_id) {
    return "issue_history." + std::to_string(history_id);
}

task<std::optional<domain::issue_row>> issue_jobs::claim(std::string owner, std::int64_t lease_until) {
    return r_.db->transact(
        [this, owner, lease_until](repo::work& w) -> result<std::optional<domain::issue_row>> {
            std::int64_t const now = unix_now();
            auto id = r_.issuance->claimable(w, now, rules_);
            if (!id) {
                return std::optional<domain::issue_row>{};
            }
            r_.issuance->take(w, *id, owner, lease_until, now);
            return r_.issuance->get(w, *id);
        });
}

task<std::optional<domain::issue_row>> issue_jobs::heartbeat(std::int64_t id, std::string owner,
                                                             std::int64_t lease_until) {
    return r_.db->read(
        [this, id, owner, lease_until](repo::work& w) -> result<std::optional<domain::issue_row>> {
            return r_.issuance->extend_lease(w, id, owner, lease_until);
        });
}

task<std::optional<repo::issue_context>> issue_jobs::context(std::int64_t user_id, std::int64_t cert_id) {
    return r_.db->read([this, user_id, cert_id](repo::work& w) -> result<std::optional<repo::issue_context>> {
        return r_.issuance->context(w, user_id, cert_id);
    });
}

task<acme_progress> issue_jobs::progress(std::int64_t id) {
    return r_.db->read([this, id](repo::work& w) -> result<acme_progress> {
        return acme_progress::parse(r_.issuance->progress(w, id));
    });
}

task<bool> issue_jobs::save(std::int64_t id, std::string owner, acme_progress p) {
    return r_.db->transact(
        [this, id, owner = std::move(owner), p = std::move(p)](repo::work& w) -> result<bool> {
            return r_.issuance->save_progress(w, id, owner, p.to_json(), p.order_url);
        });
}

task<bool> issue_jobs::retry_later(std::int64_t id, std::string owner, std::int64_t run_after,
                                   std::string message) {
    return r_.db->read(
        [this, id, owner = std::move(owner), run_after, message](repo::work& w) -> result<bool> {
            return r_.issuance->retry_later(w, id, owner, run_after, message);
        });
}

task<bool> issue_jobs::put_http_challenge(std::string token, std::string identifier,
                                          std::string key_authorization, std::int64_t history_id,
                                          std::int64_t expires_at) {
    return r_.db->read(
        [this, token, identifier, key_authorization, history_id, expires_at](repo::work& w) -> result<bool> {
            r_.issuance->put_http_challenge(w, token, identifier, key_authorization, history_id, expires_at);
            return true;
        });
}

task<std::vector<std::pair<std::int64_t, std::int64_t>>> issue_jobs::signal_holders(std::int64_t cert_id,
                                                                                    std::string type,
                                                                                    boost::json::object ref) {
    using out_t = std::vector<std::pair<std::int64_t, std::int64_t>>;
    return r_.db->transact([this, cert_id, type = std::move(type),
                            ref = std::move(ref)](repo::work& w) -> result<out_t> {
        auto devices = r_.assignments->devices_of(w, cert_id);
        if (devices.size() > max_challenge_holders) {
            return make_error(errc::external_service,
                              std::to_string(devices.size()) +
                                  " devices hold this certificate; agent-served challenges signal at most " +
                                  std::to_string(max_challenge_holders) +
                                  " (use DNS-01 for a fleet this large)");
        }
        r_.devices->lock(w, devices);
        out_t out;
        for (auto d : devices) {
            auto dev = r_.devices->by_id(w, d);
            if (dev && dev->status == "ACTIVE") {
                out.emplace_back(d, signals_.emit(w, d, type, ref));
            }
        }
        return out;
    });
}

task<std::vector<std::int64_t>> issue_jobs::not_received(
    std::vector<std::pair<std::int64_t, std::int64_t>> sent) {
    return r_.db->read([this, sent = std::move(sent)](repo::work& w) -> result<std::vector<std::int64_t>> {
        std::vector<std::int64_t> ids;
        for (auto const& [device, id] : sent) {
            ids.push_back(device);
        }
        auto const got = r_.devices->received_through(w, ids);
        std::vector<std::int64_t> out;
        for (auto const& [device, id] : sent) {
            auto it = got.find(device);
            if (it == got.end() || it->second < id) {
                out.push_back(device);
            }
        }
        return out;
    });
}

task<bool> issue_jobs::drop_http_challenges(std::int64_t history_id) {
    return r_.db->read([this, history_id](repo::work& w) -> result<bool> {
        r_.issuance->drop_http_challenges(w, history_id);
        return true;
    });
}

task<std::optional<std::string>> issue_jobs::http_challenge(std::string token, std::string host) {
    return r_.db->read([this, token, host](repo::work& w) -> result<std::optional<std::string>> {
        return r_.issuance->http_challenge(w, token, host, unix_now());
    });
}

task<bool> issue_jobs::check_names(std::int64_t user_id, std::vector<std::string> names) {
    return r_.db->read([this, user_id, names](repo::work& w) -> result<bool> {
        return service::check_names(*r_.domains, w, user_id, names);
    });
}

task<bool> issue_jobs::set_account_kid(std::int64_t account_id, std::string kid) {
    return r_.db->read([this, account_id, kid](repo::work& w) -> result<bool> {
        r_.issuance->set_account_kid(w, account_id, kid, unix_now());
        return true;
    });
}

task<bool> issue_jobs::set_renew_after(std::int64_t cert_id, std::int64_t when) {
    return r_.db->read([this, cert_id, when](repo::work& w) -> result<bool> {
        r_.certificates->set_renew_after(w, cert_id, when);
        return true;
    });
}

task<repo::issue_queue_state> issue_jobs::queue_state() {
    return r_.db->read([this](repo::work& w) -> result<repo::issue_queue_state> {
        return r_.issuance->queue_state(w, unix_now());
    });
}

task<std::optional<domain::acme_account>> issue_jobs::account(std::int64_t user_id, std::int64_t id) {
    return r_.db->read([this, user_id, id](repo::work& w) -> result<std::optional<domain::acme_account>> {
        return r_.issuance->account(w, user_id, id);
    });
}

task<bool> issue_jobs::set_account(std::int64_t id, std::string owner, std::int64_t acct_id,
                                   std::string note) {
    return r_.db->read(
        [this, id, owner = std::move(owner), acct_id, note = std::move(note)](repo::work& w) -> result<bool> {
            return r_.issuance->set_account(w, id, owner, acct_id, note);
        });
}

task<bool> issue_jobs::set_renewal_info(std::int64_t cert_id, std::int64_t renew_after,
                                        std::int64_t next_check) {
    return r_.db->read([this, cert_id, renew_after, next_check](repo::work& w) -> result<bool> {
        r_.certificates->set_renewal_info(w, cert_id, renew_after, next_check);
        return true;
    });
}

task<std::vector<std::array<std::int64_t, 3>>> issue_jobs::renewal_info_due(std::int64_t limit) {
    using out_t = std::vector<std::array<std::int64_t, 3>>;
    return r_.db->read([this, limit](repo::work& w) -> result<out_t> {
        return r_.certificates->renewal_info_due(w, unix_now(), limit);
    });
}

task<std::size_t> issue_jobs::queue_due_renewals(std::int64_t limit) {
    return r_.db->read([this, limit](repo::work& w) -> result<std::size_t> {
        std::size_t queued = 0;
        std::int64_t const now = unix_now();
        for (auto const& [user_id, cert_id] : r_.certificates->due_for_renewal(w, now, limit)) {
            queued += r_.issuance->insert_if_idle(w, user_id, cert_id, "renew", now) ? 1 : 0;
        }
        return queued;
    });
}

}  // namespace certctrl::worker
