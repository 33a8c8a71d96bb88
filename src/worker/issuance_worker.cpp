#include "certctrl/worker/issuance_worker.hpp"

#include "certctrl/acme/client.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/worker/acme_run.hpp"
#include "certctrl/worker/renewal_info.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <random>

namespace certctrl::worker {

namespace asio = boost::asio;

namespace {

std::map<std::string, acme::ca_limits> limits_of(config::issuance_config const& cfg) {
    std::map<std::string, acme::ca_limits> out;
    for (auto const& l : cfg.ca_limits) {
        out[l.directory_url] = acme::ca_limits{static_cast<double>(l.requests_per_second),
                                               l.max_orders_in_flight, l.max_pause_seconds};
    }
    return out;
}

}  // namespace

issuance_worker::issuance_worker(asio::io_context& ioc, issue_jobs& jobs, service::issuance_service& issuance,
                                 service::dns_provider_service& dns, crypto::keyring const& keys,
                                 asio::thread_pool& cpu, service::bounded_pool& dns_io,
                                 config::issuance_config cfg, std::string instance_id,
                                 std::shared_ptr<net::egress_policy const> egress)
    : ioc_(ioc),
      jobs_(jobs),
      issuance_(issuance),
      dns_(dns),
      keys_(keys),
      cpu_(cpu),
      dns_io_(dns_io),
      cfg_(std::move(cfg)),
      instance_id_(std::move(instance_id)),
      egress_(std::move(egress)),
      sessions_(limits_of(cfg_)) {}

issuance_worker::~issuance_worker() {
    stop();
}

void issuance_worker::start() {
    running_ = true;
    if (cfg_.workers > 0) {
        dispatch_slot_ = std::make_unique<slot>(ioc_);
        asio::co_spawn(dispatch_slot_->strand, dispatch(), asio::detached);
    }
    observe_slot_ = std::make_unique<slot>(ioc_);
    asio::co_spawn(observe_slot_->strand, observe(), asio::detached);
    if (cfg_.renewal_check_seconds > 0) {
        renewal_slot_ = std::make_unique<slot>(ioc_);
        asio::co_spawn(renewal_slot_->strand, renewals(), asio::detached);
    }
}

// RFC 9773: the certificates whose renewal information is due for another look, a batch at a time.
asio::awaitable<void> issuance_worker::renewal_infos() {
    for (int batch = 0; batch < 10 && running_; ++batch) {
        auto aw_due = jobs_.renewal_info_due(100);
        auto due = co_await std::move(aw_due);
        if (!due || due->empty()) {
            co_return;
        }
        for (auto const& [user_id, cert_id, renew_after] : *due) {
            auto aw_ctx = jobs_.context(user_id, cert_id);
            auto ctx = co_await std::move(aw_ctx);
            if (!ctx || !*ctx || (*ctx)->account.provider == "SELF_CA") {
                auto aw = jobs_.set_renewal_info(cert_id, renew_after, 0);
                co_await std::move(aw);
                continue;
            }
            acme::client client(sessions_.get((*ctx)->account.directory_url, acme_options(cfg_, egress_)),
                                "");
            client.set_urgent(false);
            auto aw = follow_renewal_info(jobs_, client, cfg_, cert_id, (*ctx)->cert.cert_pem, renew_after);
            co_await std::move(aw);
        }
    }
}

asio::awaitable<void> issuance_worker::renewals() {
    while (running_) {
        {
            auto aw_ari = renewal_infos();
            co_await std::move(aw_ari);
        }
        auto aw_due = jobs_.queue_due_renewals(500);
        auto queued = co_await std::move(aw_due);
        if (!queued) {
            spdlog::warn("renewal check failed: {}", queued.error().what);
        } else if (*queued > 0) {
            spdlog::info("renewal: queued {} certificate(s)", *queued);
            wake();
        }
        if (!running_) {
            break;
        }
        renewal_slot_->timer.expires_after(std::chrono::seconds(cfg_.renewal_check_seconds));
        co_await renewal_slot_->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void issuance_worker::wake() {
    woken_ = true;  // a wake that comes while the dispatcher is claiming is not lost
    if (dispatch_slot_) {
        asio::post(dispatch_slot_->strand, [t = &dispatch_slot_->timer] { t->cancel(); });
    }
}

void issuance_worker::stop() {
    running_ = false;
    wake();
    for (auto* s : {renewal_slot_.get(), observe_slot_.get()}) {
        if (s != nullptr) {
            asio::post(s->strand, [t = &s->timer] { t->cancel(); });
        }
    }
}

// Reads the shared queue every 5 s for the metrics.
asio::awaitable<void> issuance_worker::observe() {
    while (running_) {
        auto aw = jobs_.queue_state();
        auto q = co_await std::move(aw);
        if (q) {
            std::lock_guard lock(queue_mu_);
            queue_ = *q;
        }
        observe_slot_->timer.expires_after(std::chrono::seconds(5));
        co_await observe_slot_->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

repo::issue_queue_state issuance_worker::queue() const {
    std::lock_guard lock(queue_mu_);
    return queue_;
}

namespace {

// A CA's directory URL as a label value in the Prometheus text format: without its query (a user's URL may
// carry a token there), at most 200 characters, escaped.
std::string label(std::string const& v) {
    std::string out;
    for (char c : v.substr(0, std::min<std::size_t>(v.find('?'), 200))) {
        if (c == '\\' || c == '"') {
            out += '\\';
        }
        out += c == '\n' ? ' ' : c;
    }
    return out;
}

}  // namespace

void issuance_worker::render_metrics(std::string& out) const {
    auto const q = queue();
    auto const e = ended();
    out += "# HELP certctrl_issuance_in_flight Issuances running in this instance.\n";
    out += "# TYPE certctrl_issuance_in_flight gauge\n";
    out += fmt::format("certctrl_issuance_in_flight {}\n", in_flight());
    out += "# HELP certctrl_issuance_queue Open issue rows of every instance (read every 5 s).\n";
    out += "# TYPE certctrl_issuance_queue gauge\n";
    out += fmt::format("certctrl_issuance_queue{{state=\"runnable\"}} {}\n", q.runnable);
    out += fmt::format("certctrl_issuance_queue{{state=\"waiting_retry\"}} {}\n", q.waiting);
    out += fmt::format("certctrl_issuance_queue{{state=\"processing\"}} {}\n", q.processing);
    out +=
        "# HELP certctrl_issuance_next_retry_timestamp_seconds When the earliest waiting row runs again.\n";
    out += "# TYPE certctrl_issuance_next_retry_timestamp_seconds gauge\n";
    out += fmt::format("certctrl_issuance_next_retry_timestamp_seconds {}\n", q.next_retry_at);
    out += "# HELP certctrl_issuance_runs_total Runs of this instance by how they ended.\n";
    out += "# TYPE certctrl_issuance_runs_total counter\n";
    out += fmt::format("certctrl_issuance_runs_total{{result=\"success\"}} {}\n", e.succeeded);
    out += fmt::format("certctrl_issuance_runs_total{{result=\"failed\"}} {}\n", e.failed);
    out += fmt::format("certctrl_issuance_runs_total{{result=\"retry\"}} {}\n", e.retried);
    auto const all = sessions_.all();
    struct family {
        char const* name;
        char const* type;
        char const* help;
        std::function<std::string(acme::ca_session::counters const&)> value;
    };
    std::vector<family> const families{
        {"certctrl_acme_requests_total", "counter",
         "Requests to each ACME CA (directory URL) from this instance.",
         [](auto const& c) { return std::to_string(c.requests); }},
        {"certctrl_acme_rate_limited_total", "counter", "rateLimited or 429 answers of each ACME CA.",
         [](auto const& c) { return std::to_string(c.rate_limited); }},
        {"certctrl_acme_wait_seconds_total", "counter",
         "Time requests to each CA waited for its rate or pause.",
         [](auto const& c) { return fmt::format("{:.3f}", static_cast<double>(c.paused_ms) / 1000.0); }}};
    for (auto const& f : families) {
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
        for (auto const& s : all) {
            out +=
                fmt::format("{}{{ca=\"{}\"}} {}\n", f.name, label(s->directory_url()), f.value(s->stats()));
        }
    }
}

// Claims rows while fewer than cfg.workers run here, each run a coroutine of its own; sleeps for the poll
// interval when there is no work (or every slot is busy), and is woken by a finished run or new work.
asio::awaitable<void> issuance_worker::dispatch() {
    while (running_) {
        while (running_ && in_flight_.load() < cfg_.workers) {
            std::string owner = instance_id_ + "/" + std::to_string(++runs_);
            auto aw_claim = jobs_.claim(owner, unix_now() + cfg_.lease_seconds);
            auto row = co_await std::move(aw_claim);
            if (!row) {
                spdlog::warn("issuance: cannot claim work: {}", row.error().what);
                break;
            }
            if (!*row) {
                break;
            }
            in_flight_.fetch_add(1);
            asio::co_spawn(ioc_, run_one(std::move(**row), std::move(owner)), asio::detached);
        }
        if (!running_) {
            break;
        }
        if (woken_.exchange(false)) {
            continue;
        }
        dispatch_slot_->timer.expires_after(std::chrono::milliseconds(cfg_.poll_interval_ms));
        co_await dispatch_slot_->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

asio::awaitable<void> issuance_worker::run_one(domain::issue_row row, std::string owner) {
    auto keeper = std::make_shared<slot>(ioc_);
    asio::co_spawn(keeper->strand, keep_lease(row.id, owner, keeper), asio::detached);
    try {
        auto aw = run(std::move(row), std::move(owner));
        co_await std::move(aw);
    } catch (std::exception const& e) {
        spdlog::error("issuance run ended by an exception: {}", e.what());  // the lease expires; reclaimed
    }
    asio::post(keeper->strand, [keeper] {
        keeper->done = true;
        keeper->timer.cancel();
    });
    in_flight_.fetch_sub(1);
    wake();
}

asio::awaitable<void> issuance_worker::keep_lease(std::int64_t id, std::string owner,
                                                  std::shared_ptr<slot> k) {
    auto const every = std::chrono::milliseconds(std::int64_t{cfg_.lease_seconds} * 1000 / 3);
    while (running_) {
        k->timer.expires_after(every);
        co_await k->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (k->done || !running_) {
            co_return;
        }
        auto aw = jobs_.heartbeat(id, owner, unix_now() + cfg_.lease_seconds);
        auto kept = co_await std::move(aw);
        if (!kept) {
            // The next beat tries again; the lease lapses only after lease_seconds without one.
            spdlog::warn("issue {}: renewing the lease failed: {}", id, kept.error().what);
        } else if (!*kept) {
            co_return;  // closed, or another worker holds it: the run stops at its next step
        }
    }
}

asio::awaitable<void> issuance_worker::run(domain::issue_row row, std::string owner) {
    auto aw_ctx = jobs_.context(row.user_id, row.cert_id);
    auto ctx = co_await std::move(aw_ctx);
    if (!ctx) {
        spdlog::warn("issue {}: loading its certificate failed: {}", row.id, ctx.error().what);
        co_return;  // the lease expires and the row is claimed again
    }
    if (!*ctx) {
        auto aw =
            issuance_.close(row.id, "FAILED", "The certificate or its ACME account no longer exists", owner);
        co_await std::move(aw);
        co_return;
    }
    if ((*ctx)->account.provider == "SELF_CA") {
        std::optional<std::int64_t> const ca_id =
            (*ctx)->ca ? std::optional<std::int64_t>((*ctx)->ca->id) : std::nullopt;
        auto aw_make = issuance_.make_self_ca(**ctx);
        auto made = co_await std::move(aw_make);
        if (!made) {
            auto aw = issuance_.close(row.id, "FAILED", made.error().what, owner);
            co_await std::move(aw);
            failed_.fetch_add(1);
            co_return;
        }
        auto aw_done = issuance_.complete(row.id, owner, row.user_id, row.cert_id, std::move(*made), ca_id);
        auto done = co_await std::move(aw_done);
        if (done && *done) {
            succeeded_.fetch_add(1);  // otherwise cancelled or taken over: not this run's outcome
        }
        co_return;
    }
    // The ACME account of this attempt: the certificate's, or the fallback the row failed over to.
    auto aw_progress = jobs_.progress(row.id);
    auto progress = co_await std::move(aw_progress);
    if (!progress) {
        spdlog::warn("issue {}: reading its progress failed: {}", row.id, progress.error().what);
        co_return;  // the lease expires and the row is claimed again
    }
    std::int64_t const index = progress->account_index;
    auto const fallbacks = (*ctx)->cert.fallback_acct_ids;
    if (index > 0) {
        auto const id = index <= static_cast<std::int64_t>(fallbacks.size())
                            ? fallbacks[static_cast<std::size_t>(index - 1)]
                            : std::int64_t{0};
        auto aw_acct = jobs_.account(row.user_id, id);
        auto acct = co_await std::move(aw_acct);
        if (!acct) {
            spdlog::warn("issue {}: loading its fallback account failed: {}", row.id, acct.error().what);
            co_return;  // the lease expires and the row is claimed again
        }
        if (!*acct || (*acct)->provider == "SELF_CA") {
            auto aw = issuance_.close(row.id, "FAILED",
                                      "Fallback ACME account " + std::to_string(id) +
                                          " no longer exists (or is no ACME account); " + progress->failovers,
                                      owner);
            co_await std::move(aw);
            failed_.fetch_add(1);
            co_return;
        }
        (*ctx)->account = std::move(**acct);
    }
    auto const account_id = (*ctx)->account.id;
    auto const directory = (*ctx)->account.directory_url;
    {
        auto aw_set = jobs_.set_account(row.id, owner, account_id, "");
        co_await std::move(aw_set);
    }
    spdlog::info("issue {} (certificate {}): ACME run by {} through account {}", row.id, row.cert_id, owner,
                 account_id);
    auto r = std::make_unique<acme_run>(
        acme_env{jobs_, issuance_, dns_, keys_, cpu_, dns_io_, cfg_, egress_, sessions_}, std::move(**ctx),
        row, owner, std::move(*progress));
    auto aw_acme = r->run();
    auto done = co_await std::move(aw_acme);
    auto aw_drop = jobs_.drop_http_challenges(row.id);
    co_await std::move(aw_drop);
    if (!done) {
        auto aw_fail = after_failure(row, owner, done.error(), fallbacks, account_id, directory);
        co_await std::move(aw_fail);
    } else {
        succeeded_.fetch_add(1);
    }
}

// Moves the row to the next fallback account: its order starts over there at once, and the row's message
// and acct_id say so. False when there is no next account (or the lease was lost).
asio::awaitable<bool> issuance_worker::fail_over(domain::issue_row const& row, std::string const& owner,
                                                 app_error const& e, acme_progress p,
                                                 std::vector<std::int64_t> const& fallbacks,
                                                 std::int64_t from_account,
                                                 std::string const& from_directory) {
    if (p.account_index >= static_cast<std::int64_t>(fallbacks.size())) {
        co_return false;
    }
    auto const next = fallbacks[static_cast<std::size_t>(p.account_index)];
    std::string const note = "The CA at " + from_directory + " (ACME account " +
                             std::to_string(from_account) + ") failed: " + e.what +
                             "; the order goes to ACME account " + std::to_string(next);
    p.account_index += 1;
    p.order_url.clear();
    p.replaced_order.clear();
    p.retries = 0;
    p.failovers += (p.failovers.empty() ? "" : " | ") + note;
    auto aw_save = jobs_.save(row.id, owner, p);
    auto saved = co_await std::move(aw_save);
    if (!saved || !*saved) {
        co_return false;
    }
    auto aw_set = jobs_.set_account(row.id, owner, next, note);
    co_await std::move(aw_set);
    auto aw_retry = jobs_.retry_later(row.id, owner, unix_now(), note);
    co_await std::move(aw_retry);
    spdlog::info("issue {}: {}", row.id, note);
    wake();
    co_return true;
}

asio::awaitable<void> issuance_worker::after_failure(domain::issue_row row, std::string owner, app_error e,
                                                     std::vector<std::int64_t> fallbacks,
                                                     std::int64_t account_id, std::string directory) {
    if (is_stop(e, "lease_lost")) {
        spdlog::warn("issue {}: lease lost to another worker", row.id);
        co_return;
    }
    if (is_stop(e, "cancelled")) {
        auto aw = issuance_.close(row.id, "CANCELLED", "Cancelled by the user", owner);
        co_await std::move(aw);
        co_return;
    }
    auto aw_progress = jobs_.progress(row.id);
    auto progress = co_await std::move(aw_progress);
    // A CA that refuses or rate-limits the order, or keeps failing, hands it to the next fallback account.
    // Failures on this side (a database, a key that does not open, a name another user holds) do not.
    bool const from_outside = e.code == errc::external_service || e.code == errc::bad_request;
    auto const* type = e.params.if_contains("acme_type");
    bool const rate_limited = type != nullptr && type->is_string() && type->get_string() == "rateLimited";
    if (progress && from_outside && !fallbacks.empty() && (!acme::retryable(e) || rate_limited)) {
        auto aw_fo = fail_over(row, owner, e, *progress, fallbacks, account_id, directory);
        if (co_await std::move(aw_fo)) {
            co_return;
        }
    }
    if (!acme::retryable(e)) {
        spdlog::info("issue {} failed: {} {}", row.id, e.what, e.detail);
        auto aw = issuance_.close(row.id, "FAILED", e.what, owner);
        co_await std::move(aw);
        failed_.fetch_add(1);
        co_return;
    }
    // Transient: count the attempt in the resumable progress and come back later.
    acme_progress p = progress ? std::move(*progress) : acme_progress{};
    p.retries += 1;
    auto aw_save = jobs_.save(row.id, owner, p);
    auto saved = co_await std::move(aw_save);
    if (saved && !*saved) {
        spdlog::warn("issue {}: lease lost to another worker", row.id);
        co_return;
    }
    if (p.retries >= static_cast<std::int64_t>(cfg_.max_attempts) && from_outside) {
        auto aw_fo = fail_over(row, owner, e, p, fallbacks, account_id, directory);
        if (co_await std::move(aw_fo)) {
            co_return;
        }
    }
    if (p.retries >= static_cast<std::int64_t>(cfg_.max_attempts)) {
        auto aw = issuance_.close(
            row.id, "FAILED", "Gave up after " + std::to_string(p.retries) + " attempts: " + e.what, owner);
        co_await std::move(aw);
        failed_.fetch_add(1);
        co_return;
    }
    std::int64_t delay = static_cast<std::int64_t>(cfg_.retry_base_seconds)
                         << std::min<std::int64_t>(p.retries - 1, 10);
    if (auto const* ra = e.params.if_contains("retry_after"); ra != nullptr && ra->is_int64()) {
        delay = std::max(delay, ra->get_int64());
    }
    static thread_local std::mt19937 rng{std::random_device{}()};
    delay =
        std::min<std::int64_t>(3600, delay / 2 + std::uniform_int_distribution<std::int64_t>(0, delay)(rng));
    auto aw_retry = jobs_.retry_later(row.id, owner, unix_now() + delay,
                                      "Attempt " + std::to_string(p.retries) + " failed, retrying in " +
                                          std::to_string(delay) + " s: " + e.what);
    co_await std::move(aw_retry);
    retried_.fetch_add(1);
    spdlog::info("issue {}: transient failure, retry in {} s: {}", row.id, delay, e.what);
}

}  // namespace certctrl::worker
