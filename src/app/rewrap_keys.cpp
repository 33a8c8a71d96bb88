// certctrl-server rewrap-keys: every secret re-sealed under the current master key version and bound to its
// row (compare-and-swap writes), and the configured keyring the server itself uses.
#include "certctrl/app/application.hpp"

#include "app_internal.hpp"

#include "certctrl/core/hex.hpp"
#include "certctrl/service/acme_accounts.hpp"
#include "certctrl/service/dns_providers.hpp"
#include "certctrl/service/issuance.hpp"
#include "certctrl/service/resources.hpp"
#include "certctrl/service/webhooks.hpp"
#include "certctrl/worker/jobs.hpp"

#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace certctrl::app {

namespace detail {

crypto::keyring make_keyring(config::config const& cfg) {
    crypto::keyring keys;
    for (auto const& [version, key] : cfg.crypto.retired_master_keys) {
        keys.add(version, key);
    }
    if (!cfg.crypto.master_key.empty()) {
        keys.add(cfg.crypto.master_key_version, cfg.crypto.master_key);
    }
    return keys;
}

}  // namespace detail

using detail::make_keyring;
using detail::prepare_schema;

int rewrap_keys(config::config const& cfg) {
    if (cfg.crypto.master_key.empty()) {
        std::cerr
            << "certctrl-server: rewrap-keys needs the (new) master key (crypto.master_key_env / file)\n";
        return exit_usage;
    }
    crypto::keyring const keys = make_keyring(cfg);
    std::uint32_t const current = keys.current_version();
    db::pool pool(cfg.database);
    if (int rc = prepare_schema(pool, false); rc != exit_ok) {
        return rc;
    }
    auto conn = pool.connect();
    std::size_t data_keys = 0;
    std::size_t secrets = 0;
    std::vector<std::string> failures;
    {
        std::unique_ptr<sql::PreparedStatement> q(conn->prepareStatement(
            "SELECT cert_id, key_version, wrapped_data_key, nonce, tag FROM certificate_master_wrapped WHERE "
            "key_version <> ?"));
        q->setInt(1, static_cast<int>(current));
        std::unique_ptr<sql::ResultSet> rs(q->executeQuery());
        while (rs->next()) {
            std::int64_t const cert_id = rs->getInt64(1);
            crypto::wrapped_key old{static_cast<std::uint32_t>(rs->getInt(2)),
                                    {std::string(rs->getString(4)), std::string(rs->getString(3)),
                                     std::string(rs->getString(5))}};
            std::string const context = service::issuance_service::data_key_context(cert_id);
            auto data_key = keys.unwrap(old, context);
            if (!data_key) {
                failures.push_back("certificate " + std::to_string(cert_id) + " (data key version " +
                                   std::to_string(old.version) + ")");
                continue;
            }
            auto fresh = keys.wrap(*data_key, context);
            std::unique_ptr<sql::PreparedStatement> u(
                conn->prepareStatement("UPDATE certificate_master_wrapped SET key_version = ?, "
                                       "wrapped_data_key = ?, nonce = ?, tag = ? "
                                       "WHERE cert_id = ? AND key_version = ?"));
            u->setInt(1, static_cast<int>(fresh.version));
            u->setString(2, fresh.box.ciphertext);
            u->setString(3, fresh.box.nonce);
            u->setString(4, fresh.box.tag);
            u->setInt64(5, cert_id);
            u->setInt(6, static_cast<int>(old.version));
            data_keys += u->executeUpdate();
        }
    }
    // Every secret ends sealed under the current version and bound to its row; secrets of older releases
    // (bound to their user only) open under the legacy context and are bound now.
    struct sealed_column {
        char const* table;
        char const* column;
        std::string (*context)(std::int64_t user_id, std::int64_t id);
        std::string (*legacy)(std::int64_t user_id);
    };
    using accounts = service::acme_account_service;
    static sealed_column const columns[] = {
        {"acme_accounts", "enc_account_key",
         [](std::int64_t u, std::int64_t id) { return accounts::seal_context(u, "key", id); },
         [](std::int64_t u) { return accounts::legacy_seal_context(u, "key"); }},
        {"acme_accounts", "enc_eab_hmac",
         [](std::int64_t u, std::int64_t id) { return accounts::seal_context(u, "eab", id); },
         [](std::int64_t u) { return accounts::legacy_seal_context(u, "eab"); }},
        {"cas", "enc_private_key",
         [](std::int64_t u, std::int64_t id) { return service::ca_service::seal_context(u, id); },
         [](std::int64_t u) { return service::ca_service::legacy_seal_context(u); }},
        {"dns_providers", "enc_credentials",
         [](std::int64_t u, std::int64_t id) { return service::dns_provider_service::seal_context(u, id); },
         [](std::int64_t u) { return service::dns_provider_service::legacy_seal_context(u); }},
        // Webhook secrets were bound to their row from the start: no legacy context.
        {"webhooks", "enc_secret",
         [](std::int64_t u, std::int64_t id) { return service::webhook_service::secret_context(u, id); },
         [](std::int64_t) { return std::string(); }},
        {"webhooks", "enc_previous_secret",
         [](std::int64_t u, std::int64_t id) {
             return service::webhook_service::previous_secret_context(u, id);
         },
         [](std::int64_t) { return std::string(); }},
    };
    for (auto const& col : columns) {
        std::unique_ptr<sql::Statement> st(conn->createStatement());
        std::unique_ptr<sql::ResultSet> rs(st->executeQuery(std::string("SELECT id, user_id, ") + col.column +
                                                            " FROM " + col.table + " WHERE " + col.column +
                                                            " IS NOT NULL"));
        while (rs->next()) {
            std::string const blob = rs->getString(3);
            std::int64_t const id = rs->getInt64(1);
            std::string const context = col.context(rs->getInt64(2), id);
            if (crypto::keyring::version_of(blob) == current && keys.open(blob, context)) {
                continue;  // current and bound to its row already
            }
            auto plain = keys.open_either(blob, context, col.legacy(rs->getInt64(2)));
            if (!plain) {
                failures.push_back(std::string(col.table) + " " + std::to_string(id) + " (" + col.column +
                                   ")");
                continue;
            }
            // Compare-and-swap: a secret replaced meanwhile (a user edited it) is left as the user wrote it.
            std::unique_ptr<sql::PreparedStatement> u(
                conn->prepareStatement(std::string("UPDATE ") + col.table + " SET " + col.column +
                                       " = ? WHERE id = ? AND " + col.column + " = ?"));
            u->setString(1, keys.seal(*plain, context));
            u->setInt64(2, id);
            u->setString(3, blob);
            secrets += u->executeUpdate();
        }
    }
    // The certificate keys of orders in flight (sealed on their open issue rows), compare-and-swap against
    // the row's progress, so a worker's concurrent save is never overwritten with older progress.
    {
        std::unique_ptr<sql::Statement> st(conn->createStatement());
        std::unique_ptr<sql::ResultSet> rs(
            st->executeQuery("SELECT id, acme_state FROM issue_history WHERE status IN ('PENDING', "
                             "'PROCESSING') AND acme_state IS "
                             "NOT NULL"));
        while (rs->next()) {
            std::int64_t const id = rs->getInt64(1);
            std::string const state = rs->getString(2);
            auto progress = worker::acme_progress::parse(state);
            auto blob = progress.sealed_key.empty() ? std::nullopt : base64_decode(progress.sealed_key);
            if (!blob || crypto::keyring::version_of(*blob) == current) {
                continue;
            }
            std::string const context = worker::order_key_context(id);
            auto plain = keys.open(*blob, context);
            if (!plain) {
                failures.push_back("issue_history " + std::to_string(id) + " (in-flight order key)");
                continue;
            }
            progress.sealed_key = base64_encode(keys.seal(*plain, context));
            std::unique_ptr<sql::PreparedStatement> u(conn->prepareStatement(
                "UPDATE issue_history SET acme_state = ? WHERE id = ? AND acme_state = ?"));
            u->setString(1, progress.to_json());
            u->setInt64(2, id);
            u->setString(3, state);
            secrets += u->executeUpdate();
        }
    }
    std::cout << "re-wrapped " << data_keys << " certificate data key(s) and re-sealed " << secrets
              << " secret(s) under master key version " << current << "\n";
    if (!failures.empty()) {
        std::cout << failures.size()
                  << " could not be opened with the configured keys (add the missing version "
                  << "to crypto.retired_master_keys_file):\n";
        for (auto const& f : failures) {
            std::cout << "  " << f << "\n";
        }
        return exit_failure;
    }
    return exit_ok;
}

}  // namespace certctrl::app
