// The credential cache's rules (the cross-instance behaviour is shown end to end in identity_test.cpp).
#include "certctrl/service/principal_cache.hpp"

#include <gtest/gtest.h>

namespace certctrl::test {
namespace {

// run() is not used here: the tests confirm epochs by hand.
class no_epoch final : public repo::auth_epoch_repository {
  public:
    repo::task<std::int64_t> current() override { throw std::logic_error("not used"); }
};

domain::api_key key(std::int64_t id) {
    domain::api_key k;
    k.id = id;
    return k;
}

using clock = service::principal_cache::clock;

TEST(PrincipalCache, UntrustedUntilAnEpochIsReadAndForASecondAfter) {
    no_epoch e;
    service::principal_cache c(e);
    auto const g = c.generation();
    c.put_key("a", {key(1), {}}, g);
    EXPECT_FALSE(c.key("a")) << "never confirmed: the database answers";
    auto const t0 = clock::now();
    c.confirm(5, t0);
    EXPECT_FALSE(c.key("a")) << "the first epoch read drops what was there";
    c.put_key("a", {key(1), {}}, c.generation());
    EXPECT_TRUE(c.key("a"));
    EXPECT_TRUE(c.trusted(t0 + std::chrono::milliseconds(999)));
    EXPECT_FALSE(c.trusted(t0 + std::chrono::milliseconds(1001))) << "a cache nobody confirmed is not used";
    c.confirm(5, t0 + std::chrono::milliseconds(250));
    EXPECT_TRUE(c.key("a")) << "the same epoch keeps the entries";
    c.confirm(6, clock::now());
    EXPECT_FALSE(c.key("a")) << "a moved epoch drops them";
    EXPECT_EQ(c.size(), 0u);
}

TEST(PrincipalCache, AnEntryReadBeforeARevocationIsNotCachedAfterIt) {
    no_epoch e;
    service::principal_cache c(e);
    c.confirm(1, clock::now());
    auto const before = c.generation();  // a request starts reading the key from the database...
    c.confirm(2, clock::now());          // ...the poller sees a revocation and drops the cache...
    c.put_session("h", {}, before);      // ...the request must not put back what it read before
    c.put_key("k", {key(1), {}}, before);
    EXPECT_FALSE(c.session("h"));
    EXPECT_FALSE(c.key("k"));
    c.put_key("k", {key(1), {}}, c.generation());
    EXPECT_TRUE(c.key("k"));
    c.drop_key("k");
    EXPECT_FALSE(c.key("k"));
    EXPECT_GE(c.hits(), 1u);
    EXPECT_GE(c.misses(), 3u);
}

TEST(PrincipalCache, AFullCacheStartsOver) {
    no_epoch e;
    service::principal_cache c(e, std::chrono::milliseconds(250), std::chrono::milliseconds(1000), 3);
    c.confirm(1, clock::now());
    for (int i = 0; i < 3; ++i) {
        c.put_key(std::to_string(i), {key(i), {}}, c.generation());
    }
    EXPECT_EQ(c.size(), 3u);
    c.put_session("s", {}, c.generation());
    EXPECT_EQ(c.size(), 1u) << "bounded memory";
}

}  // namespace
}  // namespace certctrl::test
