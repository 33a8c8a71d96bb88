#include "certctrl/db/statements.hpp"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/statement.h>

namespace certctrl::db {

namespace {

thread_local statement_cache* current_cache = nullptr;

// Runs a transaction command on `c`, with the cached plain statement when `c` is a pool connection.
void command(sql::Connection& c, char const* text) {
    if (auto* cache = statement_cache::of(c)) {
        cache->plain().execute(text);
        return;
    }
    std::unique_ptr<sql::Statement> st(c.createStatement());
    st->execute(text);
}

}  // namespace

statement_cache::statement_cache(sql::Connection& c, std::size_t capacity) : conn_(c), capacity_(capacity) {}

statement_cache::~statement_cache() = default;

sql::PreparedStatement& statement_cache::get(std::string const& text) {
    auto it = map_.find(text);
    if (it != map_.end()) {
        return *it->second;
    }
    if (map_.size() >= capacity_) {
        map_.clear();
    }
    std::unique_ptr<sql::PreparedStatement> ps(conn_.prepareStatement(text));
    ++prepares_;
    return *map_.emplace(text, std::move(ps)).first->second;
}

sql::Statement& statement_cache::plain() {
    if (!plain_) {
        plain_.reset(conn_.createStatement());
    }
    return *plain_;
}

statement_cache* statement_cache::of(sql::Connection& c) {
    return current_cache != nullptr && &current_cache->connection() == &c ? current_cache : nullptr;
}

void statement_cache::set_current(statement_cache* cache) {
    current_cache = cache;
}

void begin_transaction(sql::Connection& c) {
    command(c, "START TRANSACTION");
    if (auto* cache = statement_cache::of(c)) {
        cache->set_in_transaction(true);
    }
}

void commit_transaction(sql::Connection& c) {
    command(c, "COMMIT");
    if (auto* cache = statement_cache::of(c)) {
        cache->set_in_transaction(false);
    }
}

void rollback_transaction(sql::Connection& c) noexcept {
    try {
        command(c, "ROLLBACK");
    } catch (...) {  // the pool drops a connection that failed
    }
    if (auto* cache = statement_cache::of(c)) {
        cache->set_in_transaction(false);
    }
}

}  // namespace certctrl::db
