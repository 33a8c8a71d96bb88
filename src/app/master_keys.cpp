// The master keys against the database at start (master_key_checks, V018): see app_internal.hpp.
#include "app_internal.hpp"
#include "certctrl/app/application.hpp"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace certctrl::app::detail {

int check_master_keys(db::pool const& pool, crypto::keyring const& keys) {
    constexpr std::string_view plain = "certctrl master key check";
    auto context = [](std::uint32_t v) { return "master_key_checks." + std::to_string(v); };
    if (keys.empty()) {
        return exit_ok;  // nothing sealed can be opened or made without one; the config check says so
    }
    try {
        auto conn = pool.connect();
        std::map<std::uint32_t, std::string> stored;
        {
            std::unique_ptr<sql::Statement> st(conn->createStatement());
            std::unique_ptr<sql::ResultSet> rs(
                st->executeQuery("SELECT version, check_blob FROM master_key_checks"));
            while (rs->next()) {
                stored[static_cast<std::uint32_t>(rs->getUInt(1))] = rs->getString(2);
            }
        }
        std::uint32_t const current = keys.current_version();
        if (!stored.empty() && stored.rbegin()->first > current) {
            spdlog::critical(
                "crypto: this database holds secrets sealed under master key version {}, above the "
                "configured current version {}: configure that key (crypto.master_key_version) and "
                "start again",
                stored.rbegin()->first, current);
            return exit_usage;
        }
        for (auto const v : keys.versions()) {
            auto it = stored.find(v);
            if (it == stored.end()) {
                continue;
            }
            auto opened = keys.open(it->second, context(v));
            if (!opened || *opened != plain) {
                spdlog::critical(
                    "crypto: the configured master key version {} is not the key this database's "
                    "secrets were sealed with (a restore with another key, or a wrong key file?); "
                    "refusing to start",
                    v);
                return exit_usage;
            }
        }
        if (!stored.contains(current)) {
            std::unique_ptr<sql::PreparedStatement> ps(conn->prepareStatement(
                "INSERT IGNORE INTO master_key_checks (version, check_blob, created_at) VALUES (?, ?, ?)"));
            ps->setUInt(1, current);
            std::string const blob = keys.seal(plain, context(current));
            ps->setString(2, blob);
            ps->setInt64(3, static_cast<std::int64_t>(std::time(nullptr)));
            ps->executeUpdate();
        }
        return exit_ok;
    } catch (sql::SQLException const& e) {
        if (e.getErrorCode() == 1146) {  // ER_NO_SUCH_TABLE: migrations pending; /ready says so
            spdlog::warn("crypto: the master key is not checked until the schema is migrated");
            return exit_ok;
        }
        spdlog::critical("crypto: checking the master key against the database failed: {} (error {})",
                         e.what(), e.getErrorCode());
        return exit_failure;
    }
}

}  // namespace certctrl::app::detail
