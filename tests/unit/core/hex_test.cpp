#include "certctrl/core/hex.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace certctrl {
namespace {

TEST(LogText, ControlCharactersCannotStartAForgedLine) {
    EXPECT_EQ(escape_log_text("plain text: ok"), "plain text: ok");
    EXPECT_EQ(escape_log_text("bad\r\n2026-01-01 error [1] forged"), "bad\\r\\n2026-01-01 error [1] forged");
    EXPECT_EQ(escape_log_text(std::string("a\0b\x1b[31m\x7f", 9)), "a\\x00b\\x1b[31m\\x7f");
    EXPECT_EQ(escape_log_text("caf\xc3\xa9"), "caf\xc3\xa9") << "UTF-8 stays";
}

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

TEST(Base64, MatchesTheOverviewDocumentsCursor) {
    EXPECT_EQ(base64_encode(R"({"id":1000})"), "eyJpZCI6MTAwMH0=");
    EXPECT_EQ(base64_decode("eyJpZCI6MTAwMH0="), std::string(R"({"id":1000})"));
    EXPECT_EQ(base64_decode("eyJpZCI6MTAwMH0"), std::string(R"({"id":1000})"));  // unpadded
    for (std::string s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                                  std::string("\xff\xfe\x00", 3)}) {
        EXPECT_EQ(base64_decode(base64_encode(s)), s);
    }
    EXPECT_EQ(base64_decode("-_8="), std::string("\xfb\xff"));  // URL-safe alphabet
    EXPECT_FALSE(base64_decode("a"));
    EXPECT_FALSE(base64_decode("ab$d"));
}

}  // namespace
}  // namespace certctrl
