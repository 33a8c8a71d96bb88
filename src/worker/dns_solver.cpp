#include "certctrl/worker/dns_solver.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/core/ids.hpp"
#include "certctrl/dns/rfc2136.hpp"
#include "certctrl/service/compute.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <map>

namespace certctrl::worker {

namespace json = boost::json;

namespace {

std::string setting(json::object const& o, char const* k) {
    auto const* v = o.if_contains(k);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

// run_bounded() that waits for room while the DNS pool is full (many orders at once), until `until`: an
// issuance queues behind the others instead of failing its attempt.
template <class Fn>
net::awaitable<std::invoke_result_t<Fn&>> run_dns(service::bounded_pool& io, Fn fn, std::string what,
                                                  std::chrono::steady_clock::time_point until) {
    for (;;) {
        auto const left = std::max(
            std::chrono::milliseconds(1),
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()));
        auto aw = service::run_bounded(io, fn, what, left);
        auto r = co_await std::move(aw);
        if (r || r.error().code != errc::unavailable || std::chrono::steady_clock::now() >= until) {
            co_return r;
        }
        auto aw_p = net::sleep_for(std::chrono::milliseconds(20));
        co_await std::move(aw_p);
    }
}

// Waits until every authoritative name server of the zone holding `fqdn` serves TXT `fqdn` = `value`, asking
// them directly (no cache between) every 250 ms, for at most opts.propagation_wait; then the CA may look.
// When the name servers cannot be found (no resolver, a private zone), the whole wait is spent as before.
// Name servers at addresses the egress policy refuses are not asked.
net::awaitable<void> await_served(service::bounded_pool& io, dns_solver_options const& o,
                                  std::string const& fqdn, std::string const& value) {
    auto const until = std::chrono::steady_clock::now() + o.propagation_wait;
    if (o.propagation_wait.count() == 0) {
        co_return;
    }
    std::vector<std::string> servers;
    if (!o.resolver.empty()) {
        auto find = [r = o.resolver, p = o.resolver_port, fqdn] {  // named: see compute.hpp
            return dns::authoritative_servers(r, p, fqdn, std::chrono::seconds(3));
        };
        auto aw = run_dns(io, std::move(find), "The lookup of the name servers of " + fqdn, until);
        auto found = co_await std::move(aw);
        if (found) {
            for (auto& s : *found) {
                if (!o.http.egress || !o.http.egress->refuses(s)) {
                    servers.push_back(std::move(s));
                }
            }
        } else {
            spdlog::info("DNS-01 {}: {}; waiting {} s instead", fqdn, found.error().what,
                         o.propagation_wait.count());
        }
    }
    while (!servers.empty() && std::chrono::steady_clock::now() < until) {
        std::size_t serving = 0;
        for (auto const& s : servers) {
            auto ask = [s, port = o.authoritative_port, fqdn] {  // named: see compute.hpp
                return dns::query_txt(s, port, fqdn, std::chrono::seconds(2), false);
            };
            auto aw = run_dns(io, std::move(ask), "The name server " + s, until);
            auto txt = co_await std::move(aw);
            serving += txt && std::find(txt->begin(), txt->end(), value) != txt->end() ? 1 : 0;
        }
        if (serving == servers.size()) {
            co_return;
        }
        auto aw_p = net::sleep_for(std::chrono::milliseconds(250));
        co_await std::move(aw_p);
    }
    auto const left = until - std::chrono::steady_clock::now();
    if (left > std::chrono::steady_clock::duration::zero()) {
        auto aw_p = net::sleep_for(left);
        co_await std::move(aw_p);
    }
}

class rfc2136_solver final : public dns_solver {
  public:
    rfc2136_solver(dns::update_target t, service::bounded_pool& io, std::chrono::seconds step_timeout)
        : target_(std::move(t)), io_(io), step_timeout_(step_timeout) {}

    // Each blocking call runs on the DNS pool (never on the threads of logins or signing), and a whole step
    // gets step_timeout in all: a server that never answers costs this issuance that long, and no one else.
    net::awaitable<result<bool>> present(std::string fqdn, std::string value) override {
        auto const until = std::chrono::steady_clock::now() + step_timeout_;
        auto update = [t = target_, fqdn, value] { return dns::update_txt(t, fqdn, value, true); };  // named
        auto aw = run_dns(io_, std::move(update), what(), until);
        auto r = co_await std::move(aw);
        if (!r) {
            co_return r.error();
        }
        // The update is applied when the server answers it, but check it is served before the CA looks.
        while (std::chrono::steady_clock::now() < until) {
            auto query = [t = target_, fqdn] {  // named
                return dns::query_txt(t.server, t.port, fqdn, std::chrono::seconds(5), false,
                                      t.refuse_address);
            };
            auto aw_q = run_dns(io_, std::move(query), what(), until);
            auto txt = co_await std::move(aw_q);
            if (txt && std::find(txt->begin(), txt->end(), value) != txt->end()) {
                co_return true;
            }
            auto aw_p = net::sleep_for(std::chrono::milliseconds(200));
            co_await std::move(aw_p);
        }
        co_return make_error(errc::external_service,
                             "DNS server " + target_.server + " did not serve " + fqdn + " within " +
                                 std::to_string(step_timeout_.count()) + " s of the update",
                             {{"retryable", true}});
    }

    net::awaitable<result<bool>> cleanup(std::string fqdn, std::string value) override {
        auto update = [t = target_, fqdn, value] { return dns::update_txt(t, fqdn, value, false); };  // named
        auto aw = run_dns(io_, std::move(update), what(), std::chrono::steady_clock::now() + step_timeout_);
        co_return co_await std::move(aw);
    }

  private:
    std::string what() const { return "The DNS server " + target_.server; }

    dns::update_target target_;
    service::bounded_pool& io_;
    std::chrono::seconds step_timeout_;
};

class webhook_solver final : public dns_solver {
  public:
    webhook_solver(std::string url, std::string secret, service::bounded_pool& io, dns_solver_options opts)
        : url_(std::move(url)), secret_(std::move(secret)), io_(io), opts_(std::move(opts)) {}

    net::awaitable<result<bool>> present(std::string fqdn, std::string value) override {
        auto aw = call("present", fqdn, value);
        auto r = co_await std::move(aw);
        if (!r) {
            co_return r.error();
        }
        auto aw_served = await_served(io_, opts_, fqdn, value);
        co_await std::move(aw_served);
        co_return true;
    }

    net::awaitable<result<bool>> cleanup(std::string fqdn, std::string value) override {
        auto aw = call("cleanup", fqdn, value);
        co_return co_await std::move(aw);
    }

  private:
    net::awaitable<result<bool>> call(std::string action, std::string fqdn, std::string value) {
        std::string const body =
            json::serialize(json::object{{"action", action}, {"fqdn", fqdn}, {"value", value}});
        std::string const ts = std::to_string(unix_now());
        net::outbound_request req;
        req.method = "POST";
        req.url = url_;
        req.body = body;
        req.headers = {{"Content-Type", "application/json"},
                       {"X-Certctrl-Timestamp", ts},
                       {"X-Certctrl-Signature", webhook_signature(secret_, ts, body)}};
        auto aw = net::fetch(req, opts_.http);
        auto res = co_await std::move(aw);
        if (!res) {
            co_return res.error();
        }
        if (res->status < 200 || res->status > 299) {
            co_return make_error(
                errc::external_service,
                // Never the body: the URL is the user's, and an answer could carry what a
                // server behind it says.
                "The DNS webhook answered " + std::to_string(res->status) + " to " + action + " " + fqdn,
                {{"retryable", res->status >= 500}});
        }
        co_return true;
    }

    std::string url_;
    std::string secret_;
    service::bounded_pool& io_;
    dns_solver_options opts_;
};

class cloudflare_solver final : public dns_solver {
  public:
    cloudflare_solver(std::string token, std::string zone_id, service::bounded_pool& io,
                      dns_solver_options opts)
        : token_(std::move(token)), zone_id_(std::move(zone_id)), io_(io), opts_(std::move(opts)) {}

    net::awaitable<result<bool>> present(std::string fqdn, std::string value) override {
        auto aw_zone = zone_for(fqdn);
        auto zone = co_await std::move(aw_zone);
        if (!zone) {
            co_return zone.error();
        }
        auto aw = api(
            "POST", "/zones/" + *zone + "/dns_records",
            json::serialize(json::object{{"type", "TXT"}, {"name", fqdn}, {"content", value}, {"ttl", 60}}));
        auto r = co_await std::move(aw);
        if (!r) {
            co_return r.error();
        }
        auto const* id = r->get_object().if_contains("result");
        if (id != nullptr && id->is_object() && id->get_object().contains("id")) {
            records_[fqdn + "\n" + value] = {*zone, std::string(id->get_object().at("id").as_string())};
        }
        auto aw_served = await_served(io_, opts_, fqdn, value);
        co_await std::move(aw_served);
        co_return true;
    }

    net::awaitable<result<bool>> cleanup(std::string fqdn, std::string value) override {
        auto it = records_.find(fqdn + "\n" + value);
        if (it == records_.end()) {
            co_return true;
        }
        auto aw = api("DELETE", "/zones/" + it->second.first + "/dns_records/" + it->second.second, "");
        auto r = co_await std::move(aw);
        records_.erase(it);
        if (!r) {
            co_return r.error();
        }
        co_return true;
    }

  private:
    // The zone id: the configured one, else the zone whose name is the longest suffix of `fqdn`.
    net::awaitable<result<std::string>> zone_for(std::string fqdn) {
        if (!zone_id_.empty()) {
            co_return zone_id_;
        }
        std::string name = fqdn;
        while (true) {
            auto dot = name.find('.');
            if (dot == std::string::npos) {
                break;
            }
            name = name.substr(dot + 1);
            auto aw = api("GET", "/zones?name=" + name, "");
            auto r = co_await std::move(aw);
            if (!r) {
                co_return r.error();
            }
            auto const* res = r->get_object().if_contains("result");
            if (res != nullptr && res->is_array() && !res->get_array().empty()) {
                co_return std::string(res->get_array().at(0).at("id").as_string());
            }
        }
        co_return make_error(errc::external_service, "No Cloudflare zone of this API token holds " + fqdn);
    }

    net::awaitable<result<json::value>> api(std::string method, std::string path, std::string body) {
        net::outbound_request req;
        req.method = method;
        req.url = opts_.cloudflare_api + path;
        req.body = body;
        req.headers = {{"Authorization", "Bearer " + token_}, {"Content-Type", "application/json"}};
        auto aw = net::fetch(req, opts_.http);
        auto res = co_await std::move(aw);
        if (!res) {
            co_return res.error();
        }
        boost::system::error_code ec;
        auto v = json::parse(res->body, ec);
        bool const ok = !ec && v.is_object() && v.get_object().contains("success") && v.at("success") == true;
        if (!ok || res->status >= 300) {
            std::string why = "(no error message)";  // only Cloudflare's structured message, never the body
            if (!ec && v.is_object()) {
                if (auto const* errs = v.get_object().if_contains("errors");
                    errs != nullptr && errs->is_array() && !errs->get_array().empty() &&
                    errs->get_array()[0].is_object()) {
                    why = setting(errs->get_array()[0].get_object(), "message");
                }
            }
            co_return make_error(errc::external_service,
                                 "Cloudflare answered " + std::to_string(res->status) + ": " + why,
                                 {{"retryable", res->status >= 500 || res->status == 429}});
        }
        co_return v;
    }

    std::string token_;
    std::string zone_id_;
    service::bounded_pool& io_;
    dns_solver_options opts_;
    std::map<std::string, std::pair<std::string, std::string>> records_;  // fqdn\nvalue -> zone, record id
};

}  // namespace

std::string webhook_signature(std::string const& secret, std::string const& timestamp,
                              std::string const& body) {
    std::string const msg = timestamp + "." + body;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<unsigned char const*>(msg.data()), msg.size(), mac, &len);
    return "sha256=" + hex_encode(std::string_view(reinterpret_cast<char const*>(mac), len));
}

result<std::unique_ptr<dns_solver>> make_dns_solver(domain::dns_provider const& provider,
                                                    json::object const& credentials,
                                                    service::bounded_pool& dns_io, dns_solver_options opts) {
    if (provider.kind == "rfc2136") {
        dns::update_target t;
        t.server = setting(provider.settings, "server");
        if (auto const* p = provider.settings.if_contains("port"); p != nullptr && p->is_int64()) {
            t.port = static_cast<unsigned>(p->get_int64());
        }
        t.zone = setting(provider.settings, "zone");
        t.tsig_key_name = setting(provider.settings, "tsig_key_name");
        t.tsig_algorithm = setting(provider.settings, "tsig_algorithm");
        t.tsig_secret = setting(credentials, "tsig_secret");
        if (opts.http.egress) {
            t.refuse_address = [egress = opts.http.egress](std::string const& a) {
                return egress->refuses(a);
            };
        }
        return std::unique_ptr<dns_solver>(
            std::make_unique<rfc2136_solver>(std::move(t), dns_io, opts.step_timeout));
    }
    if (provider.kind == "webhook") {
        return std::unique_ptr<dns_solver>(std::make_unique<webhook_solver>(
            setting(provider.settings, "url"), setting(credentials, "hmac_secret"), dns_io, std::move(opts)));
    }
    if (provider.kind == "cloudflare") {
        return std::unique_ptr<dns_solver>(std::make_unique<cloudflare_solver>(
            setting(credentials, "api_token"), setting(provider.settings, "zone_id"), dns_io,
            std::move(opts)));
    }
    return make_error(errc::bad_request, "DNS provider '" + provider.name + "' is of kind " + provider.kind +
                                             ", which cannot publish DNS-01 records by itself");
}

}  // namespace certctrl::worker
