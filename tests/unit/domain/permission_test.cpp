#include "certctrl/domain/permission.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace certctrl::domain {
namespace {

std::vector<permission> scopes(std::initializer_list<char const*> list) {
    std::vector<permission> out;
    for (auto const* s : list) {
        auto p = parse_scope(s);
        EXPECT_TRUE(p) << s << ": " << (p ? "" : p.error().what);
        if (p)
            out.push_back(*p);
    }
    return out;
}

TEST(Permission, ParsesTheScopeGrammar) {
    auto p = parse_scope("certificates:123[read,issue]");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->obtype, "certificates");
    EXPECT_EQ(p->obid, "123");
    EXPECT_EQ(p->actions, (std::vector<std::string>{"read", "issue"}));
    EXPECT_EQ(p->to_string(), "certificates:123[read,issue]");
    for (char const* bad :
         {"certificates", "certificates:*", "certificates:*[]", "nope:*[read]", "certificates:0[read]",
          "certificates:abc[read]", "certificates:*[fly]", "certificates*[read]", ":*[read]"}) {
        EXPECT_FALSE(parse_scope(bad)) << bad;
    }
}

TEST(Permission, ParsesTheJsonFormAndNamesTheBadField) {
    auto ok = parse_permissions(boost::json::parse(
        R"([{"obtype":"certificates","obid":"*","actions":["read","read"]},{"obtype":"devices","obid":7,"actions":["read"]}])"));
    ASSERT_TRUE(ok) << ok.error().what;
    ASSERT_EQ(ok->size(), 2u);
    EXPECT_EQ((*ok)[0].actions.size(), 1u);  // duplicates removed
    EXPECT_EQ((*ok)[1].obid, "7");
    struct bad_case {
        char const* json;
        char const* needle;
    };
    for (auto const& c : std::vector<bad_case>{
             {R"({})", "must be an array"},
             {R"([1])", "permissions[0] must be an object"},
             {R"([{"obid":"*","actions":["read"]}])", "permissions[0].obtype"},
             {R"([{"obtype":"certificates","actions":["read"]}])", "permissions[0].obid is required"},
             {R"([{"obtype":"certificates","obid":-3,"actions":["read"]}])", "permissions[0].obid"},
             {R"([{"obtype":"certificates","obid":"*","actions":"read"}])", "permissions[0].actions"},
             {R"([{"obtype":"certificates","obid":"*","actions":[]}])", "must not be empty"},
             {R"([{"obtype":"certificates","obid":"*","actions":["read"],"x":1}])", "unknown field 'x'"},
             {R"([{"obtype":"rockets","obid":"*","actions":["read"]}])", "unknown obtype 'rockets'"},
         }) {
        auto r = parse_permissions(boost::json::parse(c.json));
        ASSERT_FALSE(r) << c.json;
        EXPECT_EQ(r.error().code, errc::bad_request);
        EXPECT_NE(r.error().what.find(c.needle), std::string::npos) << r.error().what;
    }
}

TEST(Permission, AllowsMatchesTypeIdAndAction) {
    auto perms = scopes({"certificates:*[read]", "certificates:123[issue]", "devices:5[read]"});
    EXPECT_TRUE(allows(perms, "certificates", std::nullopt, "read"));
    EXPECT_TRUE(allows(perms, "certificates", 9, "read"));
    EXPECT_TRUE(allows(perms, "certificates", 123, "issue"));
    EXPECT_FALSE(allows(perms, "certificates", 124, "issue"));
    EXPECT_FALSE(allows(perms, "certificates", std::nullopt, "issue"));  // needs a "*" grant
    EXPECT_TRUE(allows(perms, "devices", 5, "read"));
    EXPECT_FALSE(allows(perms, "devices", std::nullopt, "read"));
    EXPECT_FALSE(allows(perms, "acme_accounts", 1, "read"));
    EXPECT_FALSE(allows({}, "certificates", 1, "read"));
}

TEST(Permission, CoversPreventsEscalation) {
    auto held = scopes({"apikeys:*[write]", "certificates:*[read]", "devices:5[read]"});
    EXPECT_TRUE(covers(held, scopes({"certificates:*[read]"})));
    EXPECT_TRUE(covers(held, scopes({"certificates:42[read]"})));
    EXPECT_TRUE(covers(held, scopes({"devices:5[read]"})));
    EXPECT_FALSE(covers(held, scopes({"devices:*[read]"})));
    EXPECT_FALSE(covers(held, scopes({"certificates:*[read,issue]"})));
    EXPECT_FALSE(covers(held, scopes({"audit:*[read]"})));
    EXPECT_TRUE(covers(held, {}));
}

}  // namespace
}  // namespace certctrl::domain

namespace certctrl::domain {
namespace {

TEST(Grantable, OnlyActionsSomeRouteEnforcesCanBeGranted) {
    auto scope = [](char const* s) { return *parse_scope(s); };
    EXPECT_TRUE(
        check_grantable({scope("certificates:*[read,write,issue,assign,export]"), scope("devices:7[exec]"),
                         scope("ForDeviceAuthenticate:*[authenticate,validate,revoke]"),
                         scope("ForInstallConfigUpdate:*[update,exec]"), scope("domains:*[read,write]")}));
    for (auto const* s : {"certificates:*[delete]", "certificates:*[update]", "audit:*[write]",
                          "devices:*[issue]", "apikeys:*[export]", "ForInstallConfigUpdate:*[read]"}) {
        auto r = check_grantable({scope(s)});
        ASSERT_FALSE(r) << s;
        EXPECT_EQ(r.error().code, errc::bad_request);
        EXPECT_NE(r.error().what.find("means nothing"), std::string::npos) << r.error().what;
    }
}

}  // namespace
}  // namespace certctrl::domain

namespace certctrl::domain {
namespace {

// Agent contract 2.2: an older page version shows `certs.read`-style scopes; they are the current ones.
TEST(Permissions, LegacyScopesAreAcceptedUnderTheirCurrentNames) {
    auto p = parse_scope("certs.read");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->to_string(), "certificates:*[read]");
    auto several = parse_scope("certs.read,issue");
    ASSERT_TRUE(several);
    EXPECT_EQ(several->to_string(), "certificates:*[read,issue]");
    EXPECT_EQ(parse_scope("devices.write")->to_string(), "devices:*[write]");
    EXPECT_EQ(parse_scope("acme.read")->to_string(), "acme_accounts:*[read]");
    EXPECT_FALSE(parse_scope("rockets.read")) << "unknown obtype";
    EXPECT_FALSE(parse_scope("certs.fly")) << "unknown action";
    EXPECT_FALSE(parse_scope("certs.")) << "no action";

    auto mixed = parse_permissions(boost::json::parse(
        R"(["certs.read", "devices:7[write]", {"obtype":"certs","obid":"*","actions":["issue"]}])"));
    ASSERT_TRUE(mixed) << mixed.error().what;
    ASSERT_EQ(mixed->size(), 3u);
    EXPECT_EQ((*mixed)[0].to_string(), "certificates:*[read]");
    EXPECT_EQ((*mixed)[1].to_string(), "devices:7[write]");
    EXPECT_EQ((*mixed)[2].obtype, "certificates");
    EXPECT_TRUE(allows(*mixed, "certificates", 12, "read"));
    EXPECT_FALSE(parse_permissions(boost::json::parse(R"([42])")));
}

}  // namespace
}  // namespace certctrl::domain
