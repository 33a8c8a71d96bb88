#include "certctrl/http/router.hpp"

#include <gtest/gtest.h>

namespace certctrl::http {
namespace {

using boost::beast::http::verb;
using kind = router::match::kind;

router::handler noop() {
    return [](request_context&) -> awaitable<response> { co_return response{}; };
}

router make_router() {
    router r;
    r.add(verb::get, "/health", noop());
    r.add(verb::get, "/apiv1/users/:user_id/certificates", noop());
    r.add(verb::post, "/apiv1/users/:user_id/certificates", noop());
    r.add(verb::get, "/apiv1/users/:user_id/certificates/:cert_id", noop());
    r.add(verb::delete_, "/apiv1/users/:user_id/certificates/:cert_id", noop());
    r.add(verb::get, "/apiv1/me/devices/:device_id", noop());
    r.add(verb::get, "/apiv1/me/devices/by-public-id/{device_public_id}", noop());
    return r;
}

TEST(Router, MatchesLiteralRoute) {
    auto r = make_router();
    auto m = r.find(verb::get, "/health");
    EXPECT_EQ(m.outcome, kind::found);
    EXPECT_EQ(m.pattern, "/health");
    EXPECT_NE(m.target, nullptr);
}

TEST(Router, BindsTypedIds) {
    auto r = make_router();
    auto m = r.find(verb::get, "/apiv1/users/42/certificates/9223372036854775807");
    ASSERT_EQ(m.outcome, kind::found);
    EXPECT_EQ(m.pattern, "/apiv1/users/:user_id/certificates/:cert_id");
    EXPECT_EQ(m.params.id("user_id"), 42);
    EXPECT_EQ(m.params.id("cert_id"), 9223372036854775807LL);
    EXPECT_FALSE(m.params.id("device_id"));
}

TEST(Router, RejectsIdsThatAreNotPositive64BitIntegers) {
    auto r = make_router();
    for (std::string bad : {"0", "-1", "abc", "1.5", "9223372036854775808", "99999999999999999999", "+5",
                            "1e3", " 1", "0x10"}) {
        auto m = r.find(verb::get, "/apiv1/users/" + bad + "/certificates");
        EXPECT_EQ(m.outcome, kind::bad_param) << bad;
        EXPECT_EQ(m.error.code, errc::bad_request) << bad;
        EXPECT_NE(m.error.what.find("user_id"), std::string::npos) << m.error.what;
    }
}

TEST(Router, LiteralSegmentWinsOverParameter) {
    auto r = make_router();
    auto m = r.find(verb::get, "/apiv1/me/devices/by-public-id/0b7c8f5e-1111-4222-8333-944445555666");
    ASSERT_EQ(m.outcome, kind::found);
    EXPECT_EQ(m.pattern, "/apiv1/me/devices/by-public-id/{device_public_id}");
    EXPECT_EQ(m.params.str("device_public_id"), "0b7c8f5e-1111-4222-8333-944445555666");
    auto m2 = r.find(verb::get, "/apiv1/me/devices/17");
    ASSERT_EQ(m2.outcome, kind::found);
    EXPECT_EQ(m2.params.id("device_id"), 17);
}

TEST(Router, DecodesSegmentsAfterSplitting) {
    auto r = make_router();
    auto m = r.find(verb::get, "/apiv1/me/devices/by-public-id/a%2Fb%20c");
    ASSERT_EQ(m.outcome, kind::found);
    EXPECT_EQ(m.params.str("device_public_id"), "a/b c");
    auto id = r.find(verb::get, "/apiv1/users/%34%32/certificates");
    ASSERT_EQ(id.outcome, kind::found);
    EXPECT_EQ(id.params.id("user_id"), 42);
    EXPECT_EQ(r.find(verb::get, "/hea%6Cth").outcome, kind::found);
    EXPECT_EQ(r.find(verb::get, "/health%").outcome, kind::not_found);
    EXPECT_EQ(r.find(verb::get, "/health%4").outcome, kind::not_found);
    EXPECT_EQ(r.find(verb::get, "/health%zz").outcome, kind::not_found);
}

TEST(Router, UnknownPathsAreNotFound) {
    auto r = make_router();
    for (std::string p : {"/", "/nope", "/health/", "/healthz", "/apiv1/users/1",
                          "/apiv1/users/1/certificates/2/x", "/apiv1/users//certificates", "", "health"}) {
        EXPECT_EQ(r.find(verb::get, p).outcome, kind::not_found) << p;
    }
}

TEST(Router, WrongMethodListsAllowedMethods) {
    auto r = make_router();
    auto m = r.find(verb::put, "/apiv1/users/1/certificates/2");
    ASSERT_EQ(m.outcome, kind::method_not_allowed);
    EXPECT_EQ(m.allow, "DELETE, GET");
    auto h = r.find(verb::post, "/health");
    ASSERT_EQ(h.outcome, kind::method_not_allowed);
    EXPECT_EQ(h.allow, "GET");
}

TEST(Router, RejectsBadRegistrations) {
    router r;
    r.add(verb::get, "/a/:id", noop());
    EXPECT_THROW(r.add(verb::get, "/a/:id", noop()), std::invalid_argument);
    EXPECT_THROW(r.add(verb::get, "/a/:other", noop()), std::invalid_argument);
    EXPECT_THROW(r.add(verb::get, "/a/{id}", noop()), std::invalid_argument);
    EXPECT_THROW(r.add(verb::get, "no-slash", noop()), std::invalid_argument);
    EXPECT_THROW(r.add(verb::get, "/a//b", noop()), std::invalid_argument);
    EXPECT_THROW(r.add(verb::get, "/a/:", noop()), std::invalid_argument);
    EXPECT_NO_THROW(r.add(verb::post, "/a/:id", noop()));
    EXPECT_EQ(r.routes().size(), 2u);
}

TEST(ParsePositiveId, Boundaries) {
    EXPECT_EQ(parse_positive_id("1"), 1);
    EXPECT_EQ(parse_positive_id("9223372036854775807"), 9223372036854775807LL);
    EXPECT_FALSE(parse_positive_id("9223372036854775808"));
    EXPECT_FALSE(parse_positive_id("0"));
    EXPECT_FALSE(parse_positive_id(""));
    EXPECT_FALSE(parse_positive_id("12a"));
}

}  // namespace
}  // namespace certctrl::http
