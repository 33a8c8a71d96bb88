#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace certctrl::repo {

/// Offsets beyond this are refused (400): a deep page is reached with the cursor, which costs what the first
/// page costs, instead of reading and discarding every row before it.
constexpr std::int64_t max_page_offset = 10000;

/// Which rows of a list to return, newest first. Offset style (`offset`) and cursor style (`before_id`, the
/// id of the last row already seen) both work; cursor pages are keyset (id < before_id), so a deep cursor
/// page costs what the first page costs. The total number of rows is counted only when `with_total` is set.
struct page_query {
    std::int64_t offset = 0;
    std::int64_t limit = 100;
    std::optional<std::int64_t> before_id;
    bool with_total = false;

    std::int64_t upper_id() const { return before_id.value_or(std::numeric_limits<std::int64_t>::max()); }
};

/// A page of rows (newest first), whether more follow, and the total when it was asked for.
template <class T>
struct page {
    std::vector<T> items;
    std::optional<std::int64_t> total;
    bool has_more = false;
};

}  // namespace certctrl::repo
