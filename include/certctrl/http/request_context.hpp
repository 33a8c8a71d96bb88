#pragma once

#include "certctrl/domain/principal.hpp"
#include "certctrl/http/router.hpp"
#include "certctrl/http/types.hpp"
#include "certctrl/http/websocket.hpp"

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

namespace certctrl::http {

/// Everything a handler knows about the request it serves. Lives for the duration of one request.
struct request_context {
    request& req;
    path_params params;
    std::string request_id;
    std::string client_ip;  // the client's address (X-Forwarded-For is believed only from trusted proxies)
    std::string route;      // matched pattern, e.g. "/apiv1/users/:user_id"
    std::string path;       // decoded path without query
    std::string query;      // raw query string (without '?')
    std::optional<domain::principal> principal;  // set by the access guard on authenticated routes
    /// Set by a handler that answers 101 Switching Protocols: the server performs the WebSocket handshake
    /// and hands the connection to it.
    upgrade_fn upgrade;

    /// Logs with the request id, so every line of a request can be found together.
    template <class... Args>
    void log(spdlog::level::level_enum lvl, spdlog::format_string_t<Args...> fmt, Args&&... args) const {
        if (spdlog::should_log(lvl)) {
            spdlog::log(lvl, "rid={} {}", request_id, fmt::format(fmt, std::forward<Args>(args)...));
        }
    }
};

}  // namespace certctrl::http
