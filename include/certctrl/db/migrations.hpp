#pragma once

#include "certctrl/core/error.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace sql {
class Connection;
}

namespace certctrl::db {

/// One forward-only migration: `V<version>__<name>.sql`, its SHA-256 and its text.
struct migration {
    std::string file_name;
    std::string sha256;
    std::string sql;

    /// The number after `V` in the file name (0 when the name is malformed).
    int version() const;
    /// True when the file has a line `-- certctrl: older binaries keep working`: its author says binaries
    /// that do not know it can go on serving on the schema it leaves (an added table, or a column with a
    /// default), so an upgrade can run old and new instances side by side. Without the line it breaks them.
    bool keeps_older_binaries() const;
};

/// The migrations compiled into this binary from sql/, in version order (generated at build time).
std::vector<migration> const& embedded_migrations();

/// The highest version compiled in.
int latest_known_version();

/// Splits a SQL script into statements at top-level `;`, skipping comments and honouring quotes.
std::vector<std::string> split_statements(std::string_view script);

/// What the schema looks like compared with this binary.
struct schema_status {
    int applied = 0;  // highest applied version (0: none)
    int known = 0;    // highest version this binary knows
    std::vector<std::string> pending;
    bool newer_breaks = false;  // an applied version above `known` was not marked as keeping older binaries
    bool newer_than_known() const { return applied > known; }
    bool current() const { return applied == known && pending.empty(); }
    /// This binary can serve on the schema: current, or newer only by migrations that keep it working.
    bool usable() const {
        return pending.empty() && (applied == known || (applied > known && !newer_breaks));
    }
    /// For a schema newer than this binary: the versions, and whether its newer migrations keep it working.
    std::string newer_text() const;
};

/// Reads schema_migrations (absent table: nothing applied) and checks applied files' checksums.
/// Errors: conflict when an applied migration's checksum differs from the compiled-in file.
result<schema_status> check_schema(sql::Connection& conn);

/// Applies every pending migration in order under a named lock (so concurrent servers don't race) and
/// records each in schema_migrations, with whether it keeps older binaries working. Refuses (conflict) a
/// schema newer than this binary.
/// Returns the file names applied.
result<std::vector<std::string>> migrate(sql::Connection& conn);

}  // namespace certctrl::db
