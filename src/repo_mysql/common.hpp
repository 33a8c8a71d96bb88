#pragma once
// Helpers shared by the MySQL repositories (internal to certctrl_repo_mysql).

#include "certctrl/repo/page.hpp"

#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <optional>
#include <string>

namespace certctrl::repo::mysql_detail {

using ps_ptr = std::unique_ptr<sql::PreparedStatement>;
using rs_ptr = std::unique_ptr<sql::ResultSet>;

inline ps_ptr prepare(sql::Connection& c, std::string const& q) {
    return ps_ptr(c.prepareStatement(q));
}

/// Binds `v` or SQL NULL.
template <class T>
inline void set_optional(sql::PreparedStatement& ps, unsigned i, std::optional<T> const& v) {
    if (!v) {
        ps.setNull(i, 0);
    } else if constexpr (std::is_same_v<T, std::string>) {
        ps.setString(i, *v);
    } else {
        ps.setInt64(i, *v);
    }
}

inline std::optional<std::string> opt_string(sql::ResultSet& rs, unsigned i) {
    if (rs.isNull(i))
        return std::nullopt;
    return std::string(rs.getString(i));
}

inline std::optional<std::int64_t> opt_int(sql::ResultSet& rs, unsigned i) {
    if (rs.isNull(i))
        return std::nullopt;
    return static_cast<std::int64_t>(rs.getInt64(i));
}

inline void bind(sql::PreparedStatement& ps, unsigned i, std::int64_t v) {
    ps.setInt64(i, v);
}
inline void bind(sql::PreparedStatement& ps, unsigned i, std::string const& v) {
    ps.setString(i, v);
}

/// The first row of `query` (its `?` bound to `args` in order) mapped by `read`, or nothing.
template <class T, class Read, class... Args>
std::optional<T> find_one(sql::Connection& c, std::string const& query, Read read, Args const&... args) {
    auto ps = prepare(c, query);
    unsigned i = 1;
    (bind(*ps, i++, args), ...);
    rs_ptr rs(ps->executeQuery());
    if (!rs->next()) {
        return std::nullopt;
    }
    return read(*rs);
}

/// The id the last INSERT on this connection generated.
inline std::int64_t last_insert_id(sql::Connection& c) {
    auto ps = prepare(c, "SELECT LAST_INSERT_ID()");
    rs_ptr rs(ps->executeQuery());
    rs->next();
    return static_cast<std::int64_t>(rs->getInt64(1));
}

/// True when `table` has the row `id` owned by `user_id`.
inline bool owned_row_exists(sql::Connection& c, std::string const& table, std::int64_t user_id,
                             std::int64_t id) {
    auto ps = prepare(c, "SELECT COUNT(*) FROM " + table + " WHERE user_id = ? AND id = ?");
    ps->setInt64(1, user_id);
    ps->setInt64(2, id);
    rs_ptr rs(ps->executeQuery());
    rs->next();
    return rs->getInt64(1) > 0;
}

/// Deletes the row `id` of `table` owned by `user_id`; false when there was none. Throws sql::SQLException
/// (FK 1451 -> conflict) when other rows still reference it.
inline bool delete_owned_row(sql::Connection& c, std::string const& table, std::int64_t user_id,
                             std::int64_t id) {
    auto ps = prepare(c, "DELETE FROM " + table + " WHERE user_id = ? AND id = ?");
    ps->setInt64(1, user_id);
    ps->setInt64(2, id);
    return ps->executeUpdate() > 0;
}

/// One page of the rows of `user_id` in `table` (which may carry an alias, e.g. "api_keys k"), newest first,
/// keyset on id (so a deep cursor page costs what the first costs), with the total and whether more follow.
/// `read(ResultSet&)` maps a row of `columns`. `filter` narrows the rows further (e.g. {"acct_id = ?", 7});
/// the table may be a join as long as `user_id` and `id` name the listed table's columns unambiguously.
struct row_filter {
    std::string condition;  // with one '?'
    std::int64_t value = 0;
};

template <class T, class Read>
page<T> list_page(sql::Connection& c, std::string const& table, std::string const& columns,
                  std::int64_t user_id, page_query const& q, Read read,
                  std::optional<row_filter> const& filter = std::nullopt) {
    page<T> out;
    std::string const where = " WHERE user_id = ?" + (filter ? " AND " + filter->condition : std::string());
    auto cnt = prepare(c, "SELECT COUNT(*) FROM " + table + where);
    cnt->setInt64(1, user_id);
    if (filter) {
        cnt->setInt64(2, filter->value);
    }
    rs_ptr crs(cnt->executeQuery());
    crs->next();
    out.total = static_cast<std::int64_t>(crs->getInt64(1));
    auto ps = prepare(
        c, "SELECT " + columns + " FROM " + table + where + " AND id < ? ORDER BY id DESC LIMIT ? OFFSET ?");
    unsigned i = 1;
    ps->setInt64(i++, user_id);
    if (filter) {
        ps->setInt64(i++, filter->value);
    }
    ps->setInt64(i++, q.upper_id());
    ps->setInt64(i++, q.limit + 1);  // one more tells whether another page follows
    ps->setInt64(i++, q.offset);
    rs_ptr rs(ps->executeQuery());
    while (rs->next()) {
        out.items.push_back(read(*rs));
    }
    if (static_cast<std::int64_t>(out.items.size()) > q.limit) {
        out.items.resize(static_cast<std::size_t>(q.limit));
        out.has_more = true;
    }
    return out;
}

}  // namespace certctrl::repo::mysql_detail
