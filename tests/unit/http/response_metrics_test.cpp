#include "certctrl/http/metrics.hpp"
#include "certctrl/http/response.hpp"
#include "certctrl/http/server.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace certctrl::http {
namespace {

TEST(Response, ErrorBodyHasAllFourMembers) {
    request req{boost::beast::http::verb::get, "/x", 11};
    auto res = json_error(req, make_error(errc::not_found, "Certificate not found", {{"id", 7}}));
    EXPECT_EQ(res.result_int(), 404u);
    EXPECT_EQ(res[boost::beast::http::field::content_type], "application/json");
    auto v = boost::json::parse(res.body());
    auto const& e = v.at("error");
    EXPECT_EQ(e.at("code").as_int64(), 4001);
    EXPECT_EQ(e.at("what").as_string(), "Certificate not found");
    EXPECT_EQ(e.at("key").as_string(), "NOT_FOUND");
    EXPECT_EQ(e.at("params").at("id").as_int64(), 7);
}

TEST(Response, RateLimitedCarriesRetryAfter) {
    request req{boost::beast::http::verb::get, "/x", 11};
    auto res = json_error(req, make_error(errc::rate_limited, "auth limit", {{"retry_after", 42}}));
    EXPECT_EQ(res.result_int(), 429u);
    EXPECT_EQ(res[boost::beast::http::field::retry_after], "42");
}

TEST(Response, DataEnvelope) {
    request req{boost::beast::http::verb::get, "/x", 11};
    auto res = json_data(req, boost::json::object{{"id", 1001}}, 201);
    EXPECT_EQ(res.result_int(), 201u);
    EXPECT_EQ(boost::json::parse(res.body()).at("data").at("id").as_int64(), 1001);
}

TEST(RequestId, EchoesValidIdsAndReplacesOthers) {
    request req{boost::beast::http::verb::get, "/x", 11};
    req.set("X-Request-Id", "abc-123_x.y:z");
    EXPECT_EQ(request_id_for(req), "abc-123_x.y:z");
    req.set("X-Request-Id", "bad id with spaces");
    auto generated = request_id_for(req);
    EXPECT_EQ(generated.size(), 32u);
    req.set("X-Request-Id", std::string(65, 'a'));
    EXPECT_EQ(request_id_for(req).size(), 32u);
    request none{boost::beast::http::verb::get, "/x", 11};
    EXPECT_NE(request_id_for(none), request_id_for(none));
}

TEST(Metrics, RendersCountersHistogramAndSources) {
    metrics m;
    m.record("/health", "GET", 200, std::chrono::microseconds(700));
    m.record("/health", "GET", 200, std::chrono::milliseconds(30));
    m.record("unmatched", "GET", 404, std::chrono::microseconds(100));
    m.connection_opened();
    m.add_source([](std::string& out) { out += "extra_gauge 3\n"; });
    auto text = m.render();
    EXPECT_NE(text.find("certctrl_http_requests_total{route=\"/health\",method=\"GET\",status=\"200\"} 2"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("certctrl_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.001\"} 1"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("certctrl_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.05\"} 2"),
              std::string::npos);
    EXPECT_NE(text.find("certctrl_http_request_duration_seconds_count{route=\"/health\"} 2"),
              std::string::npos);
    EXPECT_NE(text.find("certctrl_http_open_connections 1"), std::string::npos);
    EXPECT_NE(text.find("extra_gauge 3"), std::string::npos);
}

}  // namespace
}  // namespace certctrl::http
