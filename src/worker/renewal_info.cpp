#include "certctrl/worker/renewal_info.hpp"

#include "certctrl/acme/ari.hpp"
#include "certctrl/core/ids.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace certctrl::worker {

net::outbound_options acme_options(config::issuance_config const& cfg,
                                   std::shared_ptr<net::egress_policy const> egress) {
    net::outbound_options opts;
    opts.ca_file = cfg.acme_ca_file;
    opts.timeout = std::chrono::milliseconds(cfg.acme_timeout_ms);
    opts.egress = std::move(egress);
    opts.https_only = true;
    return opts;
}

std::int64_t renewal_time_in(std::int64_t current, std::int64_t start, std::int64_t end, std::int64_t now,
                             std::mt19937_64& rng) {
    if (current >= start && current <= end && current > 0) {
        return current;
    }
    if (end <= now) {
        return now;  // RFC 9773 §4.2: a window in the past means renew at once
    }
    return std::uniform_int_distribution<std::int64_t>(std::max(start, now), end)(rng);
}

net::awaitable<void> follow_renewal_info(issue_jobs& jobs, acme::client& client,
                                         config::issuance_config const& cfg, std::int64_t cert_id,
                                         std::string const& cert_pem, std::int64_t current_renew_after) {
    auto const ari_id = acme::ari_cert_id_of(cert_pem);
    auto aw_dir = client.load_directory();
    auto dir = co_await std::move(aw_dir);
    std::int64_t const now = unix_now();
    if (!ari_id || (dir && dir->renewal_info.empty())) {
        auto aw = jobs.set_renewal_info(cert_id, current_renew_after, 0);  // nothing to follow
        co_await std::move(aw);
        co_return;
    }
    std::int64_t const floor = cfg.ari_min_recheck_seconds;
    result<std::pair<std::int64_t, std::int64_t>> window =
        dir ? result<std::pair<std::int64_t, std::int64_t>>(std::pair<std::int64_t, std::int64_t>{})
            : result<std::pair<std::int64_t, std::int64_t>>(dir.error());
    if (dir) {
        auto aw_ri = client.renewal_info(*ari_id);
        window = co_await std::move(aw_ri);
    }
    std::int64_t const asked = client.retry_after();
    if (!window) {
        spdlog::info("certificate {}: renewalInfo unavailable ({}); asking again later", cert_id,
                     window.error().what);
        auto aw = jobs.set_renewal_info(
            cert_id, current_renew_after,
            now + std::clamp<std::int64_t>(std::max<std::int64_t>(asked, 3600), floor, 86400));
        co_await std::move(aw);
        co_return;
    }
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    std::int64_t const when = renewal_time_in(current_renew_after, window->first, window->second, now, rng);
    std::int64_t const next = now + std::clamp<std::int64_t>(asked > 0 ? asked : 6 * 3600, floor, 86400);
    if (when != current_renew_after) {
        spdlog::info("certificate {}: the CA's renewal window is {}..{}; renewing at {}", cert_id,
                     window->first, window->second, when);
    }
    auto aw = jobs.set_renewal_info(cert_id, when, next);
    co_await std::move(aw);
}

}  // namespace certctrl::worker
