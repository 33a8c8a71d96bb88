#pragma once
// A CA in front of pebble for the ACME tests: every request is forwarded to pebble with its Host header kept
// (pebble builds its URLs from it, so they name the proxy). It can enforce a request rate (429 rateLimited
// with Retry-After above `per_second` requests in the last second, as a public CA answers) and hold the
// requests whose path contains a given text until released (a CA that is slow to answer, or a server killed
// meanwhile).
#include "acme_fixture.hpp"
#include "https_stub.hpp"

#include <atomic>
#include <deque>
#include <mutex>

namespace certctrl::test {

class ca_proxy {
  public:
    /// `per_second` 0: no rate enforced.
    ca_proxy(std::filesystem::path const& root, std::string pebble_origin, std::string pebble_ca,
             std::size_t per_second = 0)
        : origin_(std::move(pebble_origin)),
          ca_(std::move(pebble_ca)),
          per_second_(per_second),
          stub_(root, [this](https_stub::request const& req) { return handle(req); }) {}

    std::string url(std::string const& path) const { return stub_.url(path); }
    /// Requests whose path contains `part` wait (the proxy answers one request at a time, so all later ones
    /// wait behind them) until release(). `held()`: how many arrived while holding.
    void hold(std::string part) {
        std::lock_guard lock(mu_);
        hold_ = std::move(part);
    }
    void release() {
        std::lock_guard lock(mu_);
        hold_.clear();
    }
    int held() const { return held_.load(); }
    int refused() const { return refused_.load(); }
    int forwarded() const { return forwarded_.load(); }

  private:
    https_stub::response handle(https_stub::request const& req) {
        bool counted = false;
        while (true) {
            {
                std::lock_guard lock(mu_);
                if (hold_.empty() || std::string(req.target()).find(hold_) == std::string::npos) {
                    break;
                }
                if (!counted) {
                    held_.fetch_add(1);
                    counted = true;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        {
            std::lock_guard lock(mu_);
            auto const now = std::chrono::steady_clock::now();
            while (!recent_.empty() && now - recent_.front() >= std::chrono::seconds(1)) {
                recent_.pop_front();
            }
            if (per_second_ > 0 && recent_.size() >= per_second_) {
                refused_.fetch_add(1);
                https_stub::response r{boost::beast::http::status::too_many_requests, 11};
                r.set("Retry-After", "1");
                r.set("Content-Type", "application/problem+json");
                r.body() =
                    R"({"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many requests"})";
                return r;
            }
            recent_.push_back(now);
        }
        net::outbound_request out;
        out.method = std::string(req.method_string());
        out.url = origin_ + std::string(req.target());
        for (auto const& f : req) {
            std::string const name(f.name_string());
            if (name != "Connection" && name != "Content-Length") {
                out.headers.emplace_back(name, std::string(f.value()));
            }
        }
        out.body = req.body();
        net::outbound_options o;
        o.ca_file = ca_;
        auto got = run_awaitable(net::fetch(out, o));
        https_stub::response r{boost::beast::http::status::bad_gateway, 11};
        if (!got) {
            return r;
        }
        forwarded_.fetch_add(1);
        r.result(got->status);
        for (auto const& [k, v] : got->headers) {
            if (k != "connection" && k != "content-length" && k != "transfer-encoding") {
                r.insert(k, v);
            }
        }
        r.body() = got->body;
        return r;
    }

    std::string origin_;
    std::string ca_;
    std::size_t per_second_;
    std::mutex mu_;
    std::deque<std::chrono::steady_clock::time_point> recent_;
    std::atomic<int> refused_{0};
    std::atomic<int> forwarded_{0};
    std::string hold_;
    std::atomic<int> held_{0};
    https_stub stub_;  // last: it calls handle() from its thread until it is destroyed
};

}  // namespace certctrl::test
