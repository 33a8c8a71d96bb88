// Certificate list items kept as text: found only at the row version they were rendered from, status written
// from the time of the list, bounded, and a slower reader of an older row never replaces a newer text.
#include "certctrl/handlers/rendered_certificates.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

namespace certctrl::test {
namespace {

using handlers::rendered_certificates;
namespace json = boost::json;

domain::certificate cert(std::int64_t id, std::int64_t version) {
    domain::certificate c;
    c.id = id;
    c.user_id = 7;
    c.public_id = "0b7e8d9c-0000-4000-8000-00000000000" + std::to_string(id % 10);
    c.domain_name = "a\"quoted\".example.com";
    c.sans = {c.domain_name, "www.example.com"};
    c.acct_id = 3;
    c.serial_number = "0A1B";
    c.organization = "Org\\with\nescapes";
    c.not_before = 1000;
    c.not_after = 2000;
    c.has_certificate = true;
    c.has_key = true;
    c.created_at = 900;
    c.updated_at = 1000 + version;
    c.row_version = version;
    return c;
}

json::object written(rendered_certificates::item const& it, std::int64_t now) {
    std::string out;
    rendered_certificates::append(out, it, now);
    return json::parse(out).as_object();
}

TEST(RenderedCertificates, FoundOnlyAtTheRowVersionItWasRenderedFrom) {
    rendered_certificates cache;
    EXPECT_EQ(cache.find({1, 0}), nullptr);
    cache.put(cert(1, 4));
    EXPECT_NE(cache.find({1, 4}), nullptr);
    EXPECT_EQ(cache.find({1, 5}), nullptr) << "a changed row is rendered again";
    EXPECT_EQ(cache.find({1, 3}), nullptr);
    EXPECT_EQ(cache.find({2, 4}), nullptr);
    EXPECT_EQ(cache.hits(), 1u);
    EXPECT_EQ(cache.misses(), 4u);
}

TEST(RenderedCertificates, TheItemIsTheRecordWithItsStatusAsOfTheList) {
    rendered_certificates cache;
    auto c = cert(1, 1);
    auto it = cache.put(c);
    auto active = written(*it, 1500);
    EXPECT_EQ(active.at("status"), "active");
    EXPECT_EQ(written(*it, 2001).at("status"), "expired") << "the same text expires with time";
    EXPECT_EQ(active.at("id"), 1);
    EXPECT_EQ(active.at("domain_name").as_string(), c.domain_name);
    EXPECT_EQ(active.at("domain").as_string(), c.domain_name);
    EXPECT_EQ(active.at("organization").as_string(), c.organization);
    EXPECT_EQ(active.at("sans").as_array().size(), 2u);
    EXPECT_EQ(active.at("serial_number"), "0A1B");
    EXPECT_EQ(active.at("has_private_key"), true);
    EXPECT_EQ(active.at("updated_at"), 1001);
    EXPECT_FALSE(active.contains("cert")) << "no PEM texts in a list item";

    auto pending = cert(2, 1);
    pending.has_certificate = false;
    EXPECT_EQ(written(*cache.put(pending), 1500).at("status"), "pending");
}

TEST(RenderedCertificates, AnOlderRowReadLateDoesNotReplaceANewerText) {
    rendered_certificates cache;
    cache.put(cert(1, 5));
    auto late = cache.put(cert(1, 4));
    EXPECT_EQ(late->row_version, 4) << "the late reader still gets what it read";
    EXPECT_NE(cache.find({1, 5}), nullptr);
    EXPECT_EQ(cache.find({1, 4}), nullptr);
}

TEST(RenderedCertificates, HoldsAtMostItsCapacity) {
    rendered_certificates cache(3);
    for (std::int64_t id = 1; id <= 10; ++id) {
        auto held = cache.put(cert(id, 1));
        EXPECT_LE(cache.size(), 3u);
        EXPECT_NE(cache.find({id, 1}), nullptr) << "the item just put is there";
        EXPECT_EQ(held->row_version, 1);
    }
}

}  // namespace
}  // namespace certctrl::test
