#pragma once

#include "certctrl/core/error.hpp"

#include <boost/asio/awaitable.hpp>

namespace certctrl::repo {

/// The database's schema compared with what this binary knows.
struct schema_state {
    int applied = 0;
    int known = 0;
    bool current = false;  // every known migration applied, nothing newer
};

/// Readiness probes of the storage layer.
class health_repository {
  public:
    virtual ~health_repository() = default;
    /// Reads the applied schema version. Errors: database (unreachable), conflict (edited migration).
    virtual boost::asio::awaitable<result<schema_state>> schema() = 0;
};

}  // namespace certctrl::repo
