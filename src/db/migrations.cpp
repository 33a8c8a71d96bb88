#include "certctrl/db/migrations.hpp"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>

namespace certctrl::db {

int migration::version() const {
    if (file_name.size() < 2 || file_name[0] != 'V') {
        return 0;
    }
    int v = 0;
    auto const* begin = file_name.data() + 1;
    auto [ptr, ec] = std::from_chars(begin, file_name.data() + file_name.size(), v);
    std::string_view const rest(ptr, static_cast<std::size_t>(file_name.data() + file_name.size() - ptr));
    if (ec != std::errc{} || ptr == begin || !rest.starts_with("__")) {
        return 0;
    }
    return v;
}

bool migration::keeps_older_binaries() const {
    constexpr std::string_view marker = "-- certctrl: older binaries keep working";
    for (std::size_t at = 0; at < sql.size();) {
        auto end = sql.find('\n', at);
        end = end == std::string::npos ? sql.size() : end;
        std::string_view line(sql.data() + at, end - at);
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
            line.remove_suffix(1);
        }
        if (line == marker) {
            return true;
        }
        at = end + 1;
    }
    return false;
}

std::string schema_status::newer_text() const {
    return "database schema version " + std::to_string(applied) + " is newer than this binary knows (" +
           std::to_string(known) +
           (newer_breaks ? ") and a newer migration does not keep older binaries working"
                         : "); its newer migrations keep older binaries working");
}

int latest_known_version() {
    int v = 0;
    for (auto const& m : embedded_migrations()) {
        v = std::max(v, m.version());
    }
    return v;
}

std::vector<std::string> split_statements(std::string_view s) {
    std::vector<std::string> out;
    std::string cur;
    auto flush = [&] {
        auto b = cur.find_first_not_of(" \t\r\n");
        if (b != std::string::npos) {
            auto e = cur.find_last_not_of(" \t\r\n");
            out.push_back(cur.substr(b, e - b + 1));
        }
        cur.clear();
    };
    for (std::size_t i = 0; i < s.size(); ++i) {
        char const c = s[i];
        bool const dash_comment = c == '-' && i + 1 < s.size() && s[i + 1] == '-' &&
                                  (i + 2 == s.size() || s[i + 2] == ' ' || s[i + 2] == '\t' ||
                                   s[i + 2] == '\n' || s[i + 2] == '\r');
        if (dash_comment) {
            while (i < s.size() && s[i] != '\n')
                ++i;
            cur += '\n';
        } else if (c == '#') {
            while (i < s.size() && s[i] != '\n')
                ++i;
            cur += '\n';
        } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
            i += 2;
            while (i + 1 < s.size() && !(s[i] == '*' && s[i + 1] == '/'))
                ++i;
            ++i;
            cur += ' ';
        } else if (c == '\'' || c == '"' || c == '`') {
            cur += c;
            for (++i; i < s.size(); ++i) {
                cur += s[i];
                if (s[i] == '\\' && c != '`' && i + 1 < s.size()) {
                    cur += s[++i];
                } else if (s[i] == c) {
                    if (i + 1 < s.size() && s[i + 1] == c) {  // doubled quote inside the literal
                        cur += s[++i];
                    } else {
                        break;
                    }
                }
            }
        } else if (c == ';') {
            flush();
        } else {
            cur += c;
        }
    }
    flush();
    return out;
}

namespace {

constexpr char const* create_table_sql =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INT NOT NULL PRIMARY KEY,"
    " file_name VARCHAR(255) NOT NULL,"
    " sha256 CHAR(64) NOT NULL,"
    " applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " breaks_older TINYINT NOT NULL DEFAULT 1"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

// Tables made before breaks_older existed get it; their rows (and rows written by binaries that do not know
// it) count as breaking, which only matters to binaries older than them.
constexpr char const* add_breaks_older_sql =
    "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS breaks_older TINYINT NOT NULL DEFAULT 1";

bool table_exists(sql::Connection& conn) {
    std::unique_ptr<sql::Statement> st(conn.createStatement());
    std::unique_ptr<sql::ResultSet> rs(
        st->executeQuery("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND "
                         "table_name = 'schema_migrations'"));
    return rs->next() && rs->getInt(1) > 0;
}

struct applied_migration {
    std::string sha256;
    bool breaks_older = true;
};

bool has_breaks_older(sql::Connection& conn) {
    std::unique_ptr<sql::Statement> st(conn.createStatement());
    std::unique_ptr<sql::ResultSet> rs(st->executeQuery(
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND "
        "table_name = 'schema_migrations' AND column_name = 'breaks_older'"));
    return rs->next() && rs->getInt(1) > 0;
}

// version -> what is recorded of every applied migration.
std::map<int, applied_migration> applied_versions(sql::Connection& conn) {
    std::map<int, applied_migration> out;
    if (!table_exists(conn)) {
        return out;
    }
    bool const marked = has_breaks_older(conn);
    std::unique_ptr<sql::Statement> st(conn.createStatement());
    std::unique_ptr<sql::ResultSet> rs(
        st->executeQuery(marked ? "SELECT version, sha256, breaks_older FROM schema_migrations"
                                : "SELECT version, sha256, 1 FROM schema_migrations"));
    while (rs->next()) {
        out[rs->getInt(1)] = applied_migration{rs->getString(2), rs->getInt(3) != 0};
    }
    return out;
}

result<schema_status> status_from(std::map<int, applied_migration> const& applied) {
    schema_status st;
    st.known = latest_known_version();
    st.applied = applied.empty() ? 0 : applied.rbegin()->first;
    for (auto it = applied.upper_bound(st.known); it != applied.end(); ++it) {
        st.newer_breaks = st.newer_breaks || it->second.breaks_older;
    }
    for (auto const& m : embedded_migrations()) {
        auto it = applied.find(m.version());
        if (it == applied.end()) {
            st.pending.push_back(m.file_name);
        } else if (it->second.sha256 != m.sha256) {
            return make_error(errc::conflict, "applied migration " + m.file_name +
                                                  " differs from the one in this binary (migrations are "
                                                  "forward-only: add a new one instead of editing)");
        }
    }
    return st;
}

// Holds a MySQL named lock for its lifetime.
class named_lock {
  public:
    named_lock(sql::Connection& conn, std::string name) : conn_(conn), name_(std::move(name)) {
        std::unique_ptr<sql::PreparedStatement> ps(conn_.prepareStatement("SELECT GET_LOCK(?, 60)"));
        ps->setString(1, name_);
        std::unique_ptr<sql::ResultSet> rs(ps->executeQuery());
        held_ = rs->next() && !rs->isNull(1) && rs->getInt(1) == 1;
    }
    ~named_lock() {
        if (!held_)
            return;
        try {
            std::unique_ptr<sql::PreparedStatement> ps(conn_.prepareStatement("SELECT RELEASE_LOCK(?)"));
            ps->setString(1, name_);
            std::unique_ptr<sql::ResultSet> rs(ps->executeQuery());
        } catch (sql::SQLException const&) {
            // The lock goes with the connection anyway.
        }
    }
    named_lock(named_lock const&) = delete;
    named_lock& operator=(named_lock const&) = delete;
    bool held() const { return held_; }

  private:
    sql::Connection& conn_;
    std::string name_;
    bool held_ = false;
};

}  // namespace

result<schema_status> check_schema(sql::Connection& conn) {
    return status_from(applied_versions(conn));
}

result<std::vector<std::string>> migrate(sql::Connection& conn) {
    // MySQL limits lock names to 64 characters; a truncated name only serialises unrelated schemas.
    named_lock lock(conn, ("certctrl.migrate." + std::string(conn.getSchema())).substr(0, 64));
    if (!lock.held()) {
        return make_error(errc::unavailable, "another process holds the migration lock");
    }
    {
        std::unique_ptr<sql::Statement> st(conn.createStatement());
        st->execute(create_table_sql);
        st->execute(add_breaks_older_sql);
    }
    auto status = status_from(applied_versions(conn));
    if (!status) {
        return status.error();
    }
    if (status->newer_than_known()) {
        if (status->usable()) {
            // A newer binary migrated; every migration it applied keeps this one working (side by side).
            spdlog::info("{}", status->newer_text());
            return std::vector<std::string>{};
        }
        return make_error(errc::conflict, status->newer_text());
    }
    std::vector<std::string> done;
    for (auto const& m : embedded_migrations()) {
        if (std::find(status->pending.begin(), status->pending.end(), m.file_name) == status->pending.end()) {
            continue;
        }
        spdlog::info("applying migration {}", m.file_name);
        std::unique_ptr<sql::Statement> st(conn.createStatement());
        for (auto const& stmt : split_statements(m.sql)) {
            st->execute(stmt);
        }
        std::unique_ptr<sql::PreparedStatement> ps(conn.prepareStatement(
            "INSERT INTO schema_migrations (version, file_name, sha256, breaks_older) VALUES (?, ?, ?, ?)"));
        ps->setInt(1, m.version());
        ps->setString(2, m.file_name);
        ps->setString(3, m.sha256);
        ps->setInt(4, m.keeps_older_binaries() ? 0 : 1);
        ps->executeUpdate();
        done.push_back(m.file_name);
    }
    return done;
}

}  // namespace certctrl::db
