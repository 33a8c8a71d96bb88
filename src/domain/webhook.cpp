#include "certctrl/domain/webhook.hpp"

#include "certctrl/core/ids.hpp"

#include "fields.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>

namespace certctrl::domain {

namespace {

using namespace fields;

constexpr std::size_t max_url = 2048;
constexpr std::size_t max_cert_ids = 100;

result<std::string> parse_url(boost::json::value const& v, bool allow_http) {
    if (!v.is_string() || v.get_string().empty()) {
        return bad("url", "url is required (an https:// URL)");
    }
    std::string const url(v.get_string());
    if (url.size() > max_url) {
        return bad("url", "url must be at most 2048 characters");
    }
    std::string const lowered = lower(url.substr(0, 8));
    std::size_t scheme_end = 0;
    if (lowered.rfind("https://", 0) == 0) {
        scheme_end = 8;
    } else if (allow_http && lowered.rfind("http://", 0) == 0) {
        scheme_end = 7;
    } else {
        return bad("url",
                   allow_http ? "url must be an http:// or https:// URL" : "url must be an https:// URL");
    }
    if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; })) {
        return bad("url", "url must not contain spaces or control characters");
    }
    std::string const authority = url.substr(scheme_end, url.find_first_of("/?#", scheme_end) - scheme_end);
    if (authority.empty() || authority.front() == ':') {
        return bad("url", "url needs a host");
    }
    if (authority.find('@') != std::string::npos) {
        // Credentials in the URL would be shown back on every read; receivers check the signature instead.
        return bad("url", "url must not carry a user name or password");
    }
    return url;
}

result<std::vector<std::string>> parse_events(boost::json::value const& v) {
    if (!v.is_array() || v.get_array().empty()) {
        return bad("events", "events must be a non-empty array of event types");
    }
    auto const& known = webhook_event_types();
    std::vector<std::string> out;
    for (auto const& e : v.get_array()) {
        if (!e.is_string()) {
            return bad("events", "events must be strings");
        }
        std::string const name(e.get_string());
        if (name == "*") {
            out.assign(known.begin(), known.end());
            return out;
        }
        if (std::find(known.begin(), known.end(), name) == known.end()) {
            std::string list;
            for (auto k : known) {
                list += (list.empty() ? "" : ", ") + std::string(k);
            }
            return bad("events",
                       "unknown event type '" + name.substr(0, 64) + "' (known: " + list + ", or *)");
        }
        if (std::find(out.begin(), out.end(), name) == out.end()) {
            out.push_back(name);
        }
    }
    return out;
}

result<std::optional<std::vector<std::int64_t>>> parse_cert_ids(boost::json::value const& v,
                                                                char const* field) {
    if (v.is_null()) {
        return std::optional<std::vector<std::int64_t>>{};
    }
    if (!v.is_array() || v.get_array().size() > max_cert_ids) {
        return bad(field, std::string(field) + " must be null or an array of at most 100 certificate ids");
    }
    std::vector<std::int64_t> ids;
    for (auto const& e : v.get_array()) {
        if (!e.is_int64() || e.get_int64() <= 0) {
            return bad(field, std::string(field) + " must hold positive integers");
        }
        if (std::find(ids.begin(), ids.end(), e.get_int64()) == ids.end()) {
            ids.push_back(e.get_int64());
        }
    }
    if (ids.empty()) {
        return bad(field, std::string(field) + " must not be empty (null: every certificate)");
    }
    return std::optional<std::vector<std::int64_t>>(std::move(ids));
}

}  // namespace

std::vector<std::string_view> const& webhook_event_types() {
    static std::vector<std::string_view> const v = {"certificate.issued",       "certificate.renewed",
                                                    "certificate.expiring",     "certificate.deployed",
                                                    "certificate.issue_failed", "certificate.deleted"};
    return v;
}

bool webhook::wants(std::string_view type, std::optional<std::int64_t> cert_id) const {
    if (std::find(events.begin(), events.end(), type) == events.end()) {
        return false;
    }
    if (!cert_ids) {
        return true;
    }
    return cert_id && std::find(cert_ids->begin(), cert_ids->end(), *cert_id) != cert_ids->end();
}

result<webhook_input> parse_webhook_input(boost::json::object const& body, bool create, bool allow_http) {
    static std::vector<std::string_view> const members = {"url",      "events",  "certificate_ids",
                                                          "cert_ids", "enabled", "description"};
    for (auto const& kv : body) {
        if (std::find(members.begin(), members.end(), kv.key()) == members.end()) {
            std::string const k(kv.key().substr(0, 64));
            return bad(k, "unknown member '" + k + "'");
        }
    }
    webhook_input in;
    if (auto const* v = body.if_contains("url")) {
        CERTCTRL_TRY(url, parse_url(*v, allow_http));
        in.url = url;
    } else if (create) {
        return bad("url", "url is required (an https:// URL)");
    }
    if (auto const* v = body.if_contains("events")) {
        CERTCTRL_TRY(events, parse_events(*v));
        in.events = events;
    } else if (create) {
        return bad("events", "events is required (event types, or [\"*\"])");
    }
    if (body.contains("certificate_ids") && body.contains("cert_ids")) {
        return bad("cert_ids", "send certificate_ids or cert_ids, not both");
    }
    for (char const* field : {"certificate_ids", "cert_ids"}) {
        if (auto const* v = body.if_contains(field)) {
            CERTCTRL_TRY(ids, parse_cert_ids(*v, field));
            in.cert_ids = ids;
        }
    }
    if (auto const* v = body.if_contains("enabled"); v && !v->is_null()) {
        if (!v->is_bool()) {
            return bad("enabled", "enabled must be true or false");
        }
        in.enabled = v->get_bool();
    }
    CERTCTRL_TRY(description, get_string(body, "description", 255));
    in.description = description;
    return in;
}

boost::json::object webhook_certificate_record(certificate const& c, std::int64_t now) {
    boost::json::array sans;
    boost::json::array identifiers;
    for (auto const& s : c.sans) {
        sans.emplace_back(s);
        identifiers.emplace_back(boost::json::object{{"type", "dns"}, {"value", s}});
    }
    boost::json::array fallbacks;
    for (auto id : c.fallback_acct_ids) {
        fallbacks.emplace_back(id);
    }
    boost::json::value dns_provider = nullptr;
    if (c.dns_provider_id) {
        dns_provider = *c.dns_provider_id;
    }
    char const* status = !c.has_certificate                      ? "pending"
                         : c.not_after != 0 && c.not_after < now ? "expired"
                                                                 : "active";
    return boost::json::object{{"id", c.id},
                               {"user_id", c.user_id},
                               {"public_id", c.public_id},
                               {"domain_name", c.domain_name},
                               {"domain", c.domain_name},
                               {"sans", std::move(sans)},
                               {"acct_id", c.acct_id},
                               {"acme_account_id", c.acct_id},
                               {"fallback_acct_ids", std::move(fallbacks)},
                               {"dns_provider_id", dns_provider},
                               {"key_algorithm", c.key_algorithm},
                               {"key_dist_policy", c.key_dist_policy},
                               {"server_decrypt_export", c.server_decrypt_export},
                               {"auto_renew", c.auto_renew},
                               {"client_auth", c.client_auth},
                               {"challenge", c.challenge.empty() ? "auto" : c.challenge},
                               {"status", status},
                               {"serial_number", c.serial_number},
                               {"self_signed", c.self_signed},
                               {"verified", c.verified},
                               {"organization", c.organization},
                               {"organizational_unit", c.organizational_unit},
                               {"country", c.country},
                               {"state", c.state},
                               {"locality", c.locality},
                               {"not_before", c.not_before},
                               {"not_after", c.not_after},
                               {"has_private_key", c.has_key},
                               {"dhparam", ""},
                               {"orders", boost::json::object{{"identifiers", std::move(identifiers)}}},
                               {"created_at", c.created_at},
                               {"updated_at", c.updated_at}};
}

std::string webhook_payload(std::string const& event_id, std::string const& type, std::int64_t at,
                            boost::json::object data) {
    return boost::json::serialize(boost::json::object{
        {"id", event_id}, {"type", type}, {"timestamp", rfc3339_utc(at)}, {"data", std::move(data)}});
}

}  // namespace certctrl::domain
