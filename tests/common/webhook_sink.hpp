#pragma once
// A webhook receiver for tests: an HTTPS server that answers 204 and keeps every event body it received.
#include "https_stub.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/crypto/random.hpp"

#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace certctrl::test {

// Checks a Standard Webhooks signature header against `secret` ("whsec_..."), independently of the server's
// code: HMAC-SHA256 over "<id>.<timestamp>.<body>" under the base64-decoded secret, any "v1," entry.
inline bool signature_valid(std::string const& secret, https_stub::request const& req) {
    auto key = base64_decode(secret.substr(6));
    if (!key || secret.rfind("whsec_", 0) != 0) {
        return false;
    }
    std::string const id(req["webhook-id"]);
    std::string const ts(req["webhook-timestamp"]);
    std::string const expected =
        "v1," + base64_encode(crypto::hmac_sha256(*key, id + "." + ts + "." + req.body()));
    std::string const header(req["webhook-signature"]);
    std::size_t pos = 0;
    while (pos <= header.size()) {
        auto const end = std::min(header.find(' ', pos), header.size());
        if (crypto::constant_time_equal(header.substr(pos, end - pos), expected)) {
            return true;
        }
        pos = end + 1;
    }
    return false;
}

class webhook_sink {
  public:
    /// Listens on 127.0.0.1; writes the root to trust (webhooks.ca_file) to `root_file`.
    explicit webhook_sink(std::filesystem::path const& root_file)
        : stub_(root_file, [this](https_stub::request const& req) {
              std::lock_guard lock(mu_);
              events_.push_back(boost::json::parse(req.body()).as_object());
              requests_.push_back(req);
              https_stub::response res;
              res.result(boost::beast::http::status::no_content);
              return res;
          }) {}

    std::string url(std::string const& path) const { return stub_.url(path); }

    /// The events received so far, once at least `n` arrived or `limit` passed.
    std::vector<boost::json::object> wait(std::size_t n,
                                          std::chrono::seconds limit = std::chrono::seconds(10)) {
        auto const until = std::chrono::steady_clock::now() + limit;
        for (;;) {
            {
                std::lock_guard lock(mu_);
                if (events_.size() >= n || std::chrono::steady_clock::now() >= until) {
                    return events_;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
    /// The events received so far.
    std::vector<boost::json::object> events() const {
        std::lock_guard lock(mu_);
        return events_;
    }

    /// How many of the events received so far do not carry a valid signature under `secret`.
    std::size_t not_signed_by(std::string const& secret) const {
        std::lock_guard lock(mu_);
        return static_cast<std::size_t>(std::count_if(
            requests_.begin(), requests_.end(), [&](auto const& r) { return !signature_valid(secret, r); }));
    }

  private:
    mutable std::mutex mu_;
    std::vector<boost::json::object> events_;
    std::vector<https_stub::request> requests_;
    https_stub stub_;  // last: its thread stops before the members it calls into go
};

}  // namespace certctrl::test
