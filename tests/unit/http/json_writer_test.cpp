#include "certctrl/http/json_writer.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <random>

namespace certctrl::test {
namespace {

std::string written(std::string_view s) {
    std::string out;
    http::json_writer(out).value(s);
    return out;
}

TEST(JsonWriter, StringsRoundTripThroughAJsonParser) {
    // Every ASCII byte, alone and at each position of an 8-byte word (the fast path's unit), plus UTF-8.
    for (int c = 0; c < 128; ++c) {
        for (std::size_t at = 0; at < 17; ++at) {
            std::string s(17, 'a');
            s[at] = static_cast<char>(c);
            auto const out = written(s);
            auto const back = boost::json::parse(out);
            ASSERT_TRUE(back.is_string()) << c << " at " << at;
            EXPECT_EQ(std::string(back.get_string()), s) << "byte " << c << " at " << at;
        }
    }
    std::mt19937 rng(7);
    std::string const pieces[] = {"a", "\"", "\\", "\n", "\x01", "\x1f", " ", "é", "€", "😀", "abcdefgh", "/"};
    for (int round = 0; round < 2000; ++round) {
        std::string s;
        for (int n = static_cast<int>(rng() % 40); n > 0; --n) {
            s += pieces[rng() % std::size(pieces)];
        }
        EXPECT_EQ(std::string(boost::json::parse(written(s)).get_string()), s);
    }
    EXPECT_EQ(written("a\"b\\c\nd\x01"), R"("a\"b\\c\nd\u0001")");
}

TEST(JsonWriter, ObjectsAndArraysAreSeparatedAndBalanced) {
    std::string out;
    http::json_writer w(out);
    w.begin_object().member("n", std::int64_t{-5}).member("b", true).key("none").null();
    w.key("list").begin_array().value("x").value(std::int64_t{1}).begin_object().end_object().end_array();
    w.member("opt", std::optional<std::int64_t>{}).key("raw").raw(R"({"k":[1]})");
    w.member("v", boost::json::value(boost::json::array{1, "two"})).end_object();
    EXPECT_EQ(
        boost::json::parse(out),
        boost::json::parse(R"({"n":-5,"b":true,"none":null,"list":["x",1,{}],"opt":null,"raw":{"k":[1]},)"
                           R"("v":[1,"two"]})"));
}

}  // namespace
}  // namespace certctrl::test
