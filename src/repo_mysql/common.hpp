#pragma once
// Helpers shared by the MySQL repositories (internal to certctrl_repo_mysql).

#include "certctrl/db/statements.hpp"
#include "certctrl/repo/page.hpp"
#include "certctrl/repo/work.hpp"

#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace certctrl::repo::mysql_detail {

/// The MySQL side of a unit of work: the pooled connection it runs on.
class mysql_work final : public work {
  public:
    explicit mysql_work(sql::Connection& c) : conn_(c) {}
    sql::Connection& connection() const { return conn_; }

  private:
    sql::Connection& conn_;
};

/// The connection behind a unit of work (every `work` a repository is given is a mysql_work).
inline sql::Connection& conn(work& w) {
    return static_cast<mysql_work&>(w).connection();
}

/// A prepared statement: the pool connection's cached one (not owned), or one owned for a connection outside
/// the pool (migrate, command-line tools).
class ps_ptr {
  public:
    explicit ps_ptr(sql::PreparedStatement& cached) : p_(&cached) {}
    explicit ps_ptr(sql::PreparedStatement* owned) : owned_(owned), p_(owned) {}
    sql::PreparedStatement* operator->() const { return p_; }
    sql::PreparedStatement& operator*() const { return *p_; }

  private:
    std::unique_ptr<sql::PreparedStatement> owned_;
    sql::PreparedStatement* p_;
};
using rs_ptr = std::unique_ptr<sql::ResultSet>;

/// The statement for `q` on `c`, prepared once per pool connection and reused (see db::statement_cache: its
/// result set must be gone before the same text runs again).
inline ps_ptr prepare(sql::Connection& c, std::string const& q) {
    if (auto* cache = db::statement_cache::of(c)) {
        return ps_ptr(cache->get(q));
    }
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

/// The first column of every row of `query` (one '?' bound to `arg`), as integers.
inline std::vector<std::int64_t> ids_of(sql::Connection& c, std::string const& query, std::int64_t arg) {
    auto ps = prepare(c, query);
    ps->setInt64(1, arg);
    rs_ptr rs(ps->executeQuery());
    std::vector<std::int64_t> out;
    while (rs->next()) {
        out.push_back(static_cast<std::int64_t>(rs->getInt64(1)));
    }
    return out;
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

/// A condition narrowing a list (e.g. {"acct_id = ?", 7}): one '?' bound to `value`.
/// A condition added to a list's WHERE, with the values of its placeholders in order.
struct row_filter {
    row_filter(std::string c, std::int64_t v) : condition(std::move(c)), values{v} {}
    row_filter(std::string c, std::vector<std::variant<std::int64_t, std::string>> v)
        : condition(std::move(c)), values(std::move(v)) {}
    std::string condition;
    std::vector<std::variant<std::int64_t, std::string>> values;
};

/// Binds a filter's values from placeholder `i` on; returns the next placeholder.
inline unsigned bind_filter(sql::PreparedStatement& ps, unsigned i, std::optional<row_filter> const& f) {
    if (f) {
        for (auto const& v : f->values) {
            if (auto const* n = std::get_if<std::int64_t>(&v)) {
                ps.setInt64(i++, *n);
            } else {
                ps.setString(i++, std::get<std::string>(v));
            }
        }
    }
    return i;
}

/// One page of the rows of `user_id` in `table`, newest first. `table` is a table with an optional alias
/// ("certificates c") or a join whose first table's `user_id` and `id` the columns name unambiguously;
/// `read(ResultSet&)` maps a row of `columns`. Cursor pages are keyset (id < before_id); offset pages of a
/// single table skip through the (user_id, id) index alone and read only the rows they return. The total is
/// counted only when asked for.
template <class T, class Read>
page<T> list_page(sql::Connection& c, std::string const& table, std::string const& columns,
                  std::int64_t user_id, page_query const& q, Read read,
                  std::optional<row_filter> const& filter = std::nullopt) {
    page<T> out;
    std::string const where = " WHERE user_id = ?" + (filter ? " AND " + filter->condition : std::string());
    bool const joined = table.find(" JOIN ") != std::string::npos;
    // The (first) table's name, and what names it in the query: its alias ("certificates c") or itself.
    auto const space = table.find(' ');
    std::string const base = table.substr(0, space);
    std::string alias = base;
    if (space != std::string::npos) {
        auto const next = table.find(' ', space + 1);
        std::string const word = table.substr(space + 1, next == std::string::npos ? next : next - space - 1);
        if (word != "JOIN") {
            alias = word;
        }
    }
    if (q.with_total) {
        auto cnt = prepare(c, "SELECT COUNT(*) FROM " + table + where);
        cnt->setInt64(1, user_id);
        bind_filter(*cnt, 2, filter);
        rs_ptr crs(cnt->executeQuery());
        crs->next();
        out.total = static_cast<std::int64_t>(crs->getInt64(1));
    }
    std::string query;
    bool const deferred = q.offset > 0 && !joined;
    if (deferred) {
        // The skipped rows are read from the index only; the full rows are fetched for the page alone.
        query = "SELECT " + columns + " FROM " + table + " JOIN (SELECT id AS page_id FROM " + base + where +
                " AND id < ? ORDER BY id DESC LIMIT ? OFFSET ?) page_ids ON page_ids.page_id = " + alias +
                ".id ORDER BY " + alias + ".id DESC";
    } else {
        query = "SELECT " + columns + " FROM " + table + where + " AND " + alias + ".id < ? ORDER BY " +
                alias + ".id DESC LIMIT ? OFFSET ?";
    }
    auto ps = prepare(c, query);
    unsigned i = 1;
    ps->setInt64(i++, user_id);
    i = bind_filter(*ps, i, filter);
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
