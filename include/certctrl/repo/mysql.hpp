#pragma once

#include "certctrl/repo/health_repository.hpp"

#include <memory>

namespace certctrl::db {
class pool;
}

namespace certctrl::repo {

/// MySQL implementations of the repository interfaces; the pool must outlive them.
std::unique_ptr<health_repository> make_mysql_health_repository(db::pool& pool);

}  // namespace certctrl::repo
