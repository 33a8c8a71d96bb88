#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace certctrl::repo {

/// Which rows of a list to return, newest first. Offset style (`offset`) and cursor style (`before_id`, the
/// id of the last row already seen) both work; queries are keyset (id < before_id) so a deep cursor page
/// costs what the first page costs.
struct page_query {
    std::int64_t offset = 0;
    std::int64_t limit = 100;
    std::optional<std::int64_t> before_id;

    std::int64_t upper_id() const { return before_id.value_or(std::numeric_limits<std::int64_t>::max()); }
};

/// A page of rows (newest first), the total number of rows, and whether more follow.
template <class T>
struct page {
    std::vector<T> items;
    std::int64_t total = 0;
    bool has_more = false;
};

}  // namespace certctrl::repo
