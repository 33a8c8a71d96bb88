// The browser dashboard: what GET / and the assets answer (plain HTTP), and the whole flow in a real headless
// Chromium (tests/browser/dashboard.py, Selenium) against the real server.
#include "api_fixture.hpp"
#include "process.hpp"

#include <fstream>
#include <regex>
#include <sstream>

namespace certctrl::test {
namespace {

namespace json = boost::json;

class Dashboard : public api_fixture {
  protected:
    void start_dashboard() {
        // An unreachable CA is retried after 1 s, then given up: an order the page can watch run.
        start(json::object{
            {"rate_limits",
             {{"auth_per_minute", 1000},
              {"api_per_minute", 100000},
              {"issuance_per_hour", 1000},
              {"self_ca_issuance_per_hour", 1000}}},
            {"issuance", {{"poll_interval_ms", 100}, {"retry_base_seconds", 2}, {"max_attempts", 3}}}});
    }
    // The asset base of the page ("/ui/<version>").
    static std::string ui_base(std::string const& html) {
        std::smatch m;
        static std::regex const re(R"re(src="(/ui/[0-9a-f]{16})/app\.js")re");
        return std::regex_search(html, m, re) ? m[1].str() : "";
    }
};

TEST_F(Dashboard, TheRootServesThePageWithAStrictPolicyAndVersionedAssets) {
    start_dashboard();
    http_client c(server_->port());
    auto page = c.get("/");
    ASSERT_EQ(page.status, 200);
    EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(page.header("cache-control"), "no-cache");
    EXPECT_EQ(page.header("x-frame-options"), "DENY");
    auto const csp = page.header("content-security-policy");
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("style-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("http"), std::string::npos) << csp;  // no other origin
    // No inline script or style: every <script> has a src, no style attributes or elements.
    std::regex const inline_script(R"(<script(?![^>]*\bsrc=)[^>]*>)");
    EXPECT_FALSE(std::regex_search(page.body, inline_script)) << page.body;
    EXPECT_EQ(page.body.find("<style"), std::string::npos);
    EXPECT_EQ(page.body.find("style="), std::string::npos);
    auto const base = ui_base(page.body);
    ASSERT_FALSE(base.empty()) << page.body;

    for (auto const& [file, type] : {std::pair{"app.js", "text/javascript; charset=utf-8"},
                                     std::pair{"app.css", "text/css; charset=utf-8"},
                                     std::pair{"page_certificate.js", "text/javascript; charset=utf-8"},
                                     std::pair{"icon.svg", "image/svg+xml"}}) {
        auto a = c.get(base + "/" + file);
        EXPECT_EQ(a.status, 200) << file;
        EXPECT_EQ(a.header("content-type"), type) << file;
        EXPECT_EQ(a.header("cache-control"), "public, max-age=31536000, immutable") << file;
        EXPECT_EQ(a.header("x-content-type-options"), "nosniff") << file;
    }
    // The embedded file is the one in web/.
    EXPECT_EQ(c.get(base + "/app.js").body, read_file(CERTCTRL_SOURCE_DIR "/web/app.js"));
    // Another version, an unknown file, or a path out of the folder: 404 in JSON.
    auto old = c.get("/ui/0123456789abcdef/app.js");
    EXPECT_EQ(old.status, 404);
    EXPECT_EQ(code_of(old), 4001);
    EXPECT_EQ(c.get(base + "/nothing.js").status, 404);
    EXPECT_EQ(c.get(base + "/index.html").status, 404);
    EXPECT_EQ(c.get(base + "/..%2F..%2Fetc%2Fpasswd").status, 404);
    EXPECT_EQ(c.get(base + "/../app.js").status, 404);
    // The device approval page links back to the dashboard.
    EXPECT_NE(c.get("/device").body.find("href=\"/\""), std::string::npos);
}

TEST_F(Dashboard, AnApiOnlyInstanceServesNoDashboard) {
    start(json::object{{"server", {{"dashboard", false}}}});
    http_client c(server_->port());
    auto page = c.get("/");
    EXPECT_EQ(page.status, 404);
    EXPECT_EQ(code_of(page), 4001);
    EXPECT_EQ(c.get("/ui/" + std::string(16, '0') + "/app.js").status, 404);
    EXPECT_EQ(c.get("/device").status, 200);  // the device flow's page stays
    EXPECT_EQ(c.get("/health").status, 200);
}

TEST_F(Dashboard, ARealBrowserSignsInIssuesExportsCreatesAKeyApprovesADeviceAndSignsOut) {
    for (char const* tool : {"/usr/bin/chromium", "/usr/bin/chromedriver"}) {
        if (!std::filesystem::exists(tool)) {
            if (in_ci()) {
                FAIL() << tool << " is missing: scripts/test.sh installs chromium and chromium-driver";
            }
            GTEST_SKIP() << tool << " is missing; run through scripts/test.sh";
        }
    }
    start_dashboard();
    auto uid = add_user("browser@example.com");
    std::vector<std::string> args{"/usr/bin/python3",
                                  "-u",
                                  CERTCTRL_SOURCE_DIR "/tests/browser/dashboard.py",
                                  "--url",
                                  "http://127.0.0.1:" + std::to_string(server_->port()),
                                  "--email",
                                  "browser@example.com",
                                  "--password",
                                  "correct-horse-battery"};
    // scripts/screenshots.sh sets this to write docs/screenshots/ from the same run.
    if (char const* shots = std::getenv("CERTCTRL_SCREENSHOTS_DIR"); shots && *shots) {
        args.insert(args.end(), {"--screenshots", shots});
    }
    auto const log = dir_.path() / "browser.log";
    int const pid = spawn_process(args, {}, log);
    auto const code = wait_process(pid, std::chrono::seconds(240));
    std::string const out = read_file(log);
    ASSERT_EQ(code, std::optional<int>(0)) << out;
    // What the browser did is in the database: the certificate issued, the key made and revoked, the device
    // code approved, and the exports audited.
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM certificates WHERE user_id = " + std::to_string(uid) +
                                 " AND domain_name = 'www.dash.test' AND cert_pem IS NOT NULL"),
              1);
    EXPECT_EQ(schema_->query_int("SELECT COUNT(*) FROM api_keys"), 0);
    EXPECT_GE(schema_->query_int("SELECT COUNT(*) FROM audit_log WHERE action = 'key.release'"), 2);
    EXPECT_NE(out.find("ok - no console errors"), std::string::npos);
    std::cout << out;
}

}  // namespace
}  // namespace certctrl::test
