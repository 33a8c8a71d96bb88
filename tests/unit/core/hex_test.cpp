#include "certctrl/core/hex.hpp"

#include <gtest/gtest.h>

namespace certctrl {
namespace {

TEST(Hex, RoundTripsEveryByte) {
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all += static_cast<char>(i);
    }
    auto hex = hex_encode(all);
    EXPECT_EQ(hex.size(), 512u);
    EXPECT_EQ(hex.substr(0, 6), "000102");
    EXPECT_EQ(hex.substr(506), "fdfeff");
    EXPECT_EQ(hex_decode(hex), all);
}

TEST(Hex, DecodeAcceptsBothCasesAndRejectsTheRest) {
    EXPECT_EQ(hex_decode("ABcd"), std::string("\xab\xcd"));
    EXPECT_EQ(hex_decode(""), std::string());
    EXPECT_FALSE(hex_decode("abc"));
    EXPECT_FALSE(hex_decode("zz"));
    EXPECT_FALSE(hex_decode("0g"));
    EXPECT_EQ(hex_digit('7'), 7);
    EXPECT_EQ(hex_digit('F'), 15);
    EXPECT_EQ(hex_digit('/'), -1);
}

}  // namespace
}  // namespace certctrl
