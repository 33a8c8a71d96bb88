#pragma once

#include <string>
#include <utility>
#include <vector>

namespace certctrl::service {

/// A zip archive (deflated entries, in the given order) built in memory with libzip.
/// Throws std::runtime_error when libzip fails.
std::string make_zip(std::vector<std::pair<std::string, std::string>> const& entries);

/// The entries of a zip archive (name, content), in archive order. Throws std::runtime_error when it is not
/// a readable zip (used by tests and by nothing on the request path).
std::vector<std::pair<std::string, std::string>> read_zip(std::string const& data);

}  // namespace certctrl::service
