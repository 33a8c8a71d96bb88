// Integration: the device side against the real MariaDB: registration upserts, refresh-token families,
// the feed's kept window, and assignments that seal the data key and signal in the same transaction.
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/sodium.hpp"
#include "certctrl/db/migrations.hpp"
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"
#include "certctrl/service/devices.hpp"
#include "certctrl/service/issuance.hpp"
#include "certctrl/service/resources.hpp"
#include "run_awaitable.hpp"
// The repositories' own helper that writes a signal inside a transaction (internal to certctrl_repo_mysql).
#include "../../src/repo_mysql/signals.hpp"
#include "test_env.hpp"

#include <cppconn/connection.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <future>
#include <thread>

namespace certctrl::test {
namespace {

class DevicesRepo : public ::testing::Test {
  protected:
    void SetUp() override {
        CERTCTRL_REQUIRE_DB();
        schema_ = std::make_unique<test_schema>();
        pool_ = std::make_unique<db::pool>(schema_->db());
        ASSERT_TRUE(db::migrate(*pool_->connect()));
        keys_.add(1, std::string(32, '\x07'));
        auth_ = repo::make_mysql_device_auth_repository(*pool_);
        feed_ = repo::make_mysql_device_feed_repository(*pool_);
        certs_repo_ = repo::make_mysql_certificate_repository(*pool_);
        devices_repo_ = repo::make_mysql_device_repository(*pool_);
        certs_ = std::make_unique<service::certificate_service>(*certs_repo_, *devices_repo_, keys_);
        schema_->exec(
            "INSERT INTO users (email, password_hash, created_at, updated_at) VALUES ('d@x.y', 'h', 1, 1)");
        uid_ = schema_->query_int("SELECT id FROM users WHERE email = 'd@x.y'");
    }
    void TearDown() override { repo::set_kept_signals_per_device(1000); }

    repo::registered_device reg(std::string const& public_id, std::string const& pk,
                                std::string const& refresh_hash) {
        repo::device_registration r;
        r.user_id = uid_;
        r.device_public_id = public_id;
        r.name = "d";
        r.public_key = pk;
        auto out = run_awaitable(auth_->register_device(r, std::nullopt, refresh_hash, 4'000'000'000, 1000,
                                                        service::make_device_sealer(keys_)));
        EXPECT_TRUE(out) << (out ? "" : out.error().what);
        return out ? *out : repo::registered_device{};
    }

    std::unique_ptr<test_schema> schema_;
    std::unique_ptr<db::pool> pool_;
    crypto::keyring keys_;
    std::unique_ptr<repo::device_auth_repository> auth_;
    std::unique_ptr<repo::device_feed_repository> feed_;
    std::unique_ptr<repo::certificate_repository> certs_repo_;
    std::unique_ptr<repo::device_repository> devices_repo_;
    std::unique_ptr<service::certificate_service> certs_;
    std::int64_t uid_ = 0;
};

TEST_F(DevicesRepo, ReRegistrationUpdatesTheRowAndEndsEarlierSessions) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto first = reg("0f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("rt1"));
    auto second = reg("0f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("rt2"));
    EXPECT_TRUE(first.created);
    EXPECT_FALSE(second.created);
    EXPECT_EQ(first.device.id, second.device.id);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices"), 1);

    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM devices WHERE device_secret_hash = UNHEX('" +
                                 hex_encode(crypto::blake2b_256(pk)) + "')"),
              1);
    auto old_session = run_awaitable(auth_->check_session(uid_, first.device.id, first.session.session_id));
    ASSERT_FALSE(old_session);
    EXPECT_EQ(old_session.error().code, errc::unauthenticated);
    EXPECT_TRUE(run_awaitable(auth_->check_session(uid_, second.device.id, second.session.session_id)));
    auto other_user =
        run_awaitable(auth_->check_session(uid_ + 1, second.device.id, second.session.session_id));
    ASSERT_FALSE(other_user);
    EXPECT_EQ(other_user.error().code, errc::forbidden);
}

TEST_F(DevicesRepo, ARotatedRefreshTokenUsedAgainRevokesTheWholeFamily) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto d = reg("1f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("a"));
    auto foreign = run_awaitable(auth_->rotate(crypto::sha256("a"), crypto::sha256("x"), 4'000'000'000, 1999,
                                               0, "99999999-0b0a-4908-8706-050403020100"));
    ASSERT_FALSE(foreign);
    EXPECT_EQ(foreign.error().code, errc::unauthenticated) << "checked before anything changes";
    auto s1 = run_awaitable(auth_->rotate(crypto::sha256("a"), crypto::sha256("b"), 4'000'000'000, 2000, uid_,
                                          "1f0e0d0c-0b0a-4908-8706-050403020100"));
    ASSERT_TRUE(s1);
    EXPECT_EQ(s1->session_id, d.session.session_id);
    auto reuse =
        run_awaitable(auth_->rotate(crypto::sha256("a"), crypto::sha256("c"), 4'000'000'000, 2001, 0, ""));
    ASSERT_FALSE(reuse);
    EXPECT_EQ(reuse.error().code, errc::refresh_token_rotated);
    auto live =
        run_awaitable(auth_->rotate(crypto::sha256("b"), crypto::sha256("d"), 4'000'000'000, 2002, 0, ""));
    ASSERT_FALSE(live);
    EXPECT_EQ(live.error().code, errc::refresh_token_rotated) << "the family is revoked";
    EXPECT_FALSE(run_awaitable(auth_->check_session(uid_, d.device.id, d.session.session_id)));
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM device_refresh_tokens WHERE token_hash = UNHEX('" +
                                 hex_encode(crypto::sha256("c")) + "')"),
              0)
        << "no token was minted for the reuse";
}

TEST_F(DevicesRepo, TheFeedKeepsABoundedWindowPerDevice) {
    repo::set_kept_signals_per_device(3);
    auto [pk, sk] = crypto::x25519_keypair();
    auto d = reg("2f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("x"));
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(run_awaitable(feed_->put_install_config(uid_, d.device.id, boost::json::array{},
                                                            std::nullopt, "t", "n", 1000 + i)));
    }
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM device_updates WHERE device_id = " +
                                 std::to_string(d.device.id)),
              3);
    auto all = run_awaitable(feed_->updates(d.device.id, 0, 100));
    ASSERT_TRUE(all);
    ASSERT_EQ(all->signals.size(), 3u);
    EXPECT_EQ(all->signals.front().ref.at("version").as_int64(), 3);
    auto just_before = run_awaitable(feed_->updates(d.device.id, all->signals.front().id - 1, 100));
    ASSERT_TRUE(just_before) << "a cursor right before the kept window lost nothing";
    EXPECT_EQ(just_before->signals.size(), 3u);
    auto stale = run_awaitable(feed_->updates(d.device.id, all->signals.front().id - 2, 100));
    ASSERT_FALSE(stale);
    EXPECT_EQ(stale.error().code, errc::updates_cursor_expired);
    auto tail = run_awaitable(feed_->updates(d.device.id, all->signals.front().id, 100));
    ASSERT_TRUE(tail);
    EXPECT_EQ(tail->signals.size(), 2u);
    EXPECT_EQ(tail->cursor, all->signals.back().id);
    auto idle = run_awaitable(feed_->updates(d.device.id, all->signals.back().id, 100));
    ASSERT_TRUE(idle);
    EXPECT_TRUE(idle->signals.empty());
    EXPECT_EQ(idle->cursor, all->signals.back().id) << "an empty page keeps the cursor";
    auto ahead = run_awaitable(feed_->updates(d.device.id, all->signals.back().id + 1000, 100));
    ASSERT_FALSE(ahead) << "a cursor past the whole feed";
    EXPECT_EQ(ahead.error().code, errc::updates_cursor_expired);
    auto newest = run_awaitable(feed_->changed_since(-1));
    ASSERT_TRUE(newest);
    ASSERT_EQ(newest->size(), 1u);
    EXPECT_EQ(newest->front().first, all->signals.back().id);
    auto since = run_awaitable(feed_->changed_since(all->signals.front().id));
    ASSERT_TRUE(since);
    ASSERT_EQ(since->size(), 2u);
    EXPECT_EQ(since->at(1), std::make_pair(all->signals.back().id, d.device.id));
}

TEST_F(DevicesRepo, AnEmptyFirstPageHandsOutTheHighWaterMarkSoALaterTrimIsNoticed) {
    repo::set_kept_signals_per_device(2);
    auto [pk, sk] = crypto::x25519_keypair();
    auto busy = reg("7f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("h1"));
    auto quiet = reg("8f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("h2"));
    auto put = [&](std::int64_t device) {
        return run_awaitable(
            feed_->put_install_config(uid_, device, boost::json::array{}, std::nullopt, "t", "n", 1000));
    };
    ASSERT_TRUE(put(busy.device.id));
    auto first = run_awaitable(feed_->updates(quiet.device.id, 0, 10));
    ASSERT_TRUE(first);
    EXPECT_TRUE(first->signals.empty());
    EXPECT_GT(first->cursor, 0) << "not \"0\": a later trim must be detectable";
    for (int i = 0; i < 3; ++i)
        ASSERT_TRUE(put(quiet.device.id));
    auto back = run_awaitable(feed_->updates(quiet.device.id, first->cursor, 10));
    ASSERT_FALSE(back) << "the device missed a trimmed signal while away";
    EXPECT_EQ(back.error().code, errc::updates_cursor_expired);
}

TEST_F(DevicesRepo, AnAssignmentSealsTheDataKeyAndSignalsInOneTransaction) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto d = reg("3f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("y"));
    schema_->exec("INSERT INTO acme_accounts (user_id, name, provider, created_at, updated_at) VALUES (" +
                  std::to_string(uid_) + ", 'a', 'letsencrypt', 1, 1)");
    domain::certificate_input in;
    in.domain_name = "seal.example.com";
    in.sans = {"seal.example.com"};
    in.acct_id = schema_->query_int("SELECT MAX(id) FROM acme_accounts");
    auto cert = run_awaitable(certs_->create(uid_, in));
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
    auto m = run_awaitable(feed_->material(uid_, d.device.id, cert->id));
    ASSERT_TRUE(m && *m);
    ASSERT_TRUE((*m)->enc_data_key);
    EXPECT_EQ(crypto::open_sealed(*(*m)->enc_data_key, pk, sk), data_key);
    EXPECT_EQ((*m)->device_keyfp, crypto::blake2b_256(pk));
    auto signals = run_awaitable(feed_->updates(d.device.id, 0, 10));
    ASSERT_TRUE(signals);
    ASSERT_EQ(signals->signals.size(), 2u);
    EXPECT_EQ(signals->signals.at(0).type, "cert.updated");
    EXPECT_EQ(signals->signals.at(0).ref.at("wrap_ready"), true);
    EXPECT_EQ(signals->signals.at(1).type, "install.updated");
    auto cfg = run_awaitable(feed_->install_config_of(uid_, d.device.id));
    ASSERT_TRUE(cfg && *cfg);
    EXPECT_EQ((*cfg)->installs.at(0).at("ob_id").as_int64(), cert->id);

    // A new device key re-seals the assignment to it.
    auto [pk2, sk2] = crypto::x25519_keypair();
    reg("3f0e0d0c-0b0a-4908-8706-050403020100", pk2, crypto::sha256("z"));
    auto m2 = run_awaitable(feed_->material(uid_, d.device.id, cert->id));
    ASSERT_TRUE(m2 && *m2 && (*m2)->enc_data_key);
    EXPECT_EQ(crypto::open_sealed(*(*m2)->enc_data_key, pk2, sk2), data_key);
    EXPECT_FALSE(crypto::open_sealed(*(*m2)->enc_data_key, pk, sk));
}

TEST_F(DevicesRepo, ADevicesSignalsBecomeVisibleInIdOrder) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto a = reg("6f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("o1"));
    ASSERT_TRUE(run_awaitable(
        feed_->put_install_config(uid_, a.device.id, boost::json::array{}, std::nullopt, "t", "n", 1000)));
    auto first = run_awaitable(feed_->updates(a.device.id, 0, 10));
    ASSERT_TRUE(first);
    std::int64_t const cursor = first->cursor;  // the agent's steady state: a cursor, no lock on the read
    // Two writers of a's feed, as issuance success writes them (nothing else locks the device first): the
    // first holds id N uncommitted while the second writes N+1.
    auto slow = pool_->connect();
    slow->setAutoCommit(false);
    repo::mysql_detail::emit_signal(*slow, a.device.id, "cert.updated", {});
    auto later = std::async(std::launch::async, [&] {
        auto fast = pool_->connect();
        fast->setAutoCommit(false);
        repo::mysql_detail::emit_signal(*fast, a.device.id, "install.updated", {});
        fast->commit();
        return true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto meanwhile = run_awaitable(feed_->updates(a.device.id, cursor, 10));
    ASSERT_TRUE(meanwhile);
    EXPECT_TRUE(meanwhile->signals.empty())
        << "id N+1 must not be readable while N is uncommitted (a cursor would skip N)";
    slow->commit();
    ASSERT_TRUE(later.get());
    auto both = run_awaitable(feed_->updates(a.device.id, cursor, 10));
    ASSERT_TRUE(both);
    ASSERT_EQ(both->signals.size(), 2u);
    EXPECT_EQ(both->signals.at(0).type, "cert.updated");
    EXPECT_EQ(both->signals.at(1).type, "install.updated");
}

TEST_F(DevicesRepo, ALongPollWakesForASignalCommittedAfterANewerOne) {
    auto [pk, sk] = crypto::x25519_keypair();
    auto a = reg("4f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("a1"));
    auto b = reg("5f0e0d0c-0b0a-4908-8706-050403020100", pk, crypto::sha256("b1"));
    boost::asio::io_context ioc;
    service::update_notifier notifier(*feed_, std::chrono::milliseconds(50));
    boost::asio::co_spawn(ioc, notifier.run(), boost::asio::detached);
    auto guard = boost::asio::make_work_guard(ioc);
    std::thread io([&] { ioc.run(); });

    // A transaction for device a takes a feed id and stays open while device b's newer signal commits.
    auto slow = pool_->connect();
    slow->setAutoCommit(false);
    std::unique_ptr<sql::Statement>(slow->createStatement())
        ->execute("INSERT INTO device_updates (device_id, type, ref, ts_ms) VALUES (" +
                  std::to_string(a.device.id) + ", 'install.updated', '{}', 1)");
    ASSERT_TRUE(run_awaitable(
        feed_->put_install_config(uid_, b.device.id, boost::json::array{}, std::nullopt, "t", "n", 1000)));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the notifier has seen b's newer id

    auto w = notifier.watch(ioc.get_executor(), a.device.id);
    std::promise<std::chrono::steady_clock::time_point> woke;
    auto wait_task = [&]() -> boost::asio::awaitable<void> {
        auto op = notifier.wait(w, std::chrono::steady_clock::now() + std::chrono::seconds(10));
        co_await std::move(op);
        woke.set_value(std::chrono::steady_clock::now());
    };
    boost::asio::co_spawn(ioc, wait_task, boost::asio::detached);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto const committed = std::chrono::steady_clock::now();
    slow->commit();
    auto const at = woke.get_future().get();
    notifier.unwatch(w);
    EXPECT_LT(at - committed, std::chrono::seconds(1)) << "the older id was picked up when it committed";
    notifier.stop();
    guard.reset();
    ioc.stop();
    io.join();
}

}  // namespace
}  // namespace certctrl::test
