// Webhooks against the real MariaDB: the outbox commits with its change and not without it, concurrent
// senders never hold the same delivery, and certificate.deployed follows the agent's fetch and
// acknowledgement.
#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"
#include "certctrl/crypto/sodium.hpp"
#include "service_stack.hpp"

#include <boost/json/parse.hpp>

#include <mutex>
#include <set>
#include <thread>

namespace certctrl::test {
namespace {

namespace json = boost::json;

class WebhooksService : public ServiceStack {
  protected:
    void SetUp() override {
        ServiceStack::SetUp();
        if (IsSkipped() || HasFatalFailure()) {
            return;
        }
        hooks_ = std::make_unique<service::webhook_service>(repos_, *hook_events_, keys_, hooks_cfg_);
        uid_ = user("w@x.y");
    }
    std::int64_t subscribe(std::string const& events_json, std::int64_t uid = 0) {
        auto in = domain::parse_webhook_input(
            json::parse(R"({"url":"https://hooks.example/x","events":)" + events_json + "}").as_object(),
            true, false);
        EXPECT_TRUE(in);
        auto h = run_awaitable(hooks_->create(uid == 0 ? uid_ : uid, *in));
        EXPECT_TRUE(h) << (h ? "" : h.error().what);
        return h ? h->hook.id : 0;
    }
    std::int64_t events_of(std::string const& type) {
        return schema_->query_int("SELECT COUNT(*) FROM webhook_events WHERE type = '" + type + "'");
    }

    std::unique_ptr<service::webhook_service> hooks_;
    std::int64_t uid_ = 0;
};

TEST_F(WebhooksService, AnEventCommitsWithItsChangeAndNotWithoutIt) {
    auto hook = subscribe(R"(["certificate.deleted","certificate.issued"])");
    auto other = user("o@x.y");
    subscribe(R"(["*"])", other);  // another user's subscription hears nothing of this user
    auto cert = run_awaitable(certs_->create(uid_, cert_input(account(uid_), "gone.example.com")));
    ASSERT_TRUE(cert);

    // A unit that emits and then fails leaves nothing behind.
    auto failed = run_awaitable(repos_.db->transact([&](repo::work& w) -> result<bool> {
        EXPECT_EQ(hook_events_->emit_certificate(w, uid_, "certificate.issued", cert->id), 1u);
        return make_error(errc::conflict, "changed my mind");
    }));
    ASSERT_FALSE(failed);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM webhook_events"), 0);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM webhook_deliveries"), 0);

    // A delete that commits stores its event, with the record as it was, and one delivery.
    ASSERT_TRUE(run_awaitable(certs_->remove(uid_, cert->id)));
    EXPECT_EQ(events_of("certificate.deleted"), 1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM webhook_deliveries WHERE webhook_id = " +
                                 std::to_string(hook) + " AND status = 'PENDING'"),
              1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM webhook_deliveries"), 1);
    auto const payload = json::parse(schema_->query_text("SELECT payload FROM webhook_events")).as_object();
    EXPECT_EQ(payload.at("data").at("certificate").at("domain_name").as_string(), "gone.example.com");
    // A delete of what is not there emits nothing.
    EXPECT_FALSE(run_awaitable(certs_->remove(uid_, cert->id)));
    EXPECT_EQ(events_of("certificate.deleted"), 1);

    // A user without subscriptions stores no event at all.
    auto lone = user("lone@x.y");
    auto c2 = run_awaitable(certs_->create(lone, cert_input(account(lone), "lone.example.com")));
    ASSERT_TRUE(c2);
    ASSERT_TRUE(run_awaitable(certs_->remove(lone, c2->id)));
    EXPECT_EQ(events_of("certificate.deleted"), 1);
}

TEST_F(WebhooksService, ConcurrentSendersNeverHoldTheSameDelivery) {
    auto hook = subscribe(R"(["*"])");
    constexpr int n = 120;
    for (int i = 0; i < n; ++i) {
        ASSERT_TRUE(run_awaitable(hooks_->ping(uid_, hook)));
    }
    std::mutex mu;
    std::multiset<std::int64_t> claimed;
    auto sender = [&](std::string owner) {
        for (;;) {
            auto got = run_awaitable(hooks_->claim(7, {}, owner, 4102444800000));
            ASSERT_TRUE(got);
            if (got->empty()) {
                return;
            }
            for (auto const& d : *got) {
                EXPECT_EQ(d.attempt, 1);
                repo::delivery_outcome o;
                o.status = "SUCCESS";
                o.at = 1;
                auto done = run_awaitable(hooks_->finish(d.id, owner, d.attempt, o));
                ASSERT_TRUE(done);
                EXPECT_TRUE(*done);
                // Another sender's outcome for this attempt is refused, and so is a second one.
                auto foreign = run_awaitable(hooks_->finish(d.id, owner + "-other", d.attempt, o));
                ASSERT_TRUE(foreign);
                EXPECT_FALSE(*foreign);
                auto twice = run_awaitable(hooks_->finish(d.id, owner, d.attempt, o));
                ASSERT_TRUE(twice);
                EXPECT_FALSE(*twice);
                std::lock_guard lock(mu);
                claimed.insert(d.id);
            }
        }
    };
    std::thread a(sender, "a"), b(sender, "b"), c(sender, "c");
    a.join();
    b.join();
    c.join();
    EXPECT_EQ(claimed.size(), static_cast<std::size_t>(n));
    EXPECT_EQ(std::set<std::int64_t>(claimed.begin(), claimed.end()).size(), static_cast<std::size_t>(n))
        << "a delivery was claimed twice";
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'SUCCESS' AND "
                                 "attempts = 1"),
              n);
}

TEST_F(WebhooksService, AClaimLeavesOutTheUsersItIsToldToAndReleasingGivesTheAttemptBack) {
    auto busy = subscribe(R"(["*"])");
    auto other_user = user("q@x.y");
    auto quiet = subscribe(R"(["*"])", other_user);
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(run_awaitable(hooks_->ping(uid_, busy)));
    }
    ASSERT_TRUE(run_awaitable(hooks_->ping(other_user, quiet)));
    // Ordered by due time the busy user's five come first; excluding it reaches the other user's at once.
    auto got = run_awaitable(hooks_->claim(1, repo::claim_filter{{uid_}, {}}, "s", 4102444800000));
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), 1u);
    EXPECT_EQ(got->at(0).hook.user_id, other_user);
    auto mine = run_awaitable(hooks_->claim(2, {}, "s", 4102444800000));
    ASSERT_TRUE(mine);
    ASSERT_EQ(mine->size(), 2u);
    ASSERT_TRUE(run_awaitable(hooks_->release(*mine, "s")));
    EXPECT_EQ(
        schema_->query_int("SELECT COUNT(*) FROM webhook_deliveries WHERE attempts = 0 AND lease_owner IS "
                           "NULL AND status = 'PENDING'"),
        5);
}

TEST_F(WebhooksService, ADeviceThatFetchedAndAcknowledgedHasDeployedTheCertificate) {
    subscribe(R"(["certificate.deployed"])");
    auto [pk, sk] = crypto::x25519_keypair();
    auto d = register_device(uid_, "3f0e0d0c-0b0a-4908-8706-050403020111", pk);
    auto cert = run_awaitable(certs_->create(uid_, cert_input(account(uid_), "deploy.example.com")));
    ASSERT_TRUE(cert);
    auto const cid = std::to_string(cert->id);
    std::string const data_key = crypto::random_bytes(32);
    auto w = keys_.wrap(data_key, service::issuance_service::data_key_context(cert->id));
    schema_->exec(
        "UPDATE certificates SET enc_privkey = 'x', serial_number = '0abc', not_after = 4102444800, "
        "enc_nonce = UNHEX('" +
        hex_encode(std::string(12, 'n')) + "'), enc_tag = UNHEX('" + hex_encode(std::string(16, 't')) +
        "') WHERE id = " + cid);
    schema_->exec("INSERT INTO certificate_master_wrapped VALUES (" + cid + ", 1, UNHEX('" +
                  hex_encode(w.box.ciphertext) + "'), UNHEX('" + hex_encode(w.box.nonce) + "'), UNHEX('" +
                  hex_encode(w.box.tag) + "'))");
    ASSERT_TRUE(run_awaitable(certs_->assign(uid_, cert->id, d.device.id)));

    auto first = run_awaitable(devices_->updates(d.device.id, "", 100, 0));
    ASSERT_TRUE(first);
    ASSERT_FALSE(first->signals.empty());
    // Acknowledging without having fetched the materials deploys nothing.
    ASSERT_TRUE(run_awaitable(devices_->updates(d.device.id, first->cursor, 100, 0)));
    EXPECT_EQ(events_of("certificate.deployed"), 0);

    ASSERT_TRUE(run_awaitable(devices_->deploy_materials(uid_, d.device.id, cert->id)));
    EXPECT_EQ(events_of("certificate.deployed"), 0) << "a fetch alone is not a deployment";
    // The next acknowledgement past what was recorded (a WebSocket updates.ack here) confirms it.
    ASSERT_TRUE(run_awaitable(devices_->note_received(d.device.id, std::stoll(first->cursor) + 1)));
    EXPECT_EQ(events_of("certificate.deployed"), 1);
    auto const payload =
        json::parse(
            schema_->query_text("SELECT payload FROM webhook_events WHERE type = 'certificate.deployed'"))
            .as_object();
    EXPECT_EQ(payload.at("data").at("serial_number").as_string(), "0abc");
    EXPECT_EQ(payload.at("data").at("device").at("id").as_int64(), d.device.id);
    EXPECT_EQ(payload.at("data").at("certificate").at("id").as_int64(), cert->id);

    // Fetching the same serial again and acknowledging again: no second event. A deploy hook saying so
    // neither.
    ASSERT_TRUE(run_awaitable(devices_->deploy_materials(uid_, d.device.id, cert->id)));
    ASSERT_TRUE(run_awaitable(devices_->note_received(d.device.id, std::stoll(first->cursor) + 2)));
    auto notify = [&](std::string const& events) {
        return run_awaitable(devices_->notify(
            d.device.id, json::parse(R"({"events":)" + events + "}").as_object(), "127.0.0.1"));
    };
    ASSERT_TRUE(notify(R"([{"type":"cert.deployed","cert_id":)" + cid + "}]"));
    EXPECT_EQ(events_of("certificate.deployed"), 1);

    // A renewed serial, reported by a deploy hook through notify: deployed again.
    schema_->exec("UPDATE certificates SET serial_number = '0def' WHERE id = " + cid);
    ASSERT_TRUE(notify(R"([{"type":"cert.deployed","cert_id":)" + cid + R"(,"serial":"0def"}])"));
    EXPECT_EQ(events_of("certificate.deployed"), 2);
    // An old serial, an unassigned or another user's certificate: nothing. A malformed event: 400.
    ASSERT_TRUE(notify(R"([{"type":"cert.deployed","cert_id":)" + cid + R"(,"serial":"0abc"}])"));
    auto other = user("z@x.y");
    auto theirs = run_awaitable(certs_->create(other, cert_input(account(other), "theirs.example.com")));
    ASSERT_TRUE(theirs);
    ASSERT_TRUE(notify(R"([{"type":"cert.deployed","cert_id":)" + std::to_string(theirs->id) + "}]"));
    EXPECT_EQ(events_of("certificate.deployed"), 2);
    auto bad = notify(R"([{"type":"cert.deployed","cert_id":"x"}])");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, errc::bad_request);
}

}  // namespace
}  // namespace certctrl::test
