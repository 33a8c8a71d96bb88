#include "certctrl/db/migrations.hpp"
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"
#include "certctrl/service/dns_providers.hpp"
#include "run_awaitable.hpp"
#include "test_env.hpp"

#include <cppconn/connection.h>
#include <gtest/gtest.h>

namespace certctrl::test {
namespace {

TEST(DnsProviderService, CredentialsOpenForTheOwnerOnly) {
    CERTCTRL_REQUIRE_DB();
    test_schema schema;
    db::pool pool(schema.db());
    ASSERT_TRUE(db::migrate(*pool.connect()));
    schema.exec(
        "INSERT INTO users (email, password_hash, created_at, updated_at) VALUES ('a@x.y', 'h', 1, 1)");
    auto uid = schema.query_int("SELECT id FROM users");
    crypto::keyring keys;
    keys.add(1, std::string(32, '\x07'));
    auto repo = repo::make_mysql_dns_provider_repository(pool);
    service::dns_provider_service svc(*repo, keys);
    domain::dns_provider_input in;
    in.name = "cf";
    in.kind = "cloudflare";
    in.settings = {{"zone_id", "z"}};
    in.credentials = {{"api_token", "tok-0123456789"}};
    auto created = run_awaitable(svc.create(uid, in));
    ASSERT_TRUE(created) << created.error().what;
    auto loaded = run_awaitable(svc.get(uid, created->id));
    ASSERT_TRUE(loaded);
    auto creds = svc.credentials(*loaded);
    ASSERT_TRUE(creds) << creds.error().detail;
    EXPECT_EQ(creds->at("api_token").as_string(), "tok-0123456789");
    // The same blob claimed by another user does not open (sealed with the owner as context).
    auto stolen = *loaded;
    stolen.user_id = uid + 1;
    EXPECT_FALSE(svc.credentials(stolen));
    // Nor with another master key.
    crypto::keyring other;
    other.add(1, std::string(32, '\x08'));
    service::dns_provider_service wrong(*repo, other);
    EXPECT_FALSE(wrong.credentials(*loaded));
    EXPECT_FALSE(run_awaitable(svc.get(uid + 1, created->id)));  // not visible to another user either

    // Bound to the row too: a second provider's blob copied onto the first does not open there.
    in.credentials = {{"api_token", "tok-of-the-second"}};
    auto second = run_awaitable(svc.create(uid, in));
    ASSERT_TRUE(second);
    auto swapped = *loaded;
    swapped.enc_credentials = run_awaitable(svc.get(uid, second->id))->enc_credentials;
    EXPECT_FALSE(svc.credentials(swapped)) << "another row's credentials opened";
    // A blob of an older release (bound to the user only) still opens.
    auto legacy = *loaded;
    legacy.enc_credentials =
        keys.seal(R"({"api_token":"old"})", service::dns_provider_service::legacy_seal_context(uid));
    auto old = svc.credentials(legacy);
    ASSERT_TRUE(old);
    EXPECT_EQ(old->at("api_token").as_string(), "old");
}

}  // namespace
}  // namespace certctrl::test
