#pragma once
// The services of the issuance resources and the device side over a fresh schema of the real MariaDB, wired
// as the server wires them (integration tests).

#include "certctrl/db/migrations.hpp"
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"
#include "certctrl/service/devices.hpp"
#include "certctrl/service/issuance.hpp"
#include "certctrl/service/resources.hpp"
#include "run_awaitable.hpp"
#include "test_env.hpp"

#include <cppconn/connection.h>
#include <gtest/gtest.h>
#include <boost/asio/thread_pool.hpp>

#include <memory>

namespace certctrl::test {

class ServiceStack : public ::testing::Test {
  protected:
    void SetUp() override {
        CERTCTRL_REQUIRE_DB();
        schema_ = std::make_unique<test_schema>();
        pool_ = std::make_unique<db::pool>(schema_->db());
        ASSERT_TRUE(db::migrate(*pool_->connect()));
        keys_.add(1, std::string(32, '\x07'));
        repos_ = repo::make_mysql_repositories(*pool_);
        signals_ = std::make_unique<service::device_signals>(repos_, 1000);
        wraps_ = std::make_unique<service::device_keys>(repos_, *signals_, keys_);
        configs_ = std::make_unique<service::install_config_service>(repos_, *signals_);
        cas_ = std::make_unique<service::ca_service>(repos_, *signals_, keys_, cpu_);
        hook_events_ = std::make_unique<service::webhook_events>(repos_, hooks_cfg_);
        certs_ = std::make_unique<service::certificate_service>(repos_, *signals_, *wraps_, *configs_,
                                                                *hook_events_);
        config::devices_config dcfg;
        auth_ = std::make_unique<service::device_auth_service>(repos_, *wraps_, keys_, dcfg, "http://x");
        notifier_ = std::make_unique<service::update_notifier>(repos_, std::chrono::milliseconds(50));
        devices_ = std::make_unique<service::device_service>(repos_, *signals_, keys_, *notifier_, dcfg,
                                                             *hook_events_);
    }

    /// A user row; returns its id.
    std::int64_t user(std::string const& email) {
        schema_->exec("INSERT INTO users (email, password_hash, created_at, updated_at) VALUES ('" + email +
                      "', 'h', 1, 1)");
        return schema_->query_int("SELECT id FROM users WHERE email = '" + email + "'");
    }
    /// Registers (or, as a caller that may write the device, registers again) a device of `uid`.
    service::device_auth_service::registration_answer register_device(std::int64_t uid,
                                                                      std::string const& public_id,
                                                                      std::string const& pk) {
        repo::device_registration r;
        r.user_id = uid;
        r.device_public_id = public_id;
        r.name = "d";
        r.public_key = pk;
        service::device_auth_service::rekey_proof owner;
        owner.may_write_device = [](std::int64_t) { return true; };
        auto out = run_awaitable(auth_->register_device(r, std::nullopt, owner));
        EXPECT_TRUE(out) << (out ? "" : out.error().what);
        return out ? *out : service::device_auth_service::registration_answer{};
    }
    /// An ACME account row of the user; returns its id.
    std::int64_t account(std::int64_t uid) {
        schema_->exec("INSERT INTO acme_accounts (user_id, name, provider, created_at, updated_at) VALUES (" +
                      std::to_string(uid) + ", 'a', 'letsencrypt', 1, 1)");
        return schema_->query_int("SELECT MAX(id) FROM acme_accounts");
    }
    domain::certificate_input cert_input(std::int64_t acct, std::string const& domain) {
        domain::certificate_input in;
        in.domain_name = domain;
        in.sans = {domain};
        in.acct_id = acct;
        return in;
    }
    /// Runs `fn(work&)` as a read on the pool and returns its value (the test fails on an error).
    template <class Fn>
    auto in_read(Fn fn) {
        auto r = run_awaitable(repos_.db->read(std::move(fn)));
        EXPECT_TRUE(r) << (r ? "" : r.error().what + " " + r.error().detail);
        return std::move(*r);
    }

    std::unique_ptr<test_schema> schema_;
    std::unique_ptr<db::pool> pool_;
    crypto::keyring keys_;
    boost::asio::thread_pool cpu_{1};
    repo::repositories repos_;
    std::unique_ptr<service::device_signals> signals_;
    config::webhooks_config hooks_cfg_;
    std::unique_ptr<service::webhook_events> hook_events_;
    std::unique_ptr<service::device_keys> wraps_;
    std::unique_ptr<service::install_config_service> configs_;
    std::unique_ptr<service::ca_service> cas_;
    std::unique_ptr<service::certificate_service> certs_;
    std::unique_ptr<service::device_auth_service> auth_;
    std::unique_ptr<service::update_notifier> notifier_;
    std::unique_ptr<service::device_service> devices_;
};

}  // namespace certctrl::test
