#pragma once

#include <cstdint>
#include <vector>

namespace certctrl::repo {

/// A page of rows (newest first) and the total number of rows.
template <class T>
struct page {
    std::vector<T> items;
    std::int64_t total = 0;
};

}  // namespace certctrl::repo
