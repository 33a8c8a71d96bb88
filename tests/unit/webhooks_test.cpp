// Webhooks without a database: Standard Webhooks signatures, the retry schedule, subscription bodies, and the
// certificate record of a payload (the API's record, member for member).
#include "certctrl/service/webhooks.hpp"
#include "certctrl/domain/webhook.hpp"
#include "certctrl/handlers/rendered_certificates.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace certctrl {
namespace {

namespace json = boost::json;

// The test vector published with the Standard Webhooks specification.
TEST(WebhookSigning, MatchesTheStandardWebhooksVector) {
    auto sig = service::sign_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                     1614265330, R"({"test": 2432232314})");
    ASSERT_TRUE(sig);
    EXPECT_EQ(*sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    // Any other id, time, body or secret gives another signature.
    EXPECT_NE(*service::sign_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJel",
                                     1614265330, R"({"test": 2432232314})"),
              *sig);
    EXPECT_NE(*service::sign_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                     1614265331, R"({"test": 2432232314})"),
              *sig);
    EXPECT_NE(*service::sign_webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                     1614265330, R"({"test": 2432232315})"),
              *sig);
    EXPECT_FALSE(service::sign_webhook("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, "{}"));
    EXPECT_FALSE(service::sign_webhook("whsec_!!!", "m", 1, "{}"));
}

TEST(WebhookSigning, NewSecretsAreWhsecWith32RandomBytes) {
    auto a = service::new_webhook_secret();
    auto b = service::new_webhook_secret();
    EXPECT_EQ(a.rfind("whsec_", 0), 0u);
    EXPECT_EQ(a.size(), 6u + 44u);
    EXPECT_NE(a, b);
    EXPECT_TRUE(service::sign_webhook(a, "evt_x", 1, "{}"));
}

TEST(WebhookRetries, DoubleFromTheFirstDelayUpToTheCapWithJitter) {
    config::webhooks_config cfg;
    cfg.retry_initial_ms = 1000;
    cfg.retry_max_ms = 10000;
    EXPECT_EQ(service::webhook_retry_delay_ms(cfg, 1, 1.0), 1000);
    EXPECT_EQ(service::webhook_retry_delay_ms(cfg, 2, 1.0), 2000);
    EXPECT_EQ(service::webhook_retry_delay_ms(cfg, 4, 1.0), 8000);
    EXPECT_EQ(service::webhook_retry_delay_ms(cfg, 5, 1.0), 10000);
    EXPECT_EQ(service::webhook_retry_delay_ms(cfg, 500, 1.0), 10000);
    EXPECT_EQ(service::webhook_retry_delay_ms(cfg, 2, 0.5), 1000);
    EXPECT_EQ(service::webhook_retry_delay_ms(cfg, 2, 0.1), 1000) << "jitter is at least half the delay";
    // The default schedule reaches its hour cap after 11 attempts and a day holds about 33.
    config::webhooks_config def;
    std::int64_t total = 0;
    int attempts = 0;
    while (total < def.give_up_after_seconds * 1000LL) {
        total += service::webhook_retry_delay_ms(def, ++attempts, 1.0);
    }
    EXPECT_GT(attempts, 25);
    EXPECT_LT(attempts, 40);
}

TEST(WebhookInput, ParsesCreateAndPatchBodies) {
    auto ok = domain::parse_webhook_input(
        json::parse(R"({"url":"https://hooks.example.com/x?a=1","events":["certificate.issued",)"
                    R"("certificate.issued","certificate.expiring"],"cert_ids":[3,3,4],"enabled":false,)"
                    R"("description":"ops"})")
            .as_object(),
        true, false);
    ASSERT_TRUE(ok) << ok.error().what;
    EXPECT_EQ(*ok->url, "https://hooks.example.com/x?a=1");
    EXPECT_EQ(ok->events->size(), 2u);
    EXPECT_EQ(**ok->cert_ids, (std::vector<std::int64_t>{3, 4}));
    EXPECT_FALSE(*ok->enabled);

    auto all = domain::parse_webhook_input(
        json::parse(R"({"url":"https://h.example","events":["*"]})").as_object(), true, false);
    ASSERT_TRUE(all);
    EXPECT_EQ(all->events->size(), domain::webhook_event_types().size());

    auto patch =
        domain::parse_webhook_input(json::parse(R"({"certificate_ids":null})").as_object(), false, false);
    ASSERT_TRUE(patch);
    EXPECT_TRUE(patch->cert_ids && !*patch->cert_ids) << "null clears the filter";
    EXPECT_FALSE(patch->url);

    auto field_of = [](std::string const& body, bool create, bool allow_http = false) {
        auto r = domain::parse_webhook_input(json::parse(body).as_object(), create, allow_http);
        return r ? std::string("(accepted)") : std::string(r.error().params.at("field").as_string());
    };
    EXPECT_EQ(field_of(R"({"events":["*"]})", true), "url");
    EXPECT_EQ(field_of(R"({"url":"https://h.example"})", true), "events");
    EXPECT_EQ(field_of(R"({"url":"http://h.example","events":["*"]})", true), "url");
    EXPECT_EQ(field_of(R"({"url":"http://h.example","events":["*"]})", true, true), "(accepted)");
    EXPECT_EQ(field_of(R"({"url":"ftp://h.example","events":["*"]})", true, true), "url");
    EXPECT_EQ(field_of(R"({"url":"https://","events":["*"]})", true), "url");
    EXPECT_EQ(field_of(R"({"url":"https://:443/x","events":["*"]})", true), "url");
    EXPECT_EQ(field_of(R"({"url":"https://a:b@h.example","events":["*"]})", true), "url");
    EXPECT_EQ(field_of(R"({"url":"https://h.example/a b","events":["*"]})", true), "url");
    EXPECT_EQ(field_of(R"({"url":"https://h.example","events":"certificate.issued"})", true), "events");
    EXPECT_EQ(field_of(R"({"url":"https://h.example","events":["ping"]})", true), "events");
    EXPECT_EQ(field_of(R"({"url":"https://h.example","events":["*"],"cert_ids":[]})", true), "cert_ids");
    EXPECT_EQ(field_of(R"({"url":"https://h.example","events":["*"],"cert_ids":[-1]})", true), "cert_ids");
    EXPECT_EQ(field_of(R"({"cert_ids":[1],"certificate_ids":[1]})", false), "cert_ids");
    EXPECT_EQ(field_of(R"({"enabled":"yes"})", false), "enabled");
    EXPECT_EQ(field_of(R"({"secret":"whsec_mine"})", false), "secret");
    EXPECT_EQ(
        field_of(R"({"url":")" + std::string("https://h.example/") + std::string(2040, 'a') + R"("})", false),
        "url");
}

TEST(WebhookSubscription, WantsItsEventsAndCertificatesOnly) {
    domain::webhook h;
    h.events = {"certificate.issued"};
    EXPECT_TRUE(h.wants("certificate.issued", 7));
    EXPECT_FALSE(h.wants("certificate.renewed", 7));
    h.cert_ids = std::vector<std::int64_t>{7};
    EXPECT_TRUE(h.wants("certificate.issued", 7));
    EXPECT_FALSE(h.wants("certificate.issued", 8));
    EXPECT_FALSE(h.wants("certificate.issued", std::nullopt));
}

// The payload's record is the API's certificate record: the same members with the same values, so a change of
// one without the other fails here.
TEST(WebhookPayload, TheCertificateRecordIsTheApisRecord) {
    domain::certificate c;
    c.id = 42;
    c.user_id = 7;
    c.public_id = "0b6f1a2e-8c7d-4f7e-9a51-3c1d2e4f5a6b";
    c.domain_name = "example.com";
    c.sans = {"example.com", "www.example.com"};
    c.acct_id = 3;
    c.fallback_acct_ids = {4, 5};
    c.dns_provider_id = 9;
    c.serial_number = "0a1b";
    c.not_before = 1000;
    c.not_after = 4102444800;
    c.has_key = true;
    c.has_certificate = true;
    c.organization = "Org";
    c.country = "DE";
    c.challenge = "dns-01-delegated";
    c.created_at = 10;
    c.updated_at = 20;
    c.row_version = 3;
    handlers::rendered_certificates rendered;
    std::string api;
    handlers::rendered_certificates::append(api, *rendered.put(c), 2000);
    auto const expected = json::parse(api).as_object();
    auto const got = domain::webhook_certificate_record(c, 2000);
    EXPECT_EQ(json::value(got), json::value(expected)) << json::serialize(got) << "\n" << api;
    auto const payload = json::parse(domain::webhook_payload("evt_1", "certificate.issued", 0,
                                                             json::object{{"certificate", got}}))
                             .as_object();
    EXPECT_EQ(payload.at("id").as_string(), "evt_1");
    EXPECT_EQ(payload.at("timestamp").as_string(), "1970-01-01T00:00:00Z");
    EXPECT_EQ(payload.at("data").at("certificate").at("id").as_int64(), 42);
}

}  // namespace
}  // namespace certctrl
