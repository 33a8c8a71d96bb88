// docs/openapi.json against the routes the server registers: every guarded route is in the access table
// (add_guarded refuses others), and the public ones are listed here.
#include "certctrl/handlers/access.hpp"
#include "certctrl/handlers/health.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace certctrl::handlers {
namespace {

std::string read_doc() {
    std::ifstream in(CERTCTRL_SOURCE_DIR "/docs/openapi.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// "/apiv1/users/:user_id/x/{name}" -> "/apiv1/users/{user_id}/x/{name}"
std::string openapi_path(std::string const& pattern) {
    return std::regex_replace(pattern, std::regex(":(\\w+)"), "{$1}");
}

std::set<std::string> registered_operations() {
    std::set<std::string> out = {
        "get /health",       "get /ready", "get /metrics",
        "get /openapi.json", "get /",      "get /ui/{version}/{file}"};  // the dashboard (dashboard.cpp)
    for (auto const& ra : access_table()) {
        out.insert(lower(std::string(boost::beast::http::to_string(ra.method))) + " " +
                   openapi_path(ra.pattern));
    }
    return out;
}

void collect_refs(boost::json::value const& v, std::vector<std::string>& refs) {
    if (v.is_object()) {
        for (auto const& kv : v.get_object()) {
            if (kv.key() == "$ref" && kv.value().is_string())
                refs.emplace_back(kv.value().get_string());
            else
                collect_refs(kv.value(), refs);
        }
    } else if (v.is_array()) {
        for (auto const& e : v.get_array())
            collect_refs(e, refs);
    }
}

TEST(OpenApi, ServedDocumentIsTheOneInDocs) {
    std::string const doc = read_doc();
    ASSERT_FALSE(doc.empty());
    EXPECT_EQ(openapi_document(), doc) << "rebuild: docs/openapi.json is embedded at build time";
}

TEST(OpenApi, EveryRouteIsDocumentedAndEveryDocumentedRouteExists) {
    auto doc = boost::json::parse(read_doc()).as_object();
    EXPECT_EQ(std::string(doc.at("openapi").as_string()).substr(0, 2), "3.");
    std::set<std::string> documented;
    for (auto const& [path, item] : doc.at("paths").as_object()) {
        for (auto const& [method, op] : item.as_object()) {
            if (method == "parameters")
                continue;
            documented.insert(std::string(method) + " " + std::string(path));
            EXPECT_TRUE(op.as_object().contains("responses")) << method << " " << path;
            EXPECT_TRUE(op.as_object().contains("summary")) << method << " " << path;
        }
    }
    auto const registered = registered_operations();
    for (auto const& r : registered)
        EXPECT_TRUE(documented.contains(r)) << "docs/openapi.json lacks " << r;
    for (auto const& d : documented)
        EXPECT_TRUE(registered.contains(d)) << "docs/openapi.json names a route that does not exist: " << d;
}

TEST(OpenApi, PathParametersAreDeclaredAndRefsResolve) {
    auto doc = boost::json::parse(read_doc()).as_object();
    for (auto const& [path, item] : doc.at("paths").as_object()) {
        std::set<std::string> declared;
        if (auto const* ps = item.as_object().if_contains("parameters")) {
            for (auto const& p : ps->as_array())
                if (p.as_object().contains("in") && p.at("in") == "path")
                    declared.insert(std::string(p.at("name").as_string()));
        }
        std::string const p(path);
        static std::regex const param("\\{(\\w+)\\}");
        for (std::sregex_iterator it(p.begin(), p.end(), param), end; it != end; ++it) {
            EXPECT_TRUE(declared.contains((*it)[1].str())) << path << " does not declare " << (*it)[1].str();
        }
    }
    std::vector<std::string> refs;
    collect_refs(doc, refs);
    EXPECT_GT(refs.size(), 50u);
    for (auto const& ref : refs) {
        ASSERT_EQ(ref.rfind("#/components/", 0), 0u) << ref;
        std::string rest = ref.substr(13);
        auto slash = rest.find('/');
        ASSERT_NE(slash, std::string::npos) << ref;
        auto const* section = doc.at("components").as_object().if_contains(rest.substr(0, slash));
        ASSERT_NE(section, nullptr) << ref;
        EXPECT_TRUE(section->as_object().contains(rest.substr(slash + 1))) << "unresolved " << ref;
    }
}

}  // namespace
}  // namespace certctrl::handlers
