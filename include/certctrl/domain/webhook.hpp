#pragma once
// Webhook subscriptions, the events they receive and their deliveries (issue 15).

#include "certctrl/core/error.hpp"
#include "certctrl/domain/certificate.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace certctrl::domain {

/// The event types a subscription may name, in the order the docs list them.
std::vector<std::string_view> const& webhook_event_types();

/// A subscription: where a user's certificate events are POSTed, signed with its secret.
struct webhook {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::string url;
    std::string description;
    std::vector<std::string> events;                    // a subset of webhook_event_types()
    std::optional<std::vector<std::int64_t>> cert_ids;  // only these certificates' events; none: every one
    bool enabled = true;
    std::string enc_secret;                             // sealed "whsec_..." text
    std::string enc_previous_secret;                    // "" when none
    std::optional<std::int64_t> previous_secret_until;  // the previous secret signs until then
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;

    /// True when the subscription wants `type` for certificate `cert_id` (enabled or not).
    bool wants(std::string_view type, std::optional<std::int64_t> cert_id) const;
};

/// A create or PATCH body, validated: the members present.
struct webhook_input {
    std::optional<std::string> url;
    std::optional<std::string> description;
    std::optional<std::vector<std::string>> events;
    std::optional<std::optional<std::vector<std::int64_t>>> cert_ids;  // set to null: every certificate
    std::optional<bool> enabled;
};

/// Parses `{url, events, certificate_ids|cert_ids?, enabled?, description?}`. `create`: url and events are
/// required. url: absolute https:// (http:// too when `allow_http`), no user info, at most 2048 characters;
/// events: non-empty, known types, "*" for all of them; at most 100 certificate ids. Unknown members are
/// refused. Errors: bad_request naming the field.
result<webhook_input> parse_webhook_input(boost::json::object const& body, bool create, bool allow_http);

/// One delivery of an event to a subscription, as its log shows it.
struct webhook_delivery {
    std::int64_t id = 0;
    std::int64_t webhook_id = 0;
    std::int64_t user_id = 0;
    std::string event_id;  // the event's public id (webhook-id header, payload id)
    std::string event_type;
    std::string status;  // PENDING | SUCCESS | FAILED
    std::int64_t attempts = 0;
    std::int64_t next_attempt_ms = 0;
    std::int64_t expires_at = 0;
    std::optional<std::int64_t> last_status_code;
    std::string last_error;
    std::optional<std::int64_t> last_attempt_at;
    std::optional<std::int64_t> completed_at;
    std::int64_t created_at = 0;
    std::string payload;  // the body sent (read for a single delivery only)
};

/// The certificate record of an event payload: the API record's members (no PEM texts, never a key),
/// `status` as of `now`.
boost::json::object webhook_certificate_record(certificate const& c, std::int64_t now);

/// The payload of an event: `{"id", "type", "timestamp" (RFC 3339, UTC), "data"}` as sent.
std::string webhook_payload(std::string const& event_id, std::string const& type, std::int64_t at,
                            boost::json::object data);

}  // namespace certctrl::domain
