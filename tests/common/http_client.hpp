#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace certctrl::test {

/// A parsed HTTP response as the tests need it.
struct http_response {
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-cased names
    std::string body;
    boost::json::value json() const;  // parsed body (throws when not JSON)
    std::string header(std::string const& name) const;
};

/// Blocking HTTP/1.1 client on 127.0.0.1 that keeps its connection open between requests.
class http_client {
  public:
    explicit http_client(std::uint16_t port);
    ~http_client();
    http_client(http_client const&) = delete;
    http_client& operator=(http_client const&) = delete;

    /// Sends one request; throws on connection errors. `headers` are added as given.
    http_response request(std::string const& method, std::string const& target, std::string const& body = "",
                          std::map<std::string, std::string> const& headers = {});
    http_response get(std::string const& target, std::map<std::string, std::string> const& headers = {}) {
        return request("GET", target, "", headers);
    }

    /// Writes raw bytes to the connection.
    void send_raw(std::string const& bytes);
    /// Reads one response (after send_raw).
    http_response read_response();
    /// True when the server has closed the connection (waits up to `wait`).
    bool closed_by_peer(std::chrono::milliseconds wait);

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// One request on a fresh connection.
http_response http_get(std::uint16_t port, std::string const& target,
                       std::map<std::string, std::string> const& headers = {});

}  // namespace certctrl::test
