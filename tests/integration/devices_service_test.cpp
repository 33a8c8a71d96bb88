// Integration: the device side against the real MariaDB: registration upserts, refresh-token families, the
// feed's kept window, and assignments that seal the data key and signal in the same transaction.
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/sodium.hpp"
#include "service_stack.hpp"
// The unit of work of a raw connection (internal to certctrl_repo_mysql), to hold transactions open.
#include "../../src/repo_mysql/common.hpp"

#include <cppconn/connection.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <future>
#include <thread>

namespace certctrl::test {
namespace {

class DevicesService : public ServiceStack {
  protected:
    void SetUp() override {
        ServiceStack::SetUp();
        if (IsSkipped() || HasFatalFailure()) {
            return;
        }
        uid_ = user("d@x.y");
    }

    service::device_auth_service::registration_answer reg(std::string const& public_id,
                                                          std::string const& pk) {
        return register_device(uid_, public_id, pk);
    }
    result<domain::principal> login(std::string const& token) {
        return run_awaitable(auth_->authenticate(token));
    }
    result<service::update_batch> feed(service::device_service& svc, std::int64_t device,
                                       std::string cursor) {
        return run_awaitable(svc.updates(device, std::move(cursor), 100, 0));
    }
    std::int64_t feed_count(std::int64_t device) {
        return schema_->query_int("SELECT COUNT(*) FROM device_updates WHERE device_id = " +
                                  std::to_string(device));
    }

    // Watches `device` (the notifier running on `ioc`), commits `open`, and returns how long after the commit
    // the device's waiter woke (10 s: it did not).
    std::chrono::steady_clock::duration wake_time_of(boost::asio::io_context& ioc, std::int64_t device,
                                                     sql::Connection& open) {
        auto w = notifier_->watch(ioc.get_executor(), device);
        std::promise<std::chrono::steady_clock::time_point> woke;
        auto wait_task = [&]() -> boost::asio::awaitable<void> {
            auto op = notifier_->wait(w, std::chrono::steady_clock::now() + std::chrono::seconds(10));
            co_await std::move(op);
            woke.set_value(std::chrono::steady_clock::now());
        };
        boost::asio::co_spawn(ioc, wait_task, boost::asio::detached);
        auto const committed = std::chrono::steady_clock::now();
        open.commit();
        auto const at = woke.get_future().get();
        notifier_->unwatch(w);
        return at - committed;
    }

    std::int64_t uid_ = 0;
};

TEST_F(DevicesService, AnExistingDeviceIsNotRegisteredAgainWithoutProof) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto first = reg("1f0e0d0c-0b0a-4908-8706-050403020100", pk);
    auto [pk2, sk2] = crypto::x25519_keypair();
    repo::device_registration r;
    r.user_id = uid_;
    r.device_public_id = "1f0e0d0c-0b0a-4908-8706-050403020100";
    r.name = "thief";
    r.public_key = pk2;
    service::device_auth_service::rekey_proof not_this_one;
    not_this_one.may_write_device = [&](std::int64_t id) { return id != first.device.id; };
    not_this_one.refresh_token = "rt_not-a-token";
    auto out = run_awaitable(auth_->register_device(r, std::nullopt, not_this_one));
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().code, errc::conflict);
    EXPECT_TRUE(login(first.tokens.access_token)) << "the device keeps its session";
    // Its own refresh token is proof.
    service::device_auth_service::rekey_proof own;
    own.refresh_token = first.tokens.refresh_token;
    auto again = run_awaitable(auth_->register_device(r, std::nullopt, own));
    ASSERT_TRUE(again) << again.error().what;
    EXPECT_EQ(again->device.id, first.device.id);
}

TEST_F(DevicesService, ReRegistrationUpdatesTheRowAndEndsEarlierSessions) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto first = reg("0f0e0d0c-0b0a-4908-8706-050403020100", pk);
    auto second = reg("0f0e0d0c-0b0a-4908-8706-050403020100", pk);
    EXPECT_TRUE(first.created);
    EXPECT_FALSE(second.created);
    EXPECT_EQ(first.device.id, second.device.id);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices"), 1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices WHERE device_secret_hash = UNHEX('" +
                                 hex_encode(crypto::blake2b_256(pk)) + "')"),
              1);
    auto old_session = login(first.tokens.access_token);
    ASSERT_FALSE(old_session);
    EXPECT_EQ(old_session.error().code, errc::unauthenticated);
    auto now = login(second.tokens.access_token);
    ASSERT_TRUE(now) << now.error().what;
    EXPECT_EQ(now->device_id, second.device.id);
    // A valid signature naming another user for the device (a key of that user) is refused.
    auto claims = service::verify_device_token(keys_, second.tokens.access_token, 1);
    ASSERT_TRUE(claims);
    claims->user_id = uid_ + 1;
    auto other_user = login(service::sign_device_token(keys_, *claims));
    ASSERT_FALSE(other_user);
    EXPECT_EQ(other_user.error().code, errc::forbidden);
}

TEST_F(DevicesService, ARotatedRefreshTokenUsedAgainRevokesTheWholeFamily) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto d = reg("1f0e0d0c-0b0a-4908-8706-050403020100", pk);
    std::string const first = d.tokens.refresh_token;
    auto foreign = run_awaitable(auth_->re_register(first, 0, "99999999-0b0a-4908-8706-050403020100"));
    ASSERT_FALSE(foreign);
    EXPECT_EQ(foreign.error().code, errc::unauthenticated) << "checked before anything changes";
    auto again = run_awaitable(auth_->re_register(first, uid_, "1f0e0d0c-0b0a-4908-8706-050403020100"));
    ASSERT_TRUE(again) << again.error().what;
    EXPECT_EQ(again->device.id, d.device.id);
    std::string const second = again->tokens.refresh_token;
    EXPECT_NE(second, first);
    auto reuse = run_awaitable(auth_->refresh(first));
    ASSERT_FALSE(reuse);
    EXPECT_EQ(reuse.error().code, errc::refresh_token_rotated);
    auto live = run_awaitable(auth_->refresh(second));
    ASSERT_FALSE(live);
    EXPECT_EQ(live.error().code, errc::refresh_token_rotated) << "the family is revoked";
    EXPECT_FALSE(login(again->tokens.access_token));
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM device_refresh_tokens"), 2)
        << "no token was minted for the reuse";
}

TEST_F(DevicesService, TheFeedKeepsABoundedWindowPerDevice) {
    service::device_signals kept(repos_, 3);
    service::install_config_service configs(repos_, kept);
    auto [pk, sk] = crypto::x25519_keypair();
    auto d = reg("2f0e0d0c-0b0a-4908-8706-050403020100", pk);
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(run_awaitable(configs.put(
            uid_, d.device.id, boost::json::object{{"installs", boost::json::array{}}}, "t", {})));
    }
    EXPECT_EQ(feed_count(d.device.id), 3);
    auto all = feed(*devices_, d.device.id, "");
    ASSERT_TRUE(all);
    ASSERT_EQ(all->signals.size(), 3u);
    EXPECT_EQ(all->signals.front().ref.at("version").as_int64(), 3);
    std::int64_t const oldest = all->signals.front().id;
    std::int64_t const newest = all->signals.back().id;
    auto just_before = feed(*devices_, d.device.id, std::to_string(oldest - 1));
    ASSERT_TRUE(just_before) << "a cursor right before the kept window lost nothing: "
                             << (just_before ? ""
                                             : just_before.error().what + " " + just_before.error().detail);
    EXPECT_EQ(just_before->signals.size(), 3u);
    auto stale = feed(*devices_, d.device.id, std::to_string(oldest - 2));
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::updates_cursor_expired);
    EXPECT_EQ(stale.error().params.at("earliest_retained_id").as_string(), std::to_string(oldest));
    auto tail = feed(*devices_, d.device.id, std::to_string(oldest));
    ASSERT_TRUE(tail);
    EXPECT_EQ(tail->signals.size(), 2u);
    EXPECT_EQ(tail->cursor, std::to_string(newest));
    auto idle = feed(*devices_, d.device.id, std::to_string(newest));
    ASSERT_TRUE(idle);
    EXPECT_TRUE(idle->signals.empty());
    EXPECT_EQ(idle->cursor, std::to_string(newest)) << "an empty page keeps the cursor";
    auto ahead = feed(*devices_, d.device.id, std::to_string(newest + 1000));
    ASSERT_FALSE(ahead) << "a cursor past the whole feed";
    EXPECT_EQ(ahead.error().code, errc::updates_cursor_expired);
    using rows = std::vector<std::pair<std::int64_t, std::int64_t>>;
    // The notifier's start: the newest id written before a time (here: now and the dawn of time).
    auto const now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    EXPECT_EQ(in_read([&](repo::work& w) -> result<std::int64_t> {
                  return repos_.feed->newest_before(w, now_ms + 1000);
              }),
              newest);
    EXPECT_EQ(
        in_read([&](repo::work& w) -> result<std::int64_t> { return repos_.feed->newest_before(w, 0); }), 0);
    auto since =
        in_read([&](repo::work& w) -> result<rows> { return repos_.feed->changed_since(w, oldest); });
    ASSERT_EQ(since.size(), 2u);
    EXPECT_EQ(since.at(1), std::make_pair(newest, d.device.id));
}

// A device's install-config history is bounded (devices.install_config_history_kept): the oldest versions go.
TEST_F(DevicesService, TheInstallConfigHistoryKeepsItsNewestVersions) {
    service::install_config_service configs(repos_, *signals_, 3);
    auto [pk, sk] = crypto::x25519_keypair();
    auto d = reg("9e0e0d0c-0b0a-4908-8706-050403020100", pk);
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(run_awaitable(configs.put(
            uid_, d.device.id, boost::json::object{{"installs", boost::json::array{}}}, "t", {})));
    }
    std::string const where =
        " FROM device_install_config_history WHERE device_id = " + std::to_string(d.device.id);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*)" + where), 3);
    EXPECT_EQ(schema_->query_int("SELECT MIN(version)" + where), 3);
    EXPECT_EQ(schema_->query_int("SELECT MAX(version)" + where), 5);
    EXPECT_FALSE(run_awaitable(configs.restore(uid_, d.device.id, 1, "", "t", {}))) << "version 1 is gone";
    EXPECT_TRUE(run_awaitable(configs.restore(uid_, d.device.id, 4, "", "t", {})));
}

TEST_F(DevicesService, AnEmptyFirstPageHandsOutTheHighWaterMarkSoALaterTrimIsNoticed) {
    service::device_signals kept(repos_, 2);
    service::install_config_service configs(repos_, kept);
    auto [pk, sk] = crypto::x25519_keypair();
    auto busy = reg("7f0e0d0c-0b0a-4908-8706-050403020100", pk);
    auto quiet = reg("8f0e0d0c-0b0a-4908-8706-050403020100", pk);
    auto put = [&](std::int64_t device) {
        return run_awaitable(
            configs.put(uid_, device, boost::json::object{{"installs", boost::json::array{}}}, "t", {}));
    };
    ASSERT_TRUE(put(busy.device.id));
    auto first = feed(*devices_, quiet.device.id, "");
    ASSERT_TRUE(first);
    EXPECT_TRUE(first->signals.empty());
    EXPECT_EQ(first->cursor, "1") << "the device's own mark, 'nothing yet' (never the feed's)";
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(put(quiet.device.id));
    auto back = feed(*devices_, quiet.device.id, first->cursor);
    ASSERT_FALSE(back) << "the device missed a trimmed signal while away";
    EXPECT_EQ(back.error().code, errc::updates_cursor_expired);
}

TEST_F(DevicesService, AnAssignmentSealsTheDataKeyAndSignalsInOneTransaction) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto d = reg("3f0e0d0c-0b0a-4908-8706-050403020100", pk);
    auto cert = run_awaitable(certs_->create(uid_, cert_input(account(uid_), "seal.example.com")));
    ASSERT_TRUE(cert) << cert.error().what;
    // An issued key: the data key master-wrapped as the issuance stores it.
    std::string const data_key = crypto::random_bytes(32);
    auto w = keys_.wrap(data_key, service::issuance_service::data_key_context(cert->id));
    schema_->exec("UPDATE certificates SET enc_privkey = 'x', enc_nonce = UNHEX('" +
                  hex_encode(std::string(12, 'n')) + "'), enc_tag = UNHEX('" +
                  hex_encode(std::string(16, 't')) + "') WHERE id = " + std::to_string(cert->id));
    schema_->exec("INSERT INTO certificate_master_wrapped VALUES (" + std::to_string(cert->id) +
                  ", 1, UNHEX('" + hex_encode(w.box.ciphertext) + "'), UNHEX('" + hex_encode(w.box.nonce) +
                  "'), UNHEX('" + hex_encode(w.box.tag) + "'))");

    // A failing assignment (no such device) leaves no signal behind.
    EXPECT_FALSE(run_awaitable(certs_->assign(uid_, cert->id, d.device.id + 100)));
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM device_updates"), 0);

    auto a = run_awaitable(certs_->assign(uid_, cert->id, d.device.id));
    ASSERT_TRUE(a) << a.error().what;
    EXPECT_TRUE(a->wrapped);
    auto m = run_awaitable(devices_->certificate(uid_, d.device.id, cert->id));
    ASSERT_TRUE(m && m->enc_data_key);
    EXPECT_EQ(crypto::open_sealed(*m->enc_data_key, pk, sk), data_key);
    EXPECT_EQ(m->device_keyfp, crypto::blake2b_256(pk));
    auto signals = feed(*devices_, d.device.id, "");
    ASSERT_TRUE(signals);
    ASSERT_EQ(signals->signals.size(), 2u);
    EXPECT_EQ(signals->signals.at(0).type, "cert.updated");
    EXPECT_EQ(signals->signals.at(0).ref.at("wrap_ready"), true);
    EXPECT_EQ(signals->signals.at(1).type, "install.updated");
    auto cfg = run_awaitable(configs_->get(uid_, d.device.id));
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->installs.at(0).at("ob_id").as_int64(), cert->id);

    // A new device key re-seals the assignment to it.
    auto [pk2, sk2] = crypto::x25519_keypair();
    reg("3f0e0d0c-0b0a-4908-8706-050403020100", pk2);
    auto m2 = run_awaitable(devices_->certificate(uid_, d.device.id, cert->id));
    ASSERT_TRUE(m2 && m2->enc_data_key);
    EXPECT_EQ(crypto::open_sealed(*m2->enc_data_key, pk2, sk2), data_key);
    EXPECT_FALSE(crypto::open_sealed(*m2->enc_data_key, pk, sk));
}

TEST_F(DevicesService, ADevicesSignalsBecomeVisibleInIdOrder) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto a = reg("6f0e0d0c-0b0a-4908-8706-050403020100", pk);
    ASSERT_TRUE(run_awaitable(
        configs_->put(uid_, a.device.id, boost::json::object{{"installs", boost::json::array{}}}, "t", {})));
    auto first = feed(*devices_, a.device.id, "");
    ASSERT_TRUE(first);
    std::string const cursor = first->cursor;  // the agent's steady state: a cursor, no lock on the read
    // Two writers of a's feed, as issuance success writes them (nothing else locks the device first): the
    // first holds id N uncommitted while the second writes N+1.
    auto slow = pool_->connect();
    slow->setAutoCommit(false);
    repo::mysql_detail::mysql_work slow_work(*slow);
    signals_->emit(slow_work, a.device.id, "cert.updated", {});
    std::atomic<bool> second_done{false};
    auto later = std::async(std::launch::async, [&] {
        auto fast = pool_->connect();
        fast->setAutoCommit(false);
        repo::mysql_detail::mysql_work fast_work(*fast);
        signals_->emit(fast_work, a.device.id, "install.updated", {});
        fast->commit();
        second_done = true;
        return true;
    });
    // The second writer waits for the device row the first one holds: it cannot commit N+1 before N.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_FALSE(second_done.load()) << "the second writer must wait for the first one's lock";
    auto meanwhile = feed(*devices_, a.device.id, cursor);
    ASSERT_TRUE(meanwhile);
    EXPECT_TRUE(meanwhile->signals.empty()) << "id N+1 must not be readable while N is uncommitted";
    slow->commit();
    ASSERT_TRUE(later.get());
    auto both = feed(*devices_, a.device.id, cursor);
    ASSERT_TRUE(both);
    ASSERT_EQ(both->signals.size(), 2u);
    EXPECT_EQ(both->signals.at(0).type, "cert.updated");
    EXPECT_EQ(both->signals.at(1).type, "install.updated");
}

TEST_F(DevicesService, ALongPollWakesForASignalCommittedAfterANewerOne) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto a = reg("4f0e0d0c-0b0a-4908-8706-050403020100", pk);
    auto b = reg("5f0e0d0c-0b0a-4908-8706-050403020100", pk);
    boost::asio::io_context ioc;
    boost::asio::co_spawn(ioc, notifier_->run(), boost::asio::detached);
    auto guard = boost::asio::make_work_guard(ioc);
    std::thread io([&] { ioc.run(); });

    // A transaction for device a takes a feed id and stays open while device b's newer signal commits.
    auto slow = pool_->connect();
    slow->setAutoCommit(false);
    std::unique_ptr<sql::Statement>(slow->createStatement())
        ->execute("INSERT INTO device_updates (device_id, type, ref, ts_ms) VALUES (" +
                  std::to_string(a.device.id) + ", 'install.updated', '{}', 1)");
    // Until the notifier has seen b's newer id (it polls every 50 ms): b's waiter is registered first.
    auto wb = notifier_->watch(ioc.get_executor(), b.device.id);
    ASSERT_TRUE(run_awaitable(
        configs_->put(uid_, b.device.id, boost::json::object{{"installs", boost::json::array{}}}, "t", {})));
    std::promise<void> b_seen;
    auto wait_b = [&]() -> boost::asio::awaitable<void> {
        auto op = notifier_->wait(wb, std::chrono::steady_clock::now() + std::chrono::seconds(10));
        co_await std::move(op);
        b_seen.set_value();
    };
    boost::asio::co_spawn(ioc, wait_b, boost::asio::detached);
    b_seen.get_future().get();
    notifier_->unwatch(wb);

    auto const at = wake_time_of(ioc, a.device.id, *slow);
    EXPECT_LT(at, std::chrono::seconds(5)) << "the older id was picked up when it committed";
    notifier_->stop();
    guard.reset();
    ioc.stop();
    io.join();
}

// The same, with the notifier started while the older signal's transaction is open and after the newer one
// committed (an instance starting up): the older id is still seen when it commits.
TEST_F(DevicesService, ANotifierStartedWhileAnOlderSignalIsInFlightWakesForItWhenItCommits) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto a = reg("6f0e0d0c-0b0a-4908-8706-050403020100", pk);
    auto b = reg("7f0e0d0c-0b0a-4908-8706-050403020100", pk);
    auto slow = pool_->connect();
    slow->setAutoCommit(false);
    std::unique_ptr<sql::Statement>(slow->createStatement())
        ->execute("INSERT INTO device_updates (device_id, type, ref, ts_ms) VALUES (" +
                  std::to_string(a.device.id) + ", 'install.updated', '{}', " +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()) +
                  ")");
    ASSERT_TRUE(run_awaitable(
        configs_->put(uid_, b.device.id, boost::json::object{{"installs", boost::json::array{}}}, "t", {})));

    boost::asio::io_context ioc;
    boost::asio::co_spawn(ioc, notifier_->run(), boost::asio::detached);
    auto guard = boost::asio::make_work_guard(ioc);
    std::thread io([&] { ioc.run(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // its first polls ran

    auto const at = wake_time_of(ioc, a.device.id, *slow);
    EXPECT_LT(at, std::chrono::seconds(5)) << "the older id was seen when it committed";
    notifier_->stop();
    guard.reset();
    ioc.stop();
    io.join();
}

}  // namespace
}  // namespace certctrl::test
