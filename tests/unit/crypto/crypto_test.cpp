#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/password.hpp"
#include "certctrl/crypto/random.hpp"

#include <gtest/gtest.h>

#include <set>

namespace certctrl::crypto {
namespace {

TEST(Random, BytesAndBase62) {
    EXPECT_EQ(random_bytes(32).size(), 32u);
    EXPECT_NE(random_bytes(32), random_bytes(32));
    auto s = random_base62(1000);
    EXPECT_EQ(s.size(), 1000u);
    std::set<char> seen(s.begin(), s.end());
    for (char c : seen) {
        EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c))) << c;
    }
    EXPECT_GT(seen.size(), 55u);  // all 62 symbols are used (1000 draws)
}

TEST(Sha256, KnownVector) {
    EXPECT_EQ(hex_encode(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
    EXPECT_FALSE(constant_time_equal("abc", "abd"));
    EXPECT_FALSE(constant_time_equal("abc", "abcd"));
}

TEST(Password, Argon2idRoundTrip) {
    auto h = hash_password("correct horse battery staple");
    EXPECT_EQ(h.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u) << h;
    EXPECT_EQ(h.find("correct"), std::string::npos);
    EXPECT_TRUE(verify_password(h, "correct horse battery staple"));
    EXPECT_FALSE(verify_password(h, "correct horse battery stapl"));
    EXPECT_NE(hash_password("same"), hash_password("same"));  // salted
    EXPECT_FALSE(verify_password("$2y$10$notargon", "x"));
    EXPECT_FALSE(verify_password("", "x"));
}

}  // namespace
}  // namespace certctrl::crypto
