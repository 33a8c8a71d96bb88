#include "certctrl/service/webhooks.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/random.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace certctrl::service {

namespace {

constexpr std::string_view secret_prefix = "whsec_";

app_error hook_not_found() {
    return make_error(errc::not_found, "Webhook not found");
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

std::string new_webhook_secret() {
    return std::string(secret_prefix) + base64_encode(crypto::random_bytes(32));
}

std::optional<std::string> sign_webhook(std::string_view secret, std::string_view id, std::int64_t timestamp,
                                        std::string_view body) {
    if (secret.substr(0, secret_prefix.size()) != secret_prefix) {
        return std::nullopt;
    }
    auto key = base64_decode(secret.substr(secret_prefix.size()));
    if (!key || key->empty()) {
        return std::nullopt;
    }
    std::string signed_text;
    signed_text.reserve(id.size() + body.size() + 24);
    signed_text.append(id).append(".").append(std::to_string(timestamp)).append(".").append(body);
    return "v1," + base64_encode(crypto::hmac_sha256(*key, signed_text));
}

std::int64_t webhook_retry_delay_ms(config::webhooks_config const& cfg, std::int64_t attempt, double jitter) {
    double delay = static_cast<double>(cfg.retry_initial_ms);
    for (std::int64_t i = 1; i < attempt && delay < cfg.retry_max_ms; ++i) {
        delay *= 2;
    }
    delay = std::min(delay, static_cast<double>(cfg.retry_max_ms));
    return std::max<std::int64_t>(1, std::llround(delay * std::clamp(jitter, 0.5, 1.0)));
}

// ---------------------------------------------------------------------------------------------- outbox

std::vector<domain::webhook> webhook_events::subscribers(repo::work& w, std::int64_t user_id) const {
    return r_.webhooks->enabled_of(w, user_id);
}

std::int64_t webhook_events::store(repo::work& w, std::int64_t user_id, std::string const& type,
                                   std::optional<std::int64_t> cert_id, boost::json::object data) const {
    repo::webhook_event_row e;
    e.public_id = "evt_" + crypto::random_base62(26);
    e.user_id = user_id;
    e.type = type;
    e.cert_id = cert_id;
    e.created_at = unix_now();
    e.payload = domain::webhook_payload(e.public_id, type, e.created_at, std::move(data));
    ++stored_;
    auto const id = r_.webhooks->insert_event(w, e);
    if (on_stored_) {
        on_stored_();
    }
    return id;
}

std::size_t webhook_events::emit(repo::work& w, std::vector<domain::webhook> const& subs,
                                 std::int64_t user_id, std::string const& type,
                                 std::optional<std::int64_t> cert_id,
                                 std::function<boost::json::object()> const& data) const {
    std::vector<std::int64_t> targets;
    for (auto const& h : subs) {
        if (h.enabled && h.wants(type, cert_id)) {
            targets.push_back(h.id);
        }
    }
    if (targets.empty()) {
        return 0;
    }
    std::int64_t const event = store(w, user_id, type, cert_id, data());
    std::int64_t const now = unix_now();
    for (auto id : targets) {
        r_.webhooks->insert_delivery(w, id, event, user_id, now * 1000, now + cfg_.give_up_after_seconds,
                                     now);
    }
    return targets.size();
}

std::size_t webhook_events::emit_certificate(repo::work& w, std::int64_t user_id, std::string const& type,
                                             std::int64_t cert_id, boost::json::object extra) const {
    auto subs = subscribers(w, user_id);
    if (subs.empty()) {
        return 0;
    }
    return emit(w, subs, user_id, type, cert_id, [&]() {
        boost::json::object data;
        if (auto c = r_.certificates->get(w, user_id, cert_id)) {
            data["certificate"] = domain::webhook_certificate_record(*c, unix_now());
        }
        for (auto& kv : extra) {
            data[kv.key()] = std::move(kv.value());
        }
        return data;
    });
}

std::int64_t webhook_events::emit_to(repo::work& w, domain::webhook const& hook, std::string const& type,
                                     boost::json::object data) const {
    std::int64_t const event = store(w, hook.user_id, type, std::nullopt, std::move(data));
    std::int64_t const now = unix_now();
    return r_.webhooks->insert_delivery(w, hook.id, event, hook.user_id, now * 1000,
                                        now + cfg_.give_up_after_seconds, now);
}

// ---------------------------------------------------------------------------------------- subscriptions

std::string webhook_service::secret_context(std::int64_t user_id, std::int64_t id) {
    return "webhooks.secret:" + std::to_string(user_id) + ":" + std::to_string(id);
}

std::string webhook_service::previous_secret_context(std::int64_t user_id, std::int64_t id) {
    return "webhooks.previous_secret:" + std::to_string(user_id) + ":" + std::to_string(id);
}

result<bool> webhook_service::check_certificates(repo::work& w, std::int64_t user_id,
                                                 domain::webhook_input const& in) const {
    if (!in.cert_ids || !*in.cert_ids) {
        return true;
    }
    for (auto id : **in.cert_ids) {
        if (!r_.certificates->get(w, user_id, id)) {
            return make_error(errc::bad_request, "Certificate " + std::to_string(id) + " not found",
                              {{"field", "certificate_ids"}});
        }
    }
    return true;
}

task<webhook_with_secret> webhook_service::create(std::int64_t user_id, domain::webhook_input in) {
    if (keys_.empty()) {
        return []() -> task<webhook_with_secret> {
            co_return make_error(errc::unavailable,
                                 "No master key is configured (crypto.master_key_env / master_key_file)");
        }();
    }
    return r_.db->transact([this, user_id, in = std::move(in)](repo::work& w) -> result<webhook_with_secret> {
        if (cfg_.max_per_user != 0 && r_.webhooks->count_of(w, user_id) >= cfg_.max_per_user) {
            return make_error(errc::conflict, "At most " + std::to_string(cfg_.max_per_user) +
                                                  " webhooks per user (webhooks.max_per_user)");
        }
        CERTCTRL_TRY(ok, check_certificates(w, user_id, in));
        (void)ok;
        webhook_with_secret out;
        auto& h = out.hook;
        h.user_id = user_id;
        h.url = *in.url;
        h.events = *in.events;
        h.description = in.description.value_or("");
        h.cert_ids = in.cert_ids.value_or(std::nullopt);
        h.enabled = in.enabled.value_or(true);
        h.created_at = h.updated_at = unix_now();
        h.enc_secret = "-";  // sealed below, bound to the row's id
        h.id = r_.webhooks->insert(w, h);
        out.secret = new_webhook_secret();
        h.enc_secret = keys_.seal(out.secret, secret_context(user_id, h.id));
        r_.webhooks->update(w, h);
        return out;
    });
}

task<repo::page<domain::webhook>> webhook_service::list(std::int64_t user_id, repo::page_query q) {
    return r_.db->read([this, user_id, q](repo::work& w) -> result<repo::page<domain::webhook>> {
        return r_.webhooks->list(w, user_id, q);
    });
}

task<domain::webhook> webhook_service::get(std::int64_t user_id, std::int64_t id) {
    return r_.db->read([this, user_id, id](repo::work& w) -> result<domain::webhook> {
        auto h = r_.webhooks->get(w, user_id, id);
        return h ? result<domain::webhook>(std::move(*h)) : hook_not_found();
    });
}

task<domain::webhook> webhook_service::update(std::int64_t user_id, std::int64_t id,
                                              domain::webhook_input in) {
    return r_.db->transact([this, user_id, id, in = std::move(in)](repo::work& w) -> result<domain::webhook> {
        auto h = r_.webhooks->get(w, user_id, id, repo::row_lock::update);
        if (!h) {
            return hook_not_found();
        }
        CERTCTRL_TRY(ok, check_certificates(w, user_id, in));
        (void)ok;
        bool const was_enabled = h->enabled;
        if (in.url) {
            h->url = *in.url;
        }
        if (in.events) {
            h->events = *in.events;
        }
        if (in.description) {
            h->description = *in.description;
        }
        if (in.cert_ids) {
            h->cert_ids = *in.cert_ids;
        }
        if (in.enabled) {
            h->enabled = *in.enabled;
        }
        h->updated_at = unix_now();
        r_.webhooks->update(w, *h);
        if (was_enabled && !h->enabled) {
            r_.webhooks->fail_pending(w, id, "The webhook was disabled", h->updated_at);
        }
        return std::move(*h);
    });
}

task<bool> webhook_service::remove(std::int64_t user_id, std::int64_t id) {
    return r_.db->transact([this, user_id, id](repo::work& w) -> result<bool> {
        if (!r_.webhooks->remove(w, user_id, id)) {
            return hook_not_found();
        }
        return true;
    });
}

task<webhook_with_secret> webhook_service::rotate(std::int64_t user_id, std::int64_t id,
                                                  std::int64_t overlap_seconds) {
    return r_.db->transact(
        [this, user_id, id, overlap_seconds](repo::work& w) -> result<webhook_with_secret> {
            if (overlap_seconds < 0 || overlap_seconds > cfg_.rotation_overlap_max_seconds) {
                return make_error(
                    errc::bad_request,
                    "overlap_seconds must be in 0.." + std::to_string(cfg_.rotation_overlap_max_seconds),
                    {{"field", "overlap_seconds"}});
            }
            if (keys_.empty()) {
                return make_error(errc::unavailable,
                                  "No master key is configured (crypto.master_key_env / master_key_file)");
            }
            auto h = r_.webhooks->get(w, user_id, id, repo::row_lock::update);
            if (!h) {
                return hook_not_found();
            }
            std::int64_t const now = unix_now();
            h->enc_previous_secret.clear();
            h->previous_secret_until.reset();
            if (overlap_seconds > 0) {
                CERTCTRL_TRY(current, keys_.open(h->enc_secret, secret_context(user_id, id)));
                h->enc_previous_secret = keys_.seal(current, previous_secret_context(user_id, id));
                h->previous_secret_until = now + overlap_seconds;
            }
            webhook_with_secret out;
            out.secret = new_webhook_secret();
            h->enc_secret = keys_.seal(out.secret, secret_context(user_id, id));
            h->updated_at = now;
            r_.webhooks->update(w, *h);
            out.hook = std::move(*h);
            return out;
        });
}

task<domain::webhook_delivery> webhook_service::ping(std::int64_t user_id, std::int64_t id) {
    return r_.db->transact([this, user_id, id](repo::work& w) -> result<domain::webhook_delivery> {
        auto h = r_.webhooks->get(w, user_id, id);
        if (!h) {
            return hook_not_found();
        }
        if (!h->enabled) {
            return make_error(errc::conflict, "The webhook is disabled; enable it first");
        }
        std::int64_t const delivery = events_.emit_to(
            w, *h, "ping", boost::json::object{{"webhook_id", id}, {"message", "ping from certctrl"}});
        auto d = r_.webhooks->delivery(w, user_id, id, delivery);
        return d ? result<domain::webhook_delivery>(std::move(*d))
                 : make_error(errc::internal, "Lost a delivery");
    });
}

task<repo::page<domain::webhook_delivery>> webhook_service::deliveries(std::int64_t user_id, std::int64_t id,
                                                                       std::string status,
                                                                       repo::page_query q) {
    return r_.db->read([this, user_id, id, status = std::move(status),
                        q](repo::work& w) -> result<repo::page<domain::webhook_delivery>> {
        if (!r_.webhooks->get(w, user_id, id)) {
            return hook_not_found();
        }
        return r_.webhooks->deliveries(w, user_id, id, status, q);
    });
}

task<domain::webhook_delivery> webhook_service::delivery(std::int64_t user_id, std::int64_t id,
                                                         std::int64_t delivery_id) {
    return r_.db->read([this, user_id, id, delivery_id](repo::work& w) -> result<domain::webhook_delivery> {
        auto d = r_.webhooks->delivery(w, user_id, id, delivery_id);
        return d ? result<domain::webhook_delivery>(std::move(*d))
                 : make_error(errc::not_found, "Delivery not found");
    });
}

task<domain::webhook_delivery> webhook_service::redeliver(std::int64_t user_id, std::int64_t id,
                                                          std::int64_t delivery_id) {
    return r_.db->transact(
        [this, user_id, id, delivery_id](repo::work& w) -> result<domain::webhook_delivery> {
            auto h = r_.webhooks->get(w, user_id, id, repo::row_lock::shared);
            if (!h) {
                return hook_not_found();
            }
            if (!r_.webhooks->delivery(w, user_id, id, delivery_id)) {
                return make_error(errc::not_found, "Delivery not found");
            }
            if (!h->enabled) {
                return make_error(errc::conflict, "The webhook is disabled; enable it first");
            }
            std::int64_t const now = unix_now();
            r_.webhooks->redeliver(w, delivery_id, now * 1000, now + cfg_.give_up_after_seconds);
            return std::move(*r_.webhooks->delivery(w, user_id, id, delivery_id));
        });
}

// ------------------------------------------------------------------------------------------------ senders

task<std::vector<repo::due_delivery>> webhook_service::claim(std::size_t n, repo::claim_filter out,
                                                             std::string owner, std::int64_t lease_until_ms) {
    return r_.db->transact([this, n, out = std::move(out), owner = std::move(owner),
                            lease_until_ms](repo::work& w) -> result<std::vector<repo::due_delivery>> {
        return r_.webhooks->claim(w, now_ms(), n, out, owner, lease_until_ms);
    });
}

task<bool> webhook_service::release(std::vector<repo::due_delivery> ds, std::string owner) {
    return r_.db->transact(
        [this, ds = std::move(ds), owner = std::move(owner)](repo::work& w) -> result<bool> {
            for (auto const& d : ds) {
                r_.webhooks->release(w, d.id, owner, d.attempt, now_ms());
            }
            return true;
        });
}

task<bool> webhook_service::finish(std::int64_t id, std::string owner, std::int64_t attempt,
                                   repo::delivery_outcome o) {
    return r_.db->transact(
        [this, id, owner = std::move(owner), attempt, o = std::move(o)](repo::work& w) -> result<bool> {
            return r_.webhooks->finish(w, id, owner, attempt, o);
        });
}

result<std::vector<std::string>> webhook_service::secrets_of(domain::webhook const& h,
                                                             std::int64_t now) const {
    std::vector<std::string> out;
    CERTCTRL_TRY(current, keys_.open(h.enc_secret, secret_context(h.user_id, h.id)));
    out.push_back(std::move(current));
    if (!h.enc_previous_secret.empty() && h.previous_secret_until && *h.previous_secret_until > now) {
        CERTCTRL_TRY(previous, keys_.open(h.enc_previous_secret, previous_secret_context(h.user_id, h.id)));
        out.push_back(std::move(previous));
    }
    return out;
}

task<std::int64_t> webhook_service::warn_expiring(std::int64_t now) {
    constexpr std::size_t batch = 200;
    // Lowest threshold first: a certificate already below it is marked there, so the higher thresholds'
    // reads no longer see it.
    auto one_batch = [this, now](std::int64_t days) {
        return r_.db->transact([this, now, days](repo::work& w) -> result<std::int64_t> {
            auto rows = r_.webhooks->expiring(w, now, days, batch);
            for (auto const& c : rows) {
                r_.webhooks->mark_warned(w, c.id, days);
                std::int64_t const left = (c.not_after - now + 86399) / 86400;
                events_.emit_certificate(
                    w, c.user_id, "certificate.expiring", c.id,
                    boost::json::object{
                        {"threshold_days", days}, {"days_left", left}, {"expires_at", c.not_after}});
            }
            return static_cast<std::int64_t>(rows.size());
        });
    };
    std::vector<unsigned> lowest_first = cfg_.expiring_days;  // whatever order the config was built in
    std::sort(lowest_first.begin(), lowest_first.end());
    std::int64_t seen = 0;
    for (auto days : lowest_first) {
        for (;;) {
            auto op = one_batch(days);
            auto n = co_await std::move(op);
            if (!n) {
                co_return n.error();
            }
            seen += *n;
            if (static_cast<std::size_t>(*n) < batch) {
                break;
            }
        }
    }
    co_return seen;
}

task<std::int64_t> webhook_service::purge(std::int64_t now) {
    std::int64_t const before = now - static_cast<std::int64_t>(cfg_.log_retention_days) * 86400;
    return r_.db->transact([this, before](repo::work& w) -> result<std::int64_t> {
        return r_.webhooks->purge(w, before, 1000);
    });
}

task<std::int64_t> webhook_service::pending() {
    return r_.db->read(
        [this](repo::work& w) -> result<std::int64_t> { return r_.webhooks->pending_count(w); });
}

}  // namespace certctrl::service
