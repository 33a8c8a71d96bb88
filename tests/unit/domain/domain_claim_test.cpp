#include "certctrl/domain/domain_claim.hpp"

#include <gtest/gtest.h>

namespace certctrl::domain {
namespace {

TEST(DomainClaim, WildcardAndBase) {
    EXPECT_TRUE(is_wildcard("*.example.com"));
    EXPECT_FALSE(is_wildcard("example.com"));
    EXPECT_FALSE(is_wildcard("*."));
    EXPECT_EQ(claim_base("*.example.com"), "example.com");
    EXPECT_EQ(claim_base("www.example.com"), "www.example.com");
}

TEST(DomainClaim, ReversedNamesMakeTheNamesBelowAPrefixRange) {
    EXPECT_EQ(reversed_name("www.example.com"), "com.example.www.");
    EXPECT_EQ(reversed_name("com"), "com.");
    // Below example.com: starts with its reversed form and is longer; a sibling that shares a prefix of
    // characters (but not of labels) is not below it.
    std::string const parent = reversed_name("example.com");
    EXPECT_EQ(reversed_name("a.b.example.com").rfind(parent, 0), 0u);
    EXPECT_NE(reversed_name("myexample.com").rfind(parent, 0), 0u);
    EXPECT_NE(reversed_name("example.community").rfind(parent, 0), 0u);
}

TEST(DomainClaim, AncestorsAreEveryProperParentShortestFirst) {
    EXPECT_EQ(reversed_ancestors("a.b.example.com"),
              (std::vector<std::string>{"com.", "com.example.", "com.example.b."}));
    EXPECT_TRUE(reversed_ancestors("com").empty());
}

TEST(DomainClaim, VerificationRecordIsUnderTheBaseName) {
    EXPECT_EQ(verification_record("*.example.com"), "_certctrl-challenge.example.com");
    EXPECT_EQ(verification_record("www.example.com"), "_certctrl-challenge.www.example.com");
}

}  // namespace
}  // namespace certctrl::domain
