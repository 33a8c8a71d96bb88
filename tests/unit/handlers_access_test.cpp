#include "certctrl/handlers/access.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace certctrl::handlers {
namespace {

std::string row_of(route_access const& ra) {
    std::string who;
    std::string scope = "-";
    switch (ra.rule.kind) {
        case access::who::anyone:
            who = ra.rule.auth_limit ? "anyone (auth budget)" : "anyone";
            break;
        case access::who::user_path:
            who = "session of :user_id or admin";
            if (!ra.rule.alt_obtype.empty()) {
                who += ", or API key of :user_id";
                scope = "`" + ra.rule.alt_obtype + ":*[" + ra.rule.alt_action + "]`";
            }
            break;
        case access::who::device:
            who = ra.rule.token_in_query ? "device access token (header or ?token=)" : "device access token";
            break;
        case access::who::admin:
            who = "admin session";
            break;
        case access::who::me:
            who = "session or API key";
            if (ra.rule.id_in_body) {
                scope = "`" + ra.rule.obtype + ":<id from the key or the body>[" +
                        (ra.rule.action == "*" ? std::string("any action") : ra.rule.action) + "]`";
            } else {
                scope = "`" + ra.rule.obtype + ":" +
                        (ra.rule.id_param.empty() ? "*" : "<" + ra.rule.id_param + ">") + "[" +
                        ra.rule.action + "]`";
            }
            if (!ra.rule.alt_obtype.empty()) {  // checked against the same path id
                scope += " or `" + ra.rule.alt_obtype + ":" +
                         (ra.rule.id_param.empty() ? "*" : "<" + ra.rule.id_param + ">") + "[" +
                         ra.rule.alt_action + "]`";
            }
            break;
    }
    return "| " + std::string(boost::beast::http::to_string(ra.method)) + " | `" + ra.pattern + "` | " + who +
           " | " + scope + " |";
}

TEST(AccessTable, DocsScopesMdListsEveryRowExactly) {
    std::ifstream in(CERTCTRL_SOURCE_DIR "/docs/scopes.md");
    ASSERT_TRUE(in);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string const doc = ss.str();
    std::size_t rows_in_doc = 0;
    for (std::size_t pos = 0; (pos = doc.find("\n| ", pos)) != std::string::npos; ++pos) {
        ++rows_in_doc;
    }
    for (auto const& ra : access_table()) {
        EXPECT_NE(doc.find(row_of(ra)), std::string::npos) << "docs/scopes.md lacks: " << row_of(ra);
    }
    EXPECT_EQ(rows_in_doc, access_table().size() + 1)
        << "header row plus one row per route";  // "|---|" excluded
}

TEST(AccessTable, EveryMeRouteNamesAScopeAndEveryUserRouteHasTheUserId) {
    for (auto const& ra : access_table()) {
        if (ra.rule.kind == access::who::me) {
            EXPECT_EQ(ra.pattern.rfind("/apiv1/me/", 0), 0u) << ra.pattern;
            EXPECT_FALSE(ra.rule.obtype.empty()) << ra.pattern;
            EXPECT_FALSE(ra.rule.action.empty()) << ra.pattern;
            if (!ra.rule.id_param.empty()) {
                EXPECT_NE(ra.pattern.find(":" + ra.rule.id_param), std::string::npos) << ra.pattern;
            }
        }
        if (ra.rule.kind == access::who::user_path) {
            EXPECT_EQ(ra.pattern.rfind("/apiv1/users/:user_id/", 0), 0u) << ra.pattern;
        }
        EXPECT_EQ(ra.rule.kind == access::who::admin, ra.pattern.rfind("/apiv1/admin/", 0) == 0)
            << ra.pattern;
    }
}

}  // namespace
}  // namespace certctrl::handlers
