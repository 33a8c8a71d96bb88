#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace certctrl::config {

/// Raised by load() for a config the server must not start with; the message names the key.
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// HTTP listener and connection limits.
struct server_config {
    std::string listen_address = "127.0.0.1";
    std::uint16_t port = 8080;
    unsigned threads = 2;
    std::string public_url = "http://127.0.0.1:8080";
    std::size_t max_connections = 10000;
    std::size_t max_connections_per_ip = 256;  // open connections of one peer address (0: no cap)
    std::size_t header_limit_bytes = 16 * 1024;
    std::size_t body_limit_bytes = 1024 * 1024;
    std::size_t unauthenticated_body_limit_bytes = 64 * 1024;  // for requests without valid credentials
    std::size_t websocket_message_limit_bytes = 64 * 1024;     // one incoming WebSocket message
    std::chrono::milliseconds read_timeout{15000};
    std::chrono::milliseconds idle_timeout{60000};
    std::chrono::milliseconds write_timeout{15000};
    std::chrono::milliseconds shutdown_grace{8000};
    std::vector<std::string> trusted_proxies;  // peers whose X-Forwarded-For is believed (exact addresses)
    bool dashboard = true;                     // serve the browser dashboard at / and /ui/
};

/// MySQL/MariaDB connection settings. The password never lives in the file itself.
struct database_config {
    std::string host = "127.0.0.1";
    std::uint16_t port = 3306;
    std::string socket;  // a Unix socket path of a local server; when set, host and port are not used
    // Several servers of one cluster (Galera), "host:port" each: connections go to the first that answers,
    // and move to the next when it fails. When set, host and port are not used.
    std::vector<std::string> hosts;
    std::string user = "certctrl";
    std::string name = "certctrl";
    std::string password;  // resolved from password_env or password_file at load
    std::string password_env = "CERTCTRL_DB_PASSWORD";
    std::string password_file;
    unsigned pool_size = 4;
    unsigned connect_timeout_s = 2;
    unsigned read_timeout_s = 30;
    unsigned write_timeout_s = 30;
    std::size_t queue_limit = 1024;
    bool migrate_on_start = true;
};

/// Where /metrics is served: on its own listener, or on the main one behind a bearer token, or not at all.
struct metrics_config {
    std::string listen_address;  // empty: no separate listener
    std::uint16_t port = 0;
    std::string token;  // resolved from token_env; empty: no token access on the main listener
    std::string token_env;
};

/// Logging.
struct log_config {
    std::string level = "info";  // trace, debug, info, warn, error
};

/// Key material. The master key wraps every data key; it comes from the environment or a key file.
struct crypto_config {
    std::string master_key_env = "CERTCTRL_MASTER_KEY";
    std::string master_key_file;
    std::string master_key;           // 32 raw bytes once loaded; empty if none configured
    unsigned master_key_version = 1;  // the version new secrets are sealed under
    /// Older master keys, kept to read what is still sealed under them until `rewrap-keys` ran: a file of
    /// lines "<version> <64 hex>" ('#' starts a comment). Versions must be below master_key_version.
    std::string retired_master_keys_file;
    std::map<unsigned, std::string> retired_master_keys;  // version -> 32 raw bytes, once loaded
};

/// Sessions, registration, CSRF and client addresses.
struct auth_config {
    std::string cookie_name = "cjj365";
    std::int64_t session_ttl_s = 7 * 24 * 3600;      // absolute lifetime of a session
    std::int64_t session_idle_timeout_s = 2 * 3600;  // a session unused this long ends
    std::string login_redirect = "/";                // `to` in the login response
    bool registration_enabled = false;               // POST /auth/general action "register"
    std::string activation_code;                     // resolved from activation_code_env
    std::string activation_code_env = "CERTCTRL_ACTIVATION_CODE";
    std::vector<std::string> dashboard_origins;  // extra origins allowed to send cookie-authenticated writes
    /// API keys need certificates:<id>[export] (not only [read]) to receive a private key in plaintext
    /// (export, zip, plaintext device bundle). Off by default: the agent contract's keys export with read.
    bool export_requires_export_action = false;
};

/// Request budgets, shared by every instance through MySQL. 0 disables a limit.
struct rate_limit_config {
    unsigned auth_per_minute = 10;                      // per client IP, on /auth routes
    unsigned issuance_per_hour = 5;                     // per user, on issuance
    unsigned api_per_minute = 100;                      // per user, on /apiv1 routes
    unsigned login_failures_per_account_per_hour = 20;  // failed logins per email, from any address
    unsigned unauthenticated_per_minute = 300;          // per client IP, on routes that need no credentials
    /// The device flow's own budget, per key: device_start per client IP, device_verify per user, device_poll
    /// per device code (and per client IP at ten times the budget), registration and /auth/refresh per client
    /// IP. Failures that may be guesses (unknown codes or tokens) spend auth_per_minute as well, and a spent
    /// auth budget refuses the flow too.
    unsigned device_flow_per_minute = 600;
    unsigned self_ca_issuance_per_hour = 1000;  // per user, SELF_CA issuances (ACME ones: issuance_per_hour)
};

/// The issuance engine: workers, the ACME client and the HTTP-01 challenge listener.
/// DNS-01 through CNAME delegation (agent contract 7): users point `_acme-challenge.<name>` at
/// `<certificate public_id>.<domain>` once, and the server publishes the TXT records there over RFC 2136 on a
/// DNS server the operator runs. Unset `domain`: delegation is off.
struct delegation_config {
    std::string domain;  // where the TXT records live, e.g. "acme.example.net"
    std::string server;  // the RFC 2136 server (host or address)
    unsigned port = 53;
    std::string zone;  // the zone the updates go to ("" = domain)
    std::string tsig_key_name;
    std::string tsig_algorithm = "hmac-sha256";
    std::string tsig_secret;  // base64, from tsig_secret_env or tsig_secret_file
};

/// Limits for one ACME CA, matched by its exact directory URL (issuance.ca_limits).
struct ca_limit_config {
    std::string directory_url;
    unsigned requests_per_second = 0;   // this instance's requests to the CA (0: no limit)
    unsigned max_orders_in_flight = 0;  // orders PROCESSING at once over every instance (0: no limit)
    unsigned max_pause_seconds = 300;   // the longest Retry-After an order waits for before the attempt fails
};

struct issuance_config {
    /// Issuances in flight per instance, each a coroutine on the I/O thread (0: this instance runs none).
    unsigned workers = 32;
    unsigned lease_seconds = 60;       // a worker's claim on a row; renewed every third of it while it works
    unsigned max_attempts = 5;         // transient failures are retried up to this many times
    unsigned retry_base_seconds = 30;  // backoff base (doubles per attempt, with jitter)
    unsigned poll_interval_ms = 1000;  // how often idle workers look for queued rows
    std::string http01_listen_address = "127.0.0.1";
    unsigned http01_port = 0;               // serves /.well-known/acme-challenge/ (0: no listener)
    std::string acme_ca_file;               // extra CA certificates to trust for ACME servers (PEM)
    unsigned acme_timeout_ms = 30000;       // per ACME HTTP request
    unsigned renewal_check_seconds = 600;   // how often auto-renew certificates are checked (0: never)
    unsigned ari_min_recheck_seconds = 60;  // RFC 9773: the shortest Retry-After followed for renewalInfo
    /// webhook/cloudflare: the longest wait, after publishing, for every authoritative name server of the
    /// zone to serve the record (found through domain_verification_resolver, asked directly) before the CA
    /// looks.
    unsigned dns_propagation_seconds = 60;
    unsigned dns_authoritative_port = 53;     // the port those name servers are asked on
    unsigned dns_step_timeout_seconds = 120;  // rfc2136: the most publishing (or removing) a record may take
    unsigned dns_threads = 4;  // threads for blocking DNS calls (RFC 2136), apart from the rest
    /// Rows of one user PROCESSING at once over every instance (0: no cap), so one tenant's slow CA or DNS
    /// cannot hold every worker.
    unsigned max_concurrent_per_user = 2;
    /// "none": the first user to claim a name holds it; "dns_txt": a claim also needs the TXT record
    /// _certctrl-challenge.<name> = its token before the first issuance from an ACME CA.
    std::string domain_verification = "none";
    /// host[:port] of the recursive resolver asked for those TXT records; "" = the first nameserver of
    /// /etc/resolv.conf.
    std::string domain_verification_resolver;
    std::string cloudflare_api_url = "https://api.cloudflare.com/client/v4";
    delegation_config delegation;
    std::vector<ca_limit_config> ca_limits;
    /// HTTP-01 answered by agents (certificates with "challenge": "http-01-agent"): the port the CA connects
    /// to, told to agents in acme.http01.start; how long every assigned device has to pick the challenge up.
    unsigned agent_http01_port = 80;
    unsigned agent_tls_alpn_port =
        443;  // "tls-alpn-01-agent": the port told to agents in acme.tlsalpn01.start
    unsigned agent_challenge_timeout_seconds = 60;
    unsigned agent_challenge_grace_ms = 1000;  // after the last device picked it up, before the CA is asked
};

/// The device side: device grant, device tokens, the update feed.
struct devices_config {
    std::int64_t access_token_ttl_seconds = 3600;             // device JWTs
    std::int64_t refresh_token_ttl_seconds = 30 * 24 * 3600;  // rotating refresh tokens
    std::int64_t registration_code_ttl_seconds = 600;         // single-use code handed out by device_poll
    std::string verification_uri;  // where users enter the user_code; empty: <server.public_url>/device
    unsigned updates_kept_per_device = 1000;  // feed signals kept; an older cursor must resync (409 40901)
    unsigned updates_max_wait_seconds = 30;   // cap of the ?wait= long-poll
    unsigned poll_interval_hint_seconds = 0;  // sent as X-Poll-Interval when set
    /// Install items that run commands on agents (exec items, cmd, cmd_argv, env, after_update_script) may be
    /// set; false refuses every new or changed one (403).
    bool allow_commands = true;
    unsigned max_waiting_polls_per_user =
        200;                                // update long-polls of one user waiting per instance (0: no cap)
    unsigned max_devices_per_user = 10000;  // devices a user may register (0: no cap)
    unsigned install_config_history_kept = 100;  // versions of each device's install config kept (0: all)
};

/// Where the server may connect for user-supplied endpoints (ACME directories and the URLs they return, DNS
/// webhooks, RFC 2136 servers): internal ranges are refused unless listed.
struct egress_config {
    std::vector<std::string> allow;  // CIDRs or addresses, e.g. "127.0.0.1/32" for a local test CA
    bool enforce = true;
};

/// Webhooks (issue 15): who may subscribe to what, and how the senders deliver.
struct webhooks_config {
    bool sender = true;                   // this instance delivers (any number of instances may)
    unsigned max_per_user = 20;           // subscriptions of one user
    unsigned concurrency = 16;            // deliveries in flight per instance
    unsigned max_in_flight_per_user = 4;  // of those, one user\'s (a slow receiver cannot take every slot)
    unsigned poll_interval_ms = 500;      // how often a sender looks for due deliveries
    unsigned timeout_ms = 10000;          // one attempt: connect, send, read the answer
    unsigned response_limit_bytes = 64 * 1024;  // a larger answer fails the attempt
    unsigned retry_initial_ms = 5000;           // the first retry's delay; doubled per attempt, jittered
    unsigned retry_max_ms = 3600000;            // the longest delay between two attempts
    unsigned give_up_after_seconds = 86400;     // an event still undelivered this long after it is FAILED
    unsigned breaker_failures = 5;       // failed attempts in a row that pause a webhook's deliveries here
    unsigned breaker_open_seconds = 60;  // how long they pause before one is tried again
    std::vector<unsigned> expiring_days{1, 7, 14, 30};  // certificate.expiring thresholds, lowest first
    unsigned expiry_check_seconds = 3600;               // how often expiries are looked at (0: never)
    unsigned log_retention_days = 30;                   // finished deliveries kept for the log
    bool allow_http = false;                            // accept http:// receiver URLs (development only)
    std::string ca_file;  // PEM roots trusted for receivers besides the system's
    unsigned rotation_overlap_max_seconds = 7 * 86400;  // how long a rotated secret may keep signing
};

/// The whole validated configuration.
struct config {
    server_config server;
    database_config database;
    metrics_config metrics;
    log_config log;
    crypto_config crypto;
    auth_config auth;
    rate_limit_config rate_limits;
    issuance_config issuance;
    devices_config devices;
    egress_config egress;
    webhooks_config webhooks;
};

/// Reads and validates the JSON config at `path` (comments allowed). Unknown keys and bad values throw
/// config_error naming the key; relative file paths are taken relative to the config file's folder.
/// Secrets are read from the environment variables named in the file, or from the named files.
config load(std::filesystem::path const& path);

/// Same as load() for text already in memory; `base_dir` resolves relative paths.
config parse(std::string const& text, std::filesystem::path const& base_dir);

/// "host:port" (an entry of database.hosts) split; nullopt unless the host is non-empty and the port 1-65535.
std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string const& text);

}  // namespace certctrl::config
