#pragma once
// Prepared statements kept per pooled connection, and the connection's transaction state (seen only by the
// MySQL side: certctrl_db and certctrl_repo_mysql).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace sql {
class Connection;
class PreparedStatement;
class Statement;
}  // namespace sql

namespace certctrl::db {

/// The statements prepared on one connection, by SQL text. Each is prepared on first use and reused after,
/// so a query costs one round trip (execute) instead of three (prepare, execute, close). The cache goes with
/// its connection: a pool thread drops both together when the connection is lost. A statement's result set
/// must be destroyed before the same text is executed again.
class statement_cache {
  public:
    /// At most `capacity` statements are kept; past that the cache starts over (texts are a fixed set in
    /// practice, so this only bounds a bug that builds SQL from values).
    explicit statement_cache(sql::Connection& c, std::size_t capacity = 512);
    ~statement_cache();
    statement_cache(statement_cache const&) = delete;
    statement_cache& operator=(statement_cache const&) = delete;

    /// The statement for `text`, prepared now if it is new. Throws sql::SQLException.
    sql::PreparedStatement& get(std::string const& text);
    /// A plain (text protocol) statement for commands such as START TRANSACTION. Throws sql::SQLException.
    sql::Statement& plain();

    sql::Connection& connection() const { return conn_; }
    std::size_t size() const { return map_.size(); }
    /// Statements prepared since the cache was made (reuse does not count).
    std::uint64_t prepares() const { return prepares_; }

    /// True between begin() and commit()/rollback() on this connection.
    bool in_transaction() const { return in_tx_; }
    void set_in_transaction(bool v) { in_tx_ = v; }

    /// The cache of the pool connection the calling thread is running a job on, if `c` is that connection;
    /// nullptr otherwise (a connection of migrate or of a command-line tool).
    static statement_cache* of(sql::Connection& c);
    /// Makes `cache` the calling thread's current cache (nullptr: none). Used by the pool threads.
    static void set_current(statement_cache* cache);

  private:
    sql::Connection& conn_;
    std::size_t capacity_;
    std::unordered_map<std::string, std::unique_ptr<sql::PreparedStatement>> map_;
    std::unique_ptr<sql::Statement> plain_;
    std::uint64_t prepares_ = 0;
    bool in_tx_ = false;
};

/// START TRANSACTION on `c` (autocommit stays on outside it: one round trip each way instead of the three
/// of setAutoCommit/commit/setAutoCommit). Throws sql::SQLException.
void begin_transaction(sql::Connection& c);
/// COMMIT. Throws sql::SQLException.
void commit_transaction(sql::Connection& c);
/// ROLLBACK; never throws (a broken connection is dropped by the pool).
void rollback_transaction(sql::Connection& c) noexcept;

}  // namespace certctrl::db
