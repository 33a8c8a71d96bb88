#include "certctrl/crypto/random.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/device.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <regex>
#include <set>

namespace certctrl::domain {
namespace {

boost::json::object obj(std::string const& s) {
    return boost::json::parse(s).as_object();
}

TEST(DnsName, NormalisesCaseAndTrailingDot) {
    EXPECT_EQ(*normalize_dns_name("WWW.Example.COM.", "d"), "www.example.com");
    EXPECT_EQ(*normalize_dns_name("*.Example.com", "d"), "*.example.com");
    EXPECT_EQ(*normalize_dns_name("xn--bcher-kva.example", "d"), "xn--bcher-kva.example");
    EXPECT_EQ(*normalize_dns_name("a-b.c0.example", "d"), "a-b.c0.example");
    EXPECT_EQ(*normalize_dns_name("123.example.com", "d"), "123.example.com");  // numeric labels but a TLD
}

TEST(DnsName, RejectsWhatRfc1123AndTheWildcardRuleForbid) {
    struct bad {
        std::string name;
        char const* reason;
    };
    for (auto const& b : std::vector<bad>{
             {"", "empty"},
             {".", "empty"},
             {"com", "two labels"},
             {"*", "two labels"},
             {"*.com", "two labels after"},
             {"www.*.example.com", "left-most"},
             {"*.*.example.com", "left-most"},
             {"w*.example.com", "left-most"},
             {"a_b.example.com", "letters, digits"},
             {"a b.example.com", "letters, digits"},
             {"-a.example.com", "begin or end"},
             {"a-.example.com", "begin or end"},
             {std::string(64, 'a') + ".example.com", "63"},
             {std::string(60, 'a') + "." + std::string(60, 'b') + "." + std::string(60, 'c') + "." +
                  std::string(60, 'd') + "." + std::string(10, 'e'),
              "253"},
             {"b\xC3\xBC"
              "cher.example",
              "A-labels"},
             {"ab--cd.example.com", "reserved"},
             {"xn--.example.com", "begin or end"},
             {"10.0.0.1", "numeric"},
             {"a..example.com", "empty label"},
         }) {
        auto r = normalize_dns_name(b.name, "domain_name");
        ASSERT_FALSE(r) << b.name;
        EXPECT_EQ(r.error().code, errc::bad_request);
        EXPECT_NE(r.error().what.find(b.reason), std::string::npos) << b.name << ": " << r.error().what;
        EXPECT_NE(r.error().what.find("domain_name"), std::string::npos);
    }
    // Exactly 63 and 253 characters are fine.
    EXPECT_TRUE(normalize_dns_name(std::string(63, 'a') + ".example.com", "d"));
    std::string n253 = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') + "." +
                       std::string(61, 'd');
    ASSERT_EQ(n253.size(), 253u);
    EXPECT_TRUE(normalize_dns_name(n253, "d"));
}

TEST(CertificateInput, BothDialectsMeanTheSame) {
    auto a = parse_certificate_input(obj(
        R"({"domain_name":"example.com","sans":["www.example.com"],"acct_id":7,"action":"create","key_algorithm":"ECDSA","policy":"HYBRID"})"));
    auto b = parse_certificate_input(obj(
        R"({"domain":"example.com","sans":["www.example.com"],"acme_account_id":7,"dns_provider_id":3,"key_type":"ecdsa","auto_renew":true})"));
    ASSERT_TRUE(a) << a.error().what;
    ASSERT_TRUE(b) << b.error().what;
    EXPECT_EQ(a->domain_name, b->domain_name);
    EXPECT_EQ(a->sans, b->sans);
    EXPECT_EQ(a->acct_id, b->acct_id);
    EXPECT_EQ(a->key_algorithm, "ECDSA_P256");
    EXPECT_EQ(b->key_algorithm, "ECDSA_P256");
    EXPECT_EQ(a->policy, "HYBRID");
    EXPECT_FALSE(a->dns_provider_id);
    EXPECT_EQ(b->dns_provider_id, 3);
}

TEST(CertificateInput, SansAreDeduplicatedWithTheDomainFirst) {
    auto r = parse_certificate_input(obj(
        R"({"domain_name":"Example.com","sans":["b.example.com","EXAMPLE.com.","b.example.com","a.example.com"],"acct_id":1})"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->sans, (std::vector<std::string>{"example.com", "b.example.com", "a.example.com"}));
}

TEST(CertificateInput, KeyAlgorithmsAndPolicies) {
    auto alg = [](std::string const& extra) {
        auto r = parse_certificate_input(obj(R"({"domain_name":"example.com","acct_id":1,)" + extra + "}"));
        return r ? r->key_algorithm : "error: " + r.error().what;
    };
    EXPECT_EQ(alg(R"("key_algorithm":"RSA")"), "RSA_2048");
    EXPECT_EQ(alg(R"("key_algorithm":"RSA","key_size":4096)"), "RSA_4096");
    EXPECT_EQ(alg(R"("key_type":"ecdsa","key_size":384)"), "ECDSA_P384");
    EXPECT_EQ(alg(R"("key_algorithm":"P-384")"), "ECDSA_P384");
    EXPECT_EQ(alg(R"("key_algorithm":"rsa_3072")"), "RSA_3072");
    EXPECT_NE(alg(R"("key_algorithm":"ED25519")").find("error"), std::string::npos);
    EXPECT_NE(alg(R"("key_algorithm":"RSA","key_size":8192)").find("2048, 3072 or 4096"), std::string::npos);
    auto policy = [](std::string const& p) {
        auto r = parse_certificate_input(
            obj(R"({"domain_name":"example.com","acct_id":1,"policy":")" + p + R"("})"));
        return r ? r->policy : std::string("error");
    };
    EXPECT_EQ(policy("master_only"), "MASTER_ONLY");
    EXPECT_EQ(policy("Device_Required"), "DEVICE_REQUIRED");
    EXPECT_EQ(policy("DEVICE_ONLY"), "error");  // only the three names exist
}

TEST(CertificateInput, AtMostOneHundredNames) {
    auto body = [](int n) {
        std::string sans = "[";
        for (int i = 0; i < n; ++i)
            sans += std::string(i ? "," : "") + "\"h" + std::to_string(i) + ".example.com\"";
        return obj(R"({"domain_name":"example.com","acct_id":1,"sans":)" + sans + "]}");
    };
    EXPECT_TRUE(parse_certificate_input(body(99)));
    auto over = parse_certificate_input(body(100));  // 101 names with the domain
    ASSERT_FALSE(over);
    EXPECT_NE(over.error().what.find("at most 100"), std::string::npos);
}

TEST(CaInput, AlgorithmsSubjectAndDefaults) {
    auto r = parse_ca_input(obj(R"({"common_name":"Root"})"));
    ASSERT_TRUE(r) << r.error().what;
    EXPECT_EQ(r->name, "Root");
    EXPECT_EQ(r->key_algorithm, "ECDSA_P256");
    EXPECT_EQ(r->valid_days, 3650);
    EXPECT_EQ(r->path_length, -1);
    EXPECT_EQ(r->key_usage, "keyCertSign,cRLSign");
    auto rsa = parse_ca_input(obj(
        R"({"name":"n","common_name":"R","algorithm":"RSA","key_size":4096,"country":"fr","path_length":1,"key_usage":"digitalSignature, keyCertSign"})"));
    ASSERT_TRUE(rsa) << rsa.error().what;
    EXPECT_EQ(rsa->key_algorithm, "RSA_4096");
    EXPECT_EQ(rsa->subject.country, "FR");
    EXPECT_EQ(rsa->path_length, 1);
    EXPECT_EQ(rsa->key_usage, "keyCertSign,digitalSignature");
    EXPECT_EQ(parse_ca_input(obj(R"({"common_name":"R","curve_name":"P-384"})"))->key_algorithm,
              "ECDSA_P384");
    EXPECT_FALSE(parse_ca_input(obj(R"({"common_name":"R","max_path_length":1,"path_length":2})")));
    EXPECT_FALSE(parse_ca_input(obj(R"({"common_name":")" + std::string(65, 'x') + R"("})")));
    auto parts = split_algorithm("RSA_3072");
    EXPECT_EQ(parts.family, "RSA");
    EXPECT_EQ(parts.key_size, 3072);
    EXPECT_EQ(split_algorithm("ECDSA_P384").curve_name, "secp384r1");
}

TEST(Device, InputAndUuids) {
    auto d = parse_device_input(obj(R"({"name":"web-1","description":"d","device_type":"nginx"})"));
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->device_public_id);
    EXPECT_FALSE(parse_device_input(obj(R"({"description":"no name"})")));
    EXPECT_FALSE(parse_device_input(obj(R"({"name":"x","device_public_id":"nope"})")));
    EXPECT_EQ(*normalize_uuid("6F9619FF-8B86-4011-B42D-00C04FC964FF"),
              "6f9619ff-8b86-4011-b42d-00c04fc964ff");
    EXPECT_FALSE(normalize_uuid("6f9619ff8b864011b42d00c04fc964ff"));
    EXPECT_FALSE(normalize_uuid("6f9619ff-8b86-4011-b42d-00c04fc964fg"));
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        auto u = crypto::uuid_v4();
        EXPECT_TRUE(std::regex_match(
            u, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
            << u;
        EXPECT_EQ(normalize_uuid(u), u);
        seen.insert(u);
    }
    EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace certctrl::domain
