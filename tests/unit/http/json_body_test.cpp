#include "certctrl/http/json_body.hpp"

#include <gtest/gtest.h>

namespace certctrl::http {
namespace {

request make(std::string body, std::string content_type = "application/json") {
    request req{boost::beast::http::verb::post, "/x", 11};
    if (!content_type.empty()) {
        req.set(boost::beast::http::field::content_type, content_type);
    }
    req.body() = std::move(body);
    return req;
}

TEST(JsonBody, ParsesAnObject) {
    auto r = parse_json_object(make(R"({"email":"a@b.c","n":1})"));
    ASSERT_TRUE(r) << r.error().what;
    EXPECT_EQ(r->at("email").as_string(), "a@b.c");
    EXPECT_TRUE(parse_json_object(make("{}", "Application/JSON; charset=utf-8")));
}

TEST(JsonBody, WrongOrMissingContentTypeIs415) {
    for (std::string ct : {"", "text/plain", "application/jsonx", "application/x-www-form-urlencoded"}) {
        auto r = parse_json_object(make("{}", ct));
        ASSERT_FALSE(r) << ct;
        EXPECT_EQ(r.error().code, errc::unsupported_media_type) << ct;
    }
}

TEST(JsonBody, MalformedBodiesAre400WithAPreciseMessage) {
    auto r = parse_json_object(make(R"({"a": 1,})"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::bad_request);
    EXPECT_NE(r.error().what.find("Malformed JSON at byte"), std::string::npos) << r.error().what;
    std::vector<std::string> const bad = {
        "", "[]", "\"s\"", "42", "null", "{} {}", "{\"a\":", std::string(40, '[') + std::string(40, ']')};
    for (auto const& body : bad) {
        auto e = parse_json_object(make(body));
        ASSERT_FALSE(e) << body;
        EXPECT_EQ(e.error().code, errc::bad_request) << body;
    }
}

}  // namespace
}  // namespace certctrl::http
