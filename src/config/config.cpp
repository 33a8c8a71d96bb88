#include "certctrl/config/config.hpp"

#include "certctrl/core/hex.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

namespace certctrl::config {

namespace json = boost::json;

namespace {

// Reads one JSON object section, remembering which keys were read so unknown ones can be reported.
class section_reader {
  public:
    section_reader(json::object const& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

    std::string key_path(std::string_view key) const {
        return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    }

    json::value const* find(std::string_view key) {
        seen_.insert(std::string(key));
        auto it = obj_.find(key);
        return it == obj_.end() ? nullptr : &it->value();
    }

    void read(std::string_view key, std::string& out) {
        if (auto const* v = find(key)) {
            if (!v->is_string()) {
                fail(key, "expected a string");
            }
            out = std::string(v->get_string());
        }
    }

    void read(std::string_view key, std::vector<std::string>& out) {
        if (auto const* v = find(key)) {
            if (!v->is_array()) {
                fail(key, "expected an array of strings");
            }
            out.clear();
            for (auto const& e : v->get_array()) {
                if (!e.is_string()) {
                    fail(key, "expected an array of strings");
                }
                out.emplace_back(e.get_string());
            }
        }
    }

    void read(std::string_view key, bool& out) {
        if (auto const* v = find(key)) {
            if (!v->is_bool()) {
                fail(key, "expected true or false");
            }
            out = v->get_bool();
        }
    }

    template <class Int>
    void read_int(std::string_view key, Int& out, std::int64_t min, std::int64_t max) {
        if (auto const* v = find(key)) {
            std::int64_t n = 0;
            if (v->is_int64()) {
                n = v->get_int64();
            } else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(max)) {
                n = static_cast<std::int64_t>(v->get_uint64());
            } else {
                fail(key, "expected an integer in " + std::to_string(min) + ".." + std::to_string(max));
            }
            if (n < min || n > max) {
                fail(key, "expected an integer in " + std::to_string(min) + ".." + std::to_string(max) +
                              ", got " + std::to_string(n));
            }
            out = static_cast<Int>(n);
        }
    }

    void read_ms(std::string_view key, std::chrono::milliseconds& out, std::int64_t min, std::int64_t max) {
        std::int64_t n = out.count();
        read_int(key, n, min, max);
        out = std::chrono::milliseconds(n);
    }

    json::object const* section(std::string_view key) {
        if (auto const* v = find(key)) {
            if (!v->is_object()) {
                fail(key, "expected an object");
            }
            return &v->get_object();
        }
        return nullptr;
    }

    // Throws for the first key present in the object that no read asked for.
    void finish() const {
        for (auto const& kv : obj_) {
            if (!seen_.contains(std::string(kv.key()))) {
                throw config_error("unknown config key '" + key_path(kv.key()) + "'");
            }
        }
    }

    [[noreturn]] void fail(std::string_view key, std::string const& why) const {
        throw config_error("config key '" + key_path(key) + "': " + why);
    }

  private:
    json::object const& obj_;
    std::string path_;
    std::set<std::string> seen_;
};

std::filesystem::path resolve(std::filesystem::path const& base, std::string const& p) {
    std::filesystem::path path(p);
    return path.is_absolute() ? path : base / path;
}

std::string read_file_trimmed(std::filesystem::path const& p, std::string const& key) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        throw config_error("config key '" + key + "': cannot read file " + p.string());
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

// A secret comes from the environment variable named by `env_key` if set and non-empty, else from the
// file named by `file_key`, else it stays empty.
std::string resolve_secret(std::string const& env_name, std::string const& file,
                           std::filesystem::path const& base, std::string const& file_key) {
    if (!env_name.empty()) {
        if (char const* v = std::getenv(env_name.c_str()); v != nullptr && *v != '\0') {
            return v;
        }
    }
    if (!file.empty()) {
        return read_file_trimmed(resolve(base, file), file_key);
    }
    return {};
}

bool is_log_level(std::string const& s) {
    return s == "trace" || s == "debug" || s == "info" || s == "warn" || s == "error" || s == "critical" ||
           s == "off";
}

void check_url(std::string const& key, std::string const& url) {
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        throw config_error("config key '" + key + "': expected an http:// or https:// URL");
    }
}

}  // namespace

config parse(std::string const& text, std::filesystem::path const& base_dir) {
    json::parse_options opts;
    opts.allow_comments = true;
    opts.allow_trailing_commas = true;
    boost::system::error_code ec;
    json::value root = json::parse(text, ec, {}, opts);
    if (ec) {
        throw config_error("config is not valid JSON: " + ec.message());
    }
    if (!root.is_object()) {
        throw config_error("config must be a JSON object");
    }

    config c;
    section_reader top(root.get_object(), "");

    if (auto const* s = top.section("server")) {
        section_reader r(*s, "server");
        r.read("listen_address", c.server.listen_address);
        r.read_int("port", c.server.port, 0, 65535);
        r.read_int("threads", c.server.threads, 1, 256);
        r.read("public_url", c.server.public_url);
        check_url("server.public_url", c.server.public_url);
        r.read_int("max_connections", c.server.max_connections, 1, 1000000);
        r.read_int("max_connections_per_ip", c.server.max_connections_per_ip, 0, 1000000);
        r.read_int("header_limit_bytes", c.server.header_limit_bytes, 1024, 1024 * 1024);
        r.read_int("body_limit_bytes", c.server.body_limit_bytes, 1024, std::int64_t{1} << 30);
        r.read_int("unauthenticated_body_limit_bytes", c.server.unauthenticated_body_limit_bytes, 1024,
                   std::size_t{64} * 1024 * 1024);
        r.read_int("websocket_message_limit_bytes", c.server.websocket_message_limit_bytes, 1024,
                   std::size_t{16} * 1024 * 1024);
        r.read_ms("read_timeout_ms", c.server.read_timeout, 100, 3600000);
        r.read_ms("idle_timeout_ms", c.server.idle_timeout, 100, 3600000);
        r.read_ms("write_timeout_ms", c.server.write_timeout, 100, 3600000);
        r.read_ms("shutdown_grace_ms", c.server.shutdown_grace, 0, 600000);
        r.read("trusted_proxies", c.server.trusted_proxies);
        r.read("dashboard", c.server.dashboard);
        for (auto const& p : c.server.trusted_proxies) {
            boost::system::error_code aec;
            boost::asio::ip::make_address(p, aec);
            if (aec) {
                r.fail("trusted_proxies", "'" + p + "' is not an IP address");
            }
        }
        r.finish();
    }
    if (auto const* s = top.section("database")) {
        section_reader r(*s, "database");
        r.read("host", c.database.host);
        r.read_int("port", c.database.port, 1, 65535);
        r.read("socket", c.database.socket);
        r.read("hosts", c.database.hosts);
        for (auto const& h : c.database.hosts) {
            if (!split_host_port(h)) {
                r.fail("hosts", "'" + h + "' is not host:port");
            }
        }
        if (!c.database.hosts.empty() && !c.database.socket.empty()) {
            r.fail("hosts", "use either hosts or socket");
        }
        r.read("user", c.database.user);
        r.read("name", c.database.name);
        r.read("password_env", c.database.password_env);
        r.read("password_file", c.database.password_file);
        r.read_int("pool_size", c.database.pool_size, 1, 256);
        r.read_int("connect_timeout_s", c.database.connect_timeout_s, 1, 600);
        r.read_int("read_timeout_s", c.database.read_timeout_s, 1, 3600);
        r.read_int("write_timeout_s", c.database.write_timeout_s, 1, 3600);
        r.read_int("queue_limit", c.database.queue_limit, 1, 1000000);
        r.read("migrate_on_start", c.database.migrate_on_start);
        r.finish();
        if (c.database.name.empty() || c.database.name.size() > 64 ||
            c.database.name.find_first_not_of(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string::npos) {
            r.fail("name", "expected 1-64 characters of [A-Za-z0-9_]");
        }
        if (c.database.user.empty()) {
            r.fail("user", "must not be empty");
        }
        if (!c.database.socket.empty()) {
            c.database.socket = resolve(base_dir, c.database.socket).string();
        }
    }
    c.database.password =
        resolve_secret(c.database.password_env, c.database.password_file, base_dir, "database.password_file");

    if (auto const* s = top.section("metrics")) {
        section_reader r(*s, "metrics");
        r.read("listen_address", c.metrics.listen_address);
        r.read_int("port", c.metrics.port, 0, 65535);
        r.read("token_env", c.metrics.token_env);
        r.finish();
    }
    c.metrics.token = resolve_secret(c.metrics.token_env, "", base_dir, "");
    if (!c.metrics.token_env.empty() && c.metrics.token.size() < 16) {
        throw config_error("config key 'metrics.token_env': environment variable " + c.metrics.token_env +
                           " must hold a token of at least 16 characters");
    }

    if (auto const* s = top.section("log")) {
        section_reader r(*s, "log");
        r.read("level", c.log.level);
        r.finish();
        if (!is_log_level(c.log.level)) {
            r.fail("level", "expected one of trace, debug, info, warn, error, critical, off");
        }
    }
    if (auto const* s = top.section("crypto")) {
        section_reader r(*s, "crypto");
        r.read("master_key_env", c.crypto.master_key_env);
        r.read("master_key_file", c.crypto.master_key_file);
        r.read_int("master_key_version", c.crypto.master_key_version, 1, 1000000);
        r.read("retired_master_keys_file", c.crypto.retired_master_keys_file);
        r.finish();
    }
    if (!c.crypto.retired_master_keys_file.empty()) {
        std::ifstream in(resolve(base_dir, c.crypto.retired_master_keys_file));
        if (!in) {
            throw config_error("config key 'crypto.retired_master_keys_file': cannot read the file");
        }
        std::string line;
        int n = 0;
        while (std::getline(in, line)) {
            ++n;
            if (auto hash = line.find('#'); hash != std::string::npos) {
                line.erase(hash);
            }
            std::istringstream fields(line);
            unsigned version = 0;
            std::string hex;
            if (!(fields >> version)) {
                continue;  // blank or comment
            }
            auto key = (fields >> hex) ? hex_decode(hex) : std::nullopt;
            if (version == 0 || version >= c.crypto.master_key_version || !key || key->size() != 32) {
                throw config_error("config key 'crypto.retired_master_keys_file': line " + std::to_string(n) +
                                   " must be '<version below master_key_version> <64 hex>'");
            }
            c.crypto.retired_master_keys[version] = std::move(*key);
        }
    }
    std::string hex =
        resolve_secret(c.crypto.master_key_env, c.crypto.master_key_file, base_dir, "crypto.master_key_file");
    if (!hex.empty()) {
        auto key = hex_decode(hex);
        if (hex.size() != 64 || !key) {
            throw config_error(
                "config key 'crypto.master_key_env' / 'crypto.master_key_file': the master key must "
                "be 64 hex characters");
        }
        c.crypto.master_key = std::move(*key);
    }
    if (auto const* s = top.section("auth")) {
        section_reader r(*s, "auth");
        r.read("cookie_name", c.auth.cookie_name);
        r.read_int("session_ttl_s", c.auth.session_ttl_s, 60, std::int64_t{366} * 24 * 3600);
        r.read_int("session_idle_timeout_s", c.auth.session_idle_timeout_s, 60,
                   std::int64_t{366} * 24 * 3600);
        r.read("login_redirect", c.auth.login_redirect);
        r.read("registration_enabled", c.auth.registration_enabled);
        r.read("activation_code_env", c.auth.activation_code_env);
        r.read("dashboard_origins", c.auth.dashboard_origins);
        r.read("export_requires_export_action", c.auth.export_requires_export_action);
        r.finish();
        if (c.auth.cookie_name.empty() ||
            c.auth.cookie_name.find_first_not_of(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != std::string::npos) {
            r.fail("cookie_name", "expected 1 or more characters of [A-Za-z0-9_-]");
        }
        for (auto const& o : c.auth.dashboard_origins) {
            check_url("auth.dashboard_origins", o);
        }
    }
    c.auth.activation_code = resolve_secret(c.auth.activation_code_env, "", base_dir, "");
    if (c.auth.registration_enabled && c.auth.activation_code.size() < 8) {
        throw config_error(
            "config key 'auth.registration_enabled': registration needs an activation code of at "
            "least 8 characters in the environment variable " +
            c.auth.activation_code_env);
    }
    if (auto const* s = top.section("rate_limits")) {
        section_reader r(*s, "rate_limits");
        r.read_int("auth_per_minute", c.rate_limits.auth_per_minute, 0, 1000000);
        r.read_int("issuance_per_hour", c.rate_limits.issuance_per_hour, 0, 1000000);
        r.read_int("api_per_minute", c.rate_limits.api_per_minute, 0, 1000000);
        r.read_int("login_failures_per_account_per_hour", c.rate_limits.login_failures_per_account_per_hour,
                   0, 1000000);
        r.read_int("unauthenticated_per_minute", c.rate_limits.unauthenticated_per_minute, 0, 1000000);
        r.read_int("device_flow_per_minute", c.rate_limits.device_flow_per_minute, 0, 1000000);
        r.read_int("self_ca_issuance_per_hour", c.rate_limits.self_ca_issuance_per_hour, 0, 10000000);
        r.finish();
    }
    if (auto const* s = top.section("issuance")) {
        section_reader r(*s, "issuance");
        r.read_int("workers", c.issuance.workers, 0, 4096);
        r.read_int("lease_seconds", c.issuance.lease_seconds, 10, 3600);
        r.read_int("max_attempts", c.issuance.max_attempts, 1, 100);
        r.read_int("retry_base_seconds", c.issuance.retry_base_seconds, 1, 86400);
        r.read_int("poll_interval_ms", c.issuance.poll_interval_ms, 50, 60000);
        r.read("http01_listen_address", c.issuance.http01_listen_address);
        r.read_int("http01_port", c.issuance.http01_port, 0, 65535);
        r.read("acme_ca_file", c.issuance.acme_ca_file);
        r.read_int("acme_timeout_ms", c.issuance.acme_timeout_ms, 1000, 600000);
        r.read_int("renewal_check_seconds", c.issuance.renewal_check_seconds, 0, 86400);
        r.read_int("ari_min_recheck_seconds", c.issuance.ari_min_recheck_seconds, 1, 86400);
        r.read_int("dns_propagation_seconds", c.issuance.dns_propagation_seconds, 0, 3600);
        r.read_int("dns_authoritative_port", c.issuance.dns_authoritative_port, 1, 65535);
        r.read_int("dns_step_timeout_seconds", c.issuance.dns_step_timeout_seconds, 1, 3600);
        r.read_int("dns_threads", c.issuance.dns_threads, 1, 64);
        r.read_int("max_concurrent_per_user", c.issuance.max_concurrent_per_user, 0, 1000);
        r.read("domain_verification", c.issuance.domain_verification);
        if (c.issuance.domain_verification != "none" && c.issuance.domain_verification != "dns_txt") {
            throw config_error("config key 'issuance.domain_verification': expected \"none\" or \"dns_txt\"");
        }
        r.read("domain_verification_resolver", c.issuance.domain_verification_resolver);
        {
            std::string const& v = c.issuance.domain_verification_resolver;
            auto const colon = v.rfind(':');
            bool const bracketed = !v.empty() && v.front() == '[';
            bool ok =
                v.find_first_not_of("0123456789abcdefABCDEF.:-[]_zyxwvutsrqponmlkjihgZYXWVUTSRQPONMLKJIHG") ==
                std::string::npos;
            if (ok && colon != std::string::npos && (!bracketed || v.find(']') < colon) &&
                (bracketed || v.find(':') == colon)) {
                std::string const port = v.substr(colon + 1);
                ok = !port.empty() && port.size() <= 5 &&
                     port.find_first_not_of("0123456789") == std::string::npos && std::stoul(port) >= 1 &&
                     std::stoul(port) <= 65535;
            }
            if (!ok) {
                throw config_error(
                    "config key 'issuance.domain_verification_resolver': expected host, host:port or "
                    "[v6]:port");
            }
        }
        r.read("cloudflare_api_url", c.issuance.cloudflare_api_url);
        check_url("issuance.cloudflare_api_url", c.issuance.cloudflare_api_url);
        r.read_int("agent_http01_port", c.issuance.agent_http01_port, 1, 65535);
        r.read_int("agent_tls_alpn_port", c.issuance.agent_tls_alpn_port, 1, 65535);
        r.read_int("agent_challenge_timeout_seconds", c.issuance.agent_challenge_timeout_seconds, 1, 3600);
        r.read_int("agent_challenge_grace_ms", c.issuance.agent_challenge_grace_ms, 0, 60000);
        if (auto const* d = r.section("delegation")) {
            section_reader dr(*d, "issuance.delegation");
            auto& del = c.issuance.delegation;
            dr.read("domain", del.domain);
            dr.read("server", del.server);
            dr.read_int("port", del.port, 1, 65535);
            dr.read("zone", del.zone);
            dr.read("tsig_key_name", del.tsig_key_name);
            dr.read("tsig_algorithm", del.tsig_algorithm);
            std::string secret_env;
            std::string secret_file;
            dr.read("tsig_secret_env", secret_env);
            dr.read("tsig_secret_file", secret_file);
            dr.finish();
            del.tsig_secret =
                resolve_secret(secret_env, secret_file, base_dir, "issuance.delegation.tsig_secret_file");
            while (!del.domain.empty() && del.domain.back() == '.') {
                del.domain.pop_back();
            }
            std::transform(del.domain.begin(), del.domain.end(), del.domain.begin(),
                           [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
            if (del.zone.empty()) {
                del.zone = del.domain;
            }
            if (!del.domain.empty() &&
                (del.server.empty() || del.tsig_key_name.empty() || del.tsig_secret.empty())) {
                throw config_error(
                    "config key 'issuance.delegation': domain needs server, tsig_key_name and a TSIG secret "
                    "(tsig_secret_env or tsig_secret_file)");
            }
        }
        if (auto const* limits = r.find("ca_limits")) {
            if (!limits->is_array()) {
                throw config_error("config key 'issuance.ca_limits': expected an array of objects");
            }
            for (auto const& e : limits->get_array()) {
                std::string const path =
                    "issuance.ca_limits[" + std::to_string(c.issuance.ca_limits.size()) + "]";
                if (!e.is_object()) {
                    throw config_error("config key '" + path + "': expected an object");
                }
                section_reader lr(e.get_object(), path);
                ca_limit_config l;
                lr.read("directory_url", l.directory_url);
                lr.read_int("requests_per_second", l.requests_per_second, 0, 100000);
                lr.read_int("max_orders_in_flight", l.max_orders_in_flight, 0, 100000);
                lr.read_int("max_pause_seconds", l.max_pause_seconds, 0, 86400);
                lr.finish();
                check_url(path + ".directory_url", l.directory_url);
                c.issuance.ca_limits.push_back(std::move(l));
            }
        }
        r.finish();
    }
    if (auto const* s = top.section("webhooks")) {
        section_reader r(*s, "webhooks");
        auto& w = c.webhooks;
        r.read("sender", w.sender);
        r.read_int("max_per_user", w.max_per_user, 0, 10000);
        r.read_int("concurrency", w.concurrency, 1, 1024);
        r.read_int("max_in_flight_per_user", w.max_in_flight_per_user, 1, 1024);
        r.read_int("poll_interval_ms", w.poll_interval_ms, 20, 60000);
        r.read_int("timeout_ms", w.timeout_ms, 100, 120000);
        r.read_int("response_limit_bytes", w.response_limit_bytes, 1024, 16 * 1024 * 1024);
        r.read_int("retry_initial_ms", w.retry_initial_ms, 10, 86400000);
        r.read_int("retry_max_ms", w.retry_max_ms, 10, 86400000);
        r.read_int("give_up_after_seconds", w.give_up_after_seconds, 1, 30 * 86400);
        r.read_int("breaker_failures", w.breaker_failures, 1, 1000);
        r.read_int("breaker_open_seconds", w.breaker_open_seconds, 1, 86400);
        if (auto const* days = r.find("expiring_days")) {
            w.expiring_days.clear();
            bool ok = days->is_array() && days->get_array().size() <= 16;
            if (ok) {
                for (auto const& d : days->get_array()) {
                    ok = ok && d.is_int64() && d.get_int64() >= 1 && d.get_int64() <= 366;
                    if (ok) {
                        w.expiring_days.push_back(static_cast<unsigned>(d.get_int64()));
                    }
                }
            }
            if (!ok) {
                throw config_error(
                    "config key 'webhooks.expiring_days': expected at most 16 whole numbers of days in "
                    "1..366");
            }
            std::sort(w.expiring_days.begin(), w.expiring_days.end());
            w.expiring_days.erase(std::unique(w.expiring_days.begin(), w.expiring_days.end()),
                                  w.expiring_days.end());
        }
        r.read_int("expiry_check_seconds", w.expiry_check_seconds, 0, 86400);
        r.read_int("log_retention_days", w.log_retention_days, 1, 3650);
        r.read("allow_http", w.allow_http);
        r.read("ca_file", w.ca_file);
        r.read_int("rotation_overlap_max_seconds", w.rotation_overlap_max_seconds, 0, 30 * 86400);
        r.finish();
        if (w.retry_max_ms < w.retry_initial_ms) {
            throw config_error("config key 'webhooks.retry_max_ms': must be at least retry_initial_ms");
        }
    }
    if (auto const* s = top.section("egress")) {
        section_reader r(*s, "egress");
        r.read("allow", c.egress.allow);
        r.read("enforce", c.egress.enforce);
        r.finish();
    }
    if (auto const* s = top.section("devices")) {
        section_reader r(*s, "devices");
        r.read_int("access_token_ttl_seconds", c.devices.access_token_ttl_seconds, 5, 86400);
        r.read_int("refresh_token_ttl_seconds", c.devices.refresh_token_ttl_seconds, 3600, 365 * 86400);
        r.read_int("registration_code_ttl_seconds", c.devices.registration_code_ttl_seconds, 60, 3600);
        r.read("verification_uri", c.devices.verification_uri);
        r.read_int("updates_kept_per_device", c.devices.updates_kept_per_device, 1, 100000);
        r.read_int("updates_max_wait_seconds", c.devices.updates_max_wait_seconds, 0, 30);
        r.read_int("poll_interval_hint_seconds", c.devices.poll_interval_hint_seconds, 0, 86400);
        r.read("allow_commands", c.devices.allow_commands);
        r.read_int("max_waiting_polls_per_user", c.devices.max_waiting_polls_per_user, 0, 1000000);
        r.read_int("install_config_history_kept", c.devices.install_config_history_kept, 0, 100000);
        r.read_int("max_devices_per_user", c.devices.max_devices_per_user, 0, 10000000);
        r.finish();
    }
    top.finish();
    return c;
}

config load(std::filesystem::path const& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw config_error("cannot read config file " + path.string());
    }
    std::stringstream ss;
    ss << in.rdbuf();
    auto base = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    return parse(ss.str(), base);
}

std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string const& text) {
    auto const colon = text.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        std::from_chars(text.data() + colon + 1, text.data() + text.size(), port).ptr !=
            text.data() + text.size() ||
        colon + 1 == text.size() || port < 1 || port > 65535) {
        return std::nullopt;
    }
    return std::pair{text.substr(0, colon), static_cast<std::uint16_t>(port)};
}

}  // namespace certctrl::config
