// The CLI's side of the wire: one blocking request over the project's outbound client (net::fetch).
#include "certctrl/cli/cli.hpp"
#include "certctrl/net/outbound.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace certctrl::cli {

std::filesystem::path default_config_file(std::map<std::string, std::string> const& vars) {
    auto get = [&](char const* name) -> std::string {
        auto it = vars.find(name);
        return it == vars.end() ? std::string() : it->second;
    };
    if (auto f = get("CERTCTRL_CONFIG"); !f.empty()) {
        return f;
    }
    if (auto x = get("XDG_CONFIG_HOME"); !x.empty()) {
        return std::filesystem::path(x) / "certctrl" / "config.json";
    }
    return std::filesystem::path(get("HOME")) / ".config" / "certctrl" / "config.json";
}

result<api_answer> call(connection const& c, std::string const& method, std::string const& path,
                        std::optional<boost::json::value> body) {
    net::outbound_request req;
    req.method = method;
    std::string base = c.url;
    while (!base.empty() && base.back() == '/') {
        base.pop_back();
    }
    req.url = base + path;
    req.headers.emplace_back("Accept", "application/json");
    req.headers.emplace_back("User-Agent", "certctrl-cli/1");
    if (!c.api_key.empty()) {
        req.headers.emplace_back("Authorization", "Bearer " + c.api_key);
    } else if (!c.cookie.empty()) {
        req.headers.emplace_back("Cookie", c.cookie);
        // Writes with a session carry the server's own origin, as its dashboard does.
        auto const scheme_end = base.find("://");
        auto const host_end = base.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
        req.headers.emplace_back("Origin", base.substr(0, host_end));
    }
    if (body) {
        req.headers.emplace_back("Content-Type", "application/json");
        req.body = boost::json::serialize(*body);
    }
    net::outbound_options opts;
    opts.ca_file = c.ca_file;
    opts.timeout = std::chrono::seconds(60);
    opts.body_limit = 64 * 1024 * 1024;
    boost::asio::io_context ioc;
    std::optional<result<net::outbound_response>> got;
    auto task = [&]() -> boost::asio::awaitable<void> {
        auto op = net::fetch(std::move(req), std::move(opts));
        got.emplace(co_await std::move(op));
    };
    boost::asio::co_spawn(ioc, task, boost::asio::detached);
    ioc.run();
    if (!got) {
        return make_error(errc::internal, "The request did not complete");
    }
    if (!*got) {
        return got->error();
    }
    api_answer a;
    a.status = (*got)->status;
    a.raw = std::move((*got)->body);
    a.set_cookie = (*got)->header("set-cookie");
    boost::system::error_code ec;
    auto v = boost::json::parse(a.raw, ec);
    if (!ec) {
        a.body = std::move(v);
    }
    return a;
}

}  // namespace certctrl::cli
