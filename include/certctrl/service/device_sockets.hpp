#pragma once
// The device WebSockets open in this instance (agent contract 6.3): at most one per device, each closed
// within about a second once its device is revoked, its session ended or its user disabled.

#include "certctrl/repo/repositories.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

namespace certctrl::service {

/// Close codes of the device WebSocket (docs/operator-guide.md lists them for agents and proxies).
namespace socket_close {
constexpr std::uint16_t going_away = 1001;     // the server is shutting down: reconnect (another instance)
constexpr std::uint16_t protocol = 1008;       // no lifecycle.hello_ack in time, or not JSON
constexpr std::uint16_t token_expired = 4401;  // the access token's exp passed: refresh, then reconnect
constexpr std::uint16_t revoked = 4403;        // device revoked or lost, session ended, user disabled
constexpr std::uint16_t replaced = 4409;       // a newer socket of the same device opened on this instance
}  // namespace socket_close

class device_sockets {
  public:
    /// Closes one socket; it must hand the work to the socket's own executor (called from any thread).
    using closer = std::function<void(std::uint16_t code, std::string reason)>;

    /// `period`: how often the open sockets' sessions are re-checked in the database.
    device_sockets(repo::repositories& r, std::chrono::milliseconds period) : r_(r), period_(period) {}

    /// Registers a socket of `device_id` opened with a token of `session_id`; an older socket of the same
    /// device in this instance is closed (replaced). Returns the socket's handle.
    std::uint64_t open(std::int64_t device_id, std::int64_t session_id, closer close);
    /// Unregisters (the socket ended).
    void closed(std::uint64_t handle);
    std::size_t size() const;

    /// Re-checks every open socket's session in one batched read per period and closes the dead ones (4403).
    /// Runs until the executor stops (co_spawn it once).
    boost::asio::awaitable<void> run();
    /// One round of run(): returns how many sockets were closed. Errors: database (nothing is closed).
    boost::asio::awaitable<result<std::size_t>> check_once();

  private:
    struct entry {
        std::int64_t device_id = 0;
        std::int64_t session_id = 0;
        closer close;
    };
    repo::repositories& r_;
    std::chrono::milliseconds period_;
    mutable std::mutex mu_;
    std::unordered_map<std::uint64_t, entry> open_;
    std::unordered_map<std::int64_t, std::uint64_t> by_device_;
    std::uint64_t next_ = 0;
};

}  // namespace certctrl::service
