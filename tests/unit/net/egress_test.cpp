#include "certctrl/net/egress.hpp"

#include <gtest/gtest.h>

namespace certctrl::net {
namespace {

TEST(Egress, InternalRangesAreRefusedAndPublicOnesAllowed) {
    auto p = egress_policy::make({});
    ASSERT_TRUE(p);
    for (auto const* a : {"127.0.0.1",
                          "10.1.2.3",
                          "172.16.0.1",
                          "172.31.255.255",
                          "192.168.1.1",
                          "169.254.169.254",
                          "100.64.0.1",
                          "0.0.0.0",
                          "224.0.0.1",
                          "255.255.255.255",
                          "::1",
                          "::",
                          "fe80::1",
                          "fd00:ec2::254",
                          "fc00::1",
                          "ff02::1",
                          "::ffff:127.0.0.1",
                          "::ffff:10.0.0.1",
                          "64:ff9b::a9fe:a9fe",
                          "2002:7f00:1::1",
                          "::127.0.0.1"}) {
        EXPECT_TRUE(p->refuses(std::string(a))) << a;
    }
    for (auto const* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "2606:4700:4700::1111",
                          "2a00:1450:4001::200e", "::ffff:8.8.8.8", "64:ff9b::808:808"}) {
        EXPECT_FALSE(p->refuses(std::string(a))) << a;
    }
    EXPECT_EQ(*p->refuses(std::string("169.254.169.254")), "link-local");
    EXPECT_EQ(*p->refuses(std::string("::ffff:127.0.0.1")), "loopback");
    EXPECT_TRUE(p->refuses(std::string("not-an-address")));
}

TEST(Egress, TheAllowListOpensExactlyItsRanges) {
    auto p = egress_policy::make({"127.0.0.0/8", "10.1.2.3", "fd00::/64"});
    ASSERT_TRUE(p);
    EXPECT_FALSE(p->refuses(std::string("127.0.0.1")));
    EXPECT_FALSE(p->refuses(std::string("::ffff:127.9.9.9")));
    EXPECT_FALSE(p->refuses(std::string("10.1.2.3")));
    EXPECT_TRUE(p->refuses(std::string("10.1.2.4")));
    EXPECT_FALSE(p->refuses(std::string("fd00::5")));
    EXPECT_TRUE(p->refuses(std::string("fd00:0:0:1::5")));
    EXPECT_TRUE(p->refuses(std::string("::1")));
    for (auto const* bad : {"10.0.0.0/33", "nonsense", "10.0.0.0/", "::1/129", "10.0.0.0/x"}) {
        EXPECT_FALSE(egress_policy::make({bad})) << bad;
    }
    EXPECT_FALSE(egress_policy::open().refuses(std::string("127.0.0.1")));
    auto off = egress_policy::make({}, false);
    ASSERT_TRUE(off);
    EXPECT_FALSE(off->refuses(std::string("169.254.169.254")));
}

}  // namespace
}  // namespace certctrl::net
