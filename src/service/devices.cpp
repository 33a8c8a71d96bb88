#include "certctrl/service/devices.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/crypto/sodium.hpp"
#include "certctrl/crypto/x509.hpp"
#include "certctrl/service/issuance.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <deque>
#include <set>

namespace certctrl::service {

namespace asio = boost::asio;

// ----------------------------------------------------------------------------------------- notifier

struct update_notifier::waiter {
    waiter(asio::any_io_executor ex, std::int64_t dev)
        : strand(asio::make_strand(ex)), timer(strand), device_id(dev) {}
    asio::strand<asio::any_io_executor> strand;
    asio::steady_timer timer;
    bool notified = false;  // touched on the strand only
    std::int64_t device_id;
};

namespace {

asio::awaitable<void> wait_on_strand(std::shared_ptr<update_notifier::waiter> w,
                                     std::chrono::steady_clock::time_point deadline) {
    if (w->notified) {
        co_return;
    }
    w->timer.expires_at(deadline);
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace

std::shared_ptr<update_notifier::waiter> update_notifier::watch(asio::any_io_executor ex,
                                                                std::int64_t device_id) {
    auto w = std::make_shared<waiter>(std::move(ex), device_id);
    std::lock_guard lock(mu_);
    waiters_.emplace(device_id, w);
    return w;
}

asio::awaitable<void> update_notifier::wait(std::shared_ptr<waiter> w,
                                            std::chrono::steady_clock::time_point deadline) {
    if (stopping_) {
        co_return;
    }
    auto strand = w->strand;
    auto op = asio::co_spawn(strand, wait_on_strand(std::move(w), deadline), asio::use_awaitable);
    co_await std::move(op);
}

void update_notifier::unwatch(std::shared_ptr<waiter> const& w) {
    std::lock_guard lock(mu_);
    auto [a, b] = waiters_.equal_range(w->device_id);
    for (auto it = a; it != b; ++it) {
        if (it->second == w) {
            waiters_.erase(it);
            return;
        }
    }
}

void update_notifier::interrupt(std::shared_ptr<waiter> const& w) {
    // As a wake: a wait that has not started yet returns at once.
    asio::post(w->strand, [w] {
        w->notified = true;
        w->timer.cancel();
    });
}

std::size_t update_notifier::waiting() const {
    std::lock_guard lock(mu_);
    return waiters_.size();
}

void update_notifier::stop() {
    stopping_ = true;
    std::vector<std::int64_t> all;
    {
        std::lock_guard lock(mu_);
        for (auto const& [id, w] : waiters_) {
            all.push_back(id);
        }
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    wake(all);
}

void update_notifier::wake(std::vector<std::int64_t> const& devices) {
    std::lock_guard lock(mu_);
    for (auto id : devices) {
        auto [a, b] = waiters_.equal_range(id);
        for (auto it = a; it != b; ++it) {
            auto w = it->second;
            asio::post(w->strand, [w] {
                w->notified = true;
                w->timer.cancel();
            });
        }
    }
}

asio::awaitable<void> update_notifier::run() {
    // Feed ids are handed out at insert and become visible at commit, so a smaller id may appear after a
    // larger one (different devices commit in any order; one device's signals cannot: its row is locked and
    // written with each insert). Each poll therefore re-reads the ids of the last few seconds and wakes the
    // devices of ids not seen yet.
    using rows = std::vector<std::pair<std::int64_t, std::int64_t>>;
    constexpr auto settle = std::chrono::seconds(5);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::int64_t floor = -1;  // ids up to here are settled; -1: not known yet
    std::set<std::int64_t> seen;
    std::deque<std::pair<std::chrono::steady_clock::time_point, std::int64_t>> marks;
    auto const pause = [&]() -> asio::awaitable<bool> {  // false: stopped
        timer.expires_after(period_);
        auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        co_return !ec;
    };
    for (;;) {
        if (floor < 0) {
            // At start the settled ids are those written more than `settle` ago; the rows after them are read
            // (and their devices woken) once, so a transaction still open now is seen when it commits.
            auto const cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch() - settle)
                                    .count();
            auto op0 = r_.db->read([this, cutoff](repo::work& w) -> result<std::int64_t> {
                return r_.feed->newest_before(w, cutoff);
            });
            auto f = co_await std::move(op0);
            if (f) {
                floor = *f;
            } else {
                spdlog::warn("update notifier: {}", f.error().what);
            }
        }
        if (floor < 0) {  // not known yet: try again at the next poll
            if (!co_await pause()) {
                co_return;
            }
            continue;
        }
        // A full batch means more rows follow: read on from its last id (the window re-read stays complete).
        auto op = r_.db->read([this, floor](repo::work& w) -> result<rows> {
            rows all = r_.feed->changed_since(w, floor);
            while (!all.empty() && all.size() % 10000 == 0) {
                rows more = r_.feed->changed_since(w, all.back().first);
                all.insert(all.end(), more.begin(), more.end());
                if (more.size() < 10000) {
                    break;
                }
            }
            return all;
        });
        auto r = co_await std::move(op);
        if (!r) {
            spdlog::warn("update notifier: {}", r.error().what);
        } else {
            std::vector<std::int64_t> devices;
            std::int64_t newest = floor;
            for (auto const& [id, device] : *r) {
                newest = std::max(newest, id);
                if (seen.insert(id).second) {
                    devices.push_back(device);
                }
            }
            std::sort(devices.begin(), devices.end());
            devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
            wake(devices);
            auto const now = std::chrono::steady_clock::now();
            marks.emplace_back(now, newest);
            while (!marks.empty() && now - marks.front().first >= settle) {
                floor = std::max(floor, marks.front().second);
                marks.pop_front();
            }
            seen.erase(seen.begin(), seen.upper_bound(floor));
        }
        if (!co_await pause()) {
            co_return;
        }
    }
}

// ------------------------------------------------------------------------------------ device service

namespace {

// Cursors are feed ids in decimal; "" and the stream-style "0-0" mean "from the start". Anything else is
// not one of ours: the device has to resync.
std::optional<std::int64_t> parse_cursor(std::string const& c) {
    if (c.empty() || c == "0-0") {
        return 0;
    }
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(c.data(), c.data() + c.size(), v);
    if (ec != std::errc() || p != c.data() + c.size() || v < 0) {
        return std::nullopt;
    }
    return v;
}

app_error resync_error(std::int64_t earliest) {
    app_error e = make_error(errc::updates_cursor_expired, "Cursor expired. Full resync required.");
    e.params["action"] = "full_resync";
    e.params["reset_cursor"] = true;
    e.params["signal_type"] = "state.resync_required";
    e.params["reason"] = "cursor_trimmed";
    e.params["earliest_retained_id"] = std::to_string(earliest);
    return e;
}

}  // namespace

task<std::pair<std::vector<repo::device_signal>, std::int64_t>> device_service::read_feed(
    std::int64_t device_id, std::int64_t after, std::size_t limit, bool record_receipt) {
    using out_t = std::pair<std::vector<repo::device_signal>, std::int64_t>;
    return r_.db->transact([this, device_id, after, limit, record_receipt](repo::work& w) -> result<out_t> {
        if (after == 0) {
            // Without a cursor an empty page answers the device's high-water mark, read after this device's
            // in-flight writers committed (they hold its row until then), so nothing of this device below it
            // can still appear.
            r_.devices->lock_shared(w, device_id);
        }
        auto signals = r_.feed->after(w, device_id, after, limit);
        // Checked after the rows were read: a trim committed in between is seen here (and answered with a
        // resync) rather than leaving a silent gap. A cursor before the kept window, or past anything the
        // feed ever held, cannot be continued.
        auto b = r_.feed->bounds_of(w, device_id);
        if (!b) {
            return make_error(errc::not_found, "Device not found");
        }
        // The first cursor is the device's own high-water mark, or 1 ("nothing yet") while it has no signal:
        // never the feed's, which would tell a tenant how busy everyone else is. Any later signal of this
        // device has a larger id (feed ids start at 2, V012), and a trim of one it never saw leaves the mark
        // below trimmed_through.
        std::int64_t const mark = std::max<std::int64_t>(b->newest, 1);
        if (after != 0 && (after < b->trimmed_through || after > mark)) {
            std::int64_t const oldest = r_.feed->oldest(w, device_id);
            return resync_error(oldest == 0 ? b->trimmed_through : oldest);
        }
        if (record_receipt && after != 0 && note_wanted(device_id, after)) {
            r_.devices->note_received(w, device_id, after);  // a cursor says everything up to it arrived
            confirm_deployments(w, device_id);
        }
        std::int64_t const cursor = !signals.empty() ? signals.back().id : after != 0 ? after : mark;
        return out_t{std::move(signals), cursor};
    });
}

std::size_t device_service::waiting_polls(std::int64_t user_id) const {
    std::lock_guard lock(polls_mu_);
    auto it = polls_.find(user_id);
    return it == polls_.end() ? 0 : it->second;
}

task<update_batch> device_service::updates(std::int64_t device_id, std::string cursor, std::size_t limit,
                                           unsigned wait_s, std::int64_t user_id, bool record_receipt) {
    auto after = parse_cursor(cursor);
    if (!after) {
        co_return resync_error(0);
    }
    wait_s = notifier_.stopping() ? 0u : std::min(wait_s, cfg_.updates_max_wait_seconds);
    // A seat among the user's waiting polls; past the cap the poll is answered at once, so one user's fleet
    // cannot hold an unbounded number of waiting requests (and their memory) in this instance.
    struct seat {
        device_service* svc = nullptr;
        std::int64_t user = 0;
        ~seat() {
            if (svc != nullptr) {
                std::lock_guard lock(svc->polls_mu_);
                if (--svc->polls_[user] == 0) {
                    svc->polls_.erase(user);
                }
            }
        }
    } held;
    if (wait_s > 0 && cfg_.max_waiting_polls_per_user > 0) {
        std::lock_guard lock(polls_mu_);
        auto& n = polls_[user_id];
        if (n >= cfg_.max_waiting_polls_per_user) {
            wait_s = 0;
            if (n == 0) {
                polls_.erase(user_id);
            }
        } else {
            ++n;
            held.svc = this;
            held.user = user_id;
        }
    }
    auto const ex = co_await asio::this_coro::executor;
    std::shared_ptr<update_notifier::waiter> w;
    if (wait_s > 0) {
        w = notifier_.watch(ex, device_id);
    }
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_s);
    result<std::pair<std::vector<repo::device_signal>, std::int64_t>> got =
        std::pair<std::vector<repo::device_signal>, std::int64_t>{};
    for (;;) {
        auto op = read_feed(device_id, *after, limit, record_receipt);
        got = co_await std::move(op);
        if (!got || !got->first.empty() || !w || std::chrono::steady_clock::now() >= deadline ||
            notifier_.stopping()) {
            break;
        }
        auto wait_op = notifier_.wait(w, deadline);
        co_await std::move(wait_op);
        notifier_.unwatch(w);
        w = notifier_.watch(ex, device_id);
    }
    if (w) {
        notifier_.unwatch(w);
    }
    if (!got) {
        co_return got.error();
    }
    update_batch b;
    b.signals = std::move(got->first);
    b.cursor = std::to_string(got->second);
    co_return b;
}

bool device_service::note_wanted(std::int64_t device_id, std::int64_t feed_id) {
    // The same cursor polled again changes nothing: written once per new cursor (per instance).
    std::lock_guard lock(noted_mu_);
    if (noted_.size() > 200000) {
        noted_.clear();  // bounded memory; the next polls write again
    }
    auto& known = noted_[device_id];
    if (known >= feed_id) {
        return false;
    }
    known = feed_id;
    return true;
}

task<bool> device_service::note_received(std::int64_t device_id, std::int64_t feed_id) {
    return r_.db->transact([this, device_id, feed_id](repo::work& w) -> result<bool> {
        r_.devices->note_received(w, device_id, feed_id);
        confirm_deployments(w, device_id);
        return true;
    });
}

void device_service::confirm_deployments(repo::work& w, std::int64_t device_id) const {
    // The agent acknowledges a batch after handling it (the next poll's cursor, a WebSocket updates.ack):
    // materials fetched before the acknowledgement were installed.
    auto fetched = r_.webhooks->unconfirmed(w, device_id);
    if (fetched.empty()) {
        return;
    }
    auto dev = r_.devices->by_id(w, device_id);
    if (!dev) {
        return;
    }
    for (auto const& [cert_id, serial] : fetched) {
        deployed(w, *dev, cert_id, serial);
    }
}

void device_service::deployed(repo::work& w, domain::device const& dev, std::int64_t cert_id,
                              std::string const& serial) const {
    if (!r_.webhooks->confirm(w, dev.id, cert_id, serial)) {
        return;
    }
    auto c = r_.certificates->get(w, dev.user_id, cert_id);
    if (!c || c->serial_number != serial) {
        return;  // an older version of the certificate: nothing new is in place
    }
    events_.emit_certificate(
        w, dev.user_id, "certificate.deployed", cert_id,
        boost::json::object{
            {"serial_number", serial},
            {"device", boost::json::object{
                           {"id", dev.id}, {"device_public_id", dev.device_public_id}, {"name", dev.name}}}});
}

task<bool> device_service::push_agent_config(std::int64_t user_id, std::int64_t device_id,
                                             boost::json::object ref) {
    return r_.db->transact([this, user_id, device_id, ref = std::move(ref)](repo::work& w) -> result<bool> {
        if (!r_.devices->lock_owned(w, user_id, device_id)) {
            return make_error(errc::not_found, "Device not found");
        }
        signals_.emit(w, device_id, "config.updated", ref);
        return true;
    });
}

task<repo::device_cert_material> device_service::certificate(std::int64_t user_id, std::int64_t device_id,
                                                             std::int64_t cert_id) {
    return r_.db->read(
        [this, user_id, device_id, cert_id](repo::work& w) -> result<repo::device_cert_material> {
            auto m = r_.assignments->material(w, user_id, device_id, cert_id);
            if (!m) {
                return make_error(errc::not_found, "Certificate not assigned to this device");
            }
            return std::move(*m);
        });
}

task<boost::json::object> device_service::deploy_materials(std::int64_t user_id, std::int64_t device_id,
                                                           std::int64_t cert_id) {
    auto op = certificate(user_id, device_id, cert_id);
    auto m = co_await std::move(op);
    if (!m) {
        co_return m.error();
    }
    auto out = materials_of(*m, cert_id);
    if (out && !m->cert.serial_number.empty()) {
        auto aw_note = r_.db->read(
            [this, device_id, cert_id, serial = m->cert.serial_number](repo::work& w) -> result<bool> {
                r_.webhooks->note_fetched(w, device_id, cert_id, serial);
                return true;
            });
        if (auto noted = co_await std::move(aw_note); !noted) {
            co_return noted.error();
        }
    }
    co_return out;
}

result<boost::json::object> device_service::materials_of(repo::device_cert_material const& mat,
                                                         std::int64_t cert_id) const {
    auto const* m = &mat;
    std::string const& policy = m->cert.key_dist_policy;  // canonical: parse_key_policy upper-cases it
    if (!m->issued) {
        app_error e = make_error(errc::conflict, "The certificate has not been issued yet");
        e.key = "NOT_ISSUED";
        return e;
    }
    if (policy == "MASTER_ONLY") {
        if (!m->cert.server_decrypt_export) {
            app_error e = make_error(
                errc::forbidden, "Policy MASTER_ONLY without server_decrypt_export: the key is not exported");
            e.key = "EXPORT_FORBIDDEN";
            return e;
        }
        auto key = open_certificate_key(keys_, repo::stored_key{m->private_key, m->data_key}, cert_id);
        if (!key) {
            return key.error();
        }
        auto blocks = crypto::split_certificates(m->cert.cert_pem);
        boost::json::object out{{"enc_scheme", "plaintext"},
                                {"private_key_der_b64", base64_encode(crypto::private_key_der(*key))},
                                {"private_key_pem", *key}};
        if (!blocks.empty()) {
            out["certificate_pem"] = blocks.front();
        }
        return out;
    }
    if (!m->enc_data_key || m->enc_data_key->size() != crypto::sealed_data_key_bytes) {
        app_error e = make_error(errc::conflict,
                                 "Device wrap pending (WRAP_PENDING): the data key is not yet sealed to this "
                                 "device's key; retry shortly");
        e.key = "WRAP_PENDING";
        return e;
    }
    return boost::json::object{{"cert_id", cert_id},
                               {"wrap_alg", m->wrap_alg.empty() ? std::string("x25519") : m->wrap_alg},
                               {"enc_scheme", "aes256gcm"},
                               {"device_keyfp_b64", base64_encode(m->device_keyfp)},
                               {"enc_data_key_b64", base64_encode(*m->enc_data_key)},
                               {"enc_privkey_b64", base64_encode(m->private_key.ciphertext)},
                               {"privkey_nonce_b64", base64_encode(m->private_key.nonce)},
                               {"privkey_tag_b64", base64_encode(m->private_key.tag)}};
}

task<domain::ca> device_service::ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id) {
    return r_.db->read([this, user_id, device_id, ca_id](repo::work& w) -> result<domain::ca> {
        auto c = r_.device_cas->get(w, user_id, device_id, ca_id);
        if (!c) {
            return make_error(errc::not_found, "CA not assigned to this device");
        }
        return std::move(*c);
    });
}

task<bool> device_service::notify(std::int64_t device_id, boost::json::object body, std::string ip) {
    auto const* events = body.if_contains("events");
    if (!events || !events->is_array()) {
        co_return make_error(errc::bad_request, "events must be an array", {{"field", "events"}});
    }
    if (events->get_array().size() > 100) {
        co_return make_error(errc::bad_request, "at most 100 events", {{"field", "events"}});
    }
    std::string version;
    std::vector<std::pair<std::int64_t, std::string>> deployed_certs;  // cert id, serial ("" = the current)
    for (auto const& ev : events->get_array()) {
        if (!ev.is_object() || !ev.get_object().if_contains("type") ||
            !ev.get_object().at("type").is_string()) {
            co_return make_error(errc::bad_request, "each event needs a string type", {{"field", "events"}});
        }
        auto const& o = ev.get_object();
        if (o.at("type").get_string() == "agent_version") {
            auto const* v = o.if_contains("version");
            if (!v || !v->is_string() || v->get_string().empty() || v->get_string().size() > 64) {
                co_return make_error(errc::bad_request, "agent_version needs a version (1-64 characters)",
                                     {{"field", "events"}});
            }
            version = std::string(v->get_string());
        } else if (o.at("type").get_string() == "cert.deployed") {
            auto const* id = o.if_contains("cert_id");
            auto const* serial = o.if_contains("serial");
            if (!id || !id->is_int64() || id->get_int64() <= 0 ||
                (serial && !serial->is_null() &&
                 (!serial->is_string() || serial->get_string().size() > 128))) {
                co_return make_error(errc::bad_request,
                                     "cert.deployed needs a cert_id (and an optional serial of at most 128 "
                                     "characters)",
                                     {{"field", "events"}});
            }
            deployed_certs.emplace_back(
                id->get_int64(), serial && serial->is_string() ? std::string(serial->get_string()) : "");
        }
    }
    auto op =
        r_.db->transact([this, device_id, &version, &ip, &deployed_certs](repo::work& w) -> result<bool> {
            r_.devices->note_agent(w, device_id, version, ip, unix_now());
            if (deployed_certs.empty()) {
                return true;
            }
            auto dev = r_.devices->by_id(w, device_id);
            for (auto const& [cert_id, serial] : deployed_certs) {
                // Only a certificate assigned to this device counts (deployed() changes nothing otherwise);
                // another user's id is ignored like an unknown event.
                auto c = dev ? r_.certificates->get(w, dev->user_id, cert_id) : std::nullopt;
                if (c && !c->serial_number.empty()) {
                    deployed(w, *dev, cert_id, serial.empty() ? c->serial_number : serial);
                }
            }
            return true;
        });
    co_return co_await std::move(op);
}

task<repo::page<domain::ca>> device_service::device_cas(std::int64_t user_id, std::int64_t device_id,
                                                        repo::page_query q) {
    return r_.db->read([this, user_id, device_id, q](repo::work& w) -> result<repo::page<domain::ca>> {
        if (!r_.devices->get(w, user_id, device_id)) {
            return make_error(errc::not_found, "Device not found");
        }
        return r_.device_cas->list(w, user_id, device_id, q);
    });
}

task<bool> device_service::assign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id) {
    return r_.db->transact([this, user_id, device_id, ca_id](repo::work& w) -> result<bool> {
        // The CA first, then the device (the order CA removal takes them in).
        auto ca = r_.cas->get(w, user_id, ca_id, repo::row_lock::shared);
        if (!r_.devices->lock_owned(w, user_id, device_id)) {
            return make_error(errc::not_found, "Device not found");
        }
        if (!ca) {
            return make_error(errc::not_found, "CA not found", {{"field", "ca_id"}});
        }
        if (r_.device_cas->insert(w, device_id, ca_id, unix_now())) {
            signals_.emit(
                w, device_id, "ca.assigned",
                boost::json::object{{"ca_id", ca_id}, {"serial", ca->serial_number}, {"ca_name", ca->name}});
        }
        return true;
    });
}

task<bool> device_service::unassign_ca(std::int64_t user_id, std::int64_t device_id, std::int64_t ca_id) {
    return r_.db->transact([this, user_id, device_id, ca_id](repo::work& w) -> result<bool> {
        auto ca = r_.cas->get(w, user_id, ca_id, repo::row_lock::shared);
        if (!r_.devices->lock_owned(w, user_id, device_id) || !ca ||
            !r_.device_cas->remove(w, device_id, ca_id)) {
            return make_error(errc::not_found, "CA not assigned to this device");
        }
        signals_.emit(
            w, device_id, "ca.unassigned",
            boost::json::object{{"ca_id", ca_id}, {"serial", ca->serial_number}, {"ca_name", ca->name}});
        return true;
    });
}

}  // namespace certctrl::service
