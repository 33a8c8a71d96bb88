#include "certctrl/http/client.hpp"

#include <gtest/gtest.h>

namespace certctrl::http {
namespace {

TEST(ClientAddress, XForwardedForOnlyFromTrustedProxies) {
    std::vector<std::string> trusted{"10.0.0.1", "10.0.0.2"};
    EXPECT_EQ(client_address("203.0.113.9", "198.51.100.1", trusted), "203.0.113.9");  // not a proxy: ignored
    EXPECT_EQ(client_address("10.0.0.1", "", trusted), "10.0.0.1");
    EXPECT_EQ(client_address("10.0.0.1", "198.51.100.1", trusted), "198.51.100.1");
    // Right-most untrusted entry wins: a client cannot spoof by prepending.
    EXPECT_EQ(client_address("10.0.0.1", "1.2.3.4, 198.51.100.1, 10.0.0.2", trusted), "198.51.100.1");
    EXPECT_EQ(client_address("10.0.0.1", "garbage", trusted), "10.0.0.1");
    EXPECT_EQ(client_address("10.0.0.1", " 2001:db8::1 ", trusted), "2001:db8::1");
    EXPECT_EQ(client_address("10.0.0.1", "10.0.0.2", trusted), "10.0.0.1");
}

TEST(Cookies, FindsTheNamedCookie) {
    EXPECT_EQ(cookie_value("a=1; cjj365=abc; b=2", "cjj365"), "abc");
    EXPECT_EQ(cookie_value("cjj365=abc", "cjj365"), "abc");
    EXPECT_EQ(cookie_value("xcjj365=abc", "cjj365"), std::nullopt);
    EXPECT_EQ(cookie_value("", "cjj365"), std::nullopt);
    EXPECT_EQ(cookie_value("a=1;cjj365= v ", "cjj365"), "v");
}

TEST(Query, DecodesValues) {
    EXPECT_EQ(query_value("offset=10&limit=5", "limit"), "5");
    EXPECT_EQ(query_value("name=a%20b", "name"), "a b");
    EXPECT_EQ(query_value("offset=10", "limit"), std::nullopt);
    EXPECT_EQ(query_value(std::string_view(), "limit"), std::nullopt)
        << "a null view (found by fuzz_http_request)";
    EXPECT_EQ(query_value("", "limit"), std::nullopt);
}

}  // namespace
}  // namespace certctrl::http
