#pragma once
// Certificate list items kept as the JSON text they were rendered to, by certificate id and row version.

#include "certctrl/domain/certificate.hpp"
#include "certctrl/repo/resources.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace certctrl::handlers {

/// List items (certificates without PEM texts) rendered as JSON text. A list reads the (id, row_version)
/// pairs of its page and renders only the rows this cache has no text of at that version, so an item is
/// never older than the row a list reads: several instances stay exact without telling each other anything.
/// `status` depends on the time and is written when the item is, from the kept `not_after`. Safe for
/// concurrent use; holds at most `capacity` items (past that it starts over).
class rendered_certificates {
  public:
    struct item {
        std::int64_t row_version = 0;
        std::string head;  // the members before "status"
        std::string tail;  // the members after it
        bool has_certificate = false;
        std::int64_t not_after = 0;
    };
    using item_ptr = std::shared_ptr<item const>;

    explicit rendered_certificates(std::size_t capacity = 16384) : capacity_(capacity == 0 ? 1 : capacity) {}

    /// The text of certificate `v.id` rendered at row version `v.row_version`, if kept.
    item_ptr find(repo::cert_version const& v) const;
    /// Renders `c` (read without PEM texts) and keeps it under its id and row version.
    item_ptr put(domain::certificate const& c);
    /// Appends `it` as one JSON object (status as of `now`, Unix seconds).
    static void append(std::string& out, item const& it, std::int64_t now);

    std::size_t size() const;
    std::uint64_t hits() const { return hits_; }
    std::uint64_t misses() const { return misses_; }

  private:
    std::size_t capacity_;
    mutable std::mutex mu_;
    std::unordered_map<std::int64_t, item_ptr> items_;
    mutable std::atomic<std::uint64_t> hits_{0};
    mutable std::atomic<std::uint64_t> misses_{0};
};

}  // namespace certctrl::handlers
