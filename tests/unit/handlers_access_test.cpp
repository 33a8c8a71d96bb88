#include "certctrl/handlers/access.hpp"
#include "certctrl/handlers/routes.hpp"

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
            who = ra.rule.auth_limit   ? "anyone (auth budget)"
                  : ra.rule.own_budget ? "anyone (device-flow budget)"
                                       : "anyone";
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

namespace certctrl::handlers {
namespace {

// The rule an API key is held to on /apiv1/users/:user_id/...: the /me twin's, with its id renamed.
TEST(AccessTable, UsersRoutesHoldKeysToTheirMeTwinsScope) {
    auto rule_of = [](boost::beast::http::verb m, std::string const& pattern) -> std::optional<access> {
        for (auto const& r : route_table()) {
            if (r.method == m && r.pattern == pattern) {
                return key_rule_for(r, route_table());
            }
        }
        ADD_FAILURE() << "no route " << pattern;
        return std::nullopt;
    };
    using boost::beast::http::verb;
    auto get_cert = rule_of(verb::get, "/apiv1/users/:user_id/certificates/:cert_id");
    ASSERT_TRUE(get_cert);
    EXPECT_EQ(get_cert->obtype, "certificates");
    EXPECT_EQ(get_cert->action, "read");
    EXPECT_EQ(get_cert->id_param, "cert_id") << "renamed from :certificate_id";
    auto issue = rule_of(verb::post, "/apiv1/users/:user_id/certificates/:cert_id/issues");
    ASSERT_TRUE(issue);
    EXPECT_EQ(issue->action, "issue");
    auto list = rule_of(verb::get, "/apiv1/users/:user_id/certificates");
    ASSERT_TRUE(list);
    EXPECT_TRUE(list->id_param.empty());
    // Every users/ route of a resource a key can reach through /me has a twin.
    std::size_t twins = 0;
    for (auto const& r : route_table()) {
        if (r.pattern.rfind("/apiv1/users/:user_id/", 0) == 0 && key_rule_for(r, route_table())) {
            ++twins;
        }
    }
    EXPECT_GE(twins, 30u);
}

}  // namespace
}  // namespace certctrl::handlers
