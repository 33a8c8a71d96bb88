// MySQL statement sets of self-managed CAs and certificates.
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "factories.hpp"
#include "rows.hpp"

#include <random>

namespace certctrl::repo::mysql_detail {

namespace {

char const* lock_clause(row_lock lock) {
    switch (lock) {
        case row_lock::shared:
            return " LOCK IN SHARE MODE";
        case row_lock::update:
            return " FOR UPDATE";
        case row_lock::none:
            break;
    }
    return "";
}

// ---------------------------------------------------------------------------------------------- CAs

class mysql_cas final : public ca_repository {
  public:
    domain::ca insert(work& w, domain::ca ca) override {
        auto& c = conn(w);
        auto ps = prepare(
            c,
            "INSERT INTO cas (user_id, name, algorithm, subject, common_name, organization, "
            "organizational_unit, country, state, locality, cert_pem, enc_private_key, key_version, "
            "serial_number, path_length, valid_days, key_usage, status, not_before, not_after, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)");
        ps->setInt64(1, ca.user_id);
        ps->setString(2, ca.name);
        ps->setString(3, ca.key_algorithm);
        ps->setString(4, ca.subject_line);
        ps->setString(5, ca.subject.common_name);
        ps->setString(6, ca.subject.organization);
        ps->setString(7, ca.subject.organizational_unit);
        ps->setString(8, ca.subject.country);
        ps->setString(9, ca.subject.state);
        ps->setString(10, ca.subject.locality);
        ps->setString(11, ca.cert_pem);
        ps->setString(12, ca.enc_private_key);
        ps->setInt(13, ca.key_version);
        ps->setString(14, ca.serial_number);
        ps->setInt(15, ca.path_length);
        ps->setInt64(16, ca.valid_days);
        ps->setString(17, ca.key_usage);
        ps->setString(18, ca.status);
        ps->setInt64(19, ca.not_before);
        ps->setInt64(20, ca.not_after);
        ps->setInt64(21, ca.created_at);
        ps->setInt64(22, ca.updated_at);
        ps->executeUpdate();
        ca.id = last_insert_id(c);
        return ca;
    }

    void set_key(work& w, std::int64_t id, std::string const& enc_private_key) override {
        auto ps = prepare(conn(w), "UPDATE cas SET enc_private_key = ? WHERE id = ?");
        ps->setString(1, enc_private_key);
        ps->setInt64(2, id);
        ps->executeUpdate();
    }

    page<domain::ca> list(work& w, std::int64_t user_id, page_query const& q) override {
        return list_page<domain::ca>(conn(w), "cas", ca_columns, user_id, q, read_ca);
    }

    std::optional<domain::ca> get(work& w, std::int64_t user_id, std::int64_t id, row_lock lock) override {
        return find_one<domain::ca>(conn(w),
                                    std::string("SELECT ") + ca_columns +
                                        " FROM cas WHERE user_id = ? AND id = ?" + lock_clause(lock),
                                    read_ca, user_id, id);
    }

    void remove(work& w, std::int64_t id) override {
        auto del =
            prepare(conn(w), "DELETE FROM cas WHERE id = ?");  // FK 1451 -> conflict (an account uses it)
        del->setInt64(1, id);
        del->executeUpdate();
    }

    void count_use(work& w, std::int64_t id, std::int64_t now) override {
        // One of 16 rows at random: concurrent issuances under the CA rarely wait for each other's commit.
        thread_local std::minstd_rand pick{std::random_device{}()};
        auto ps = prepare(conn(w),
                          "INSERT INTO ca_usage (ca_id, shard, issued, last_used_at) VALUES (?, ?, 1, ?) ON "
                          "DUPLICATE KEY UPDATE issued = issued + 1, last_used_at = GREATEST(last_used_at, "
                          "VALUES(last_used_at))");
        ps->setInt64(1, id);
        ps->setInt(2, static_cast<int>(pick() % 16));
        ps->setInt64(3, now);
        ps->executeUpdate();
    }
};

// --------------------------------------------------------------------------------------- certificates

// The WHERE part of a certificate list's filter; nullopt when it keeps everything.
std::optional<row_filter> condition_of(certificate_filter const& f) {
    std::string cond;
    std::vector<std::variant<std::int64_t, std::string>> values;
    auto const add = [&cond](std::string const& c) { cond += (cond.empty() ? "" : " AND ") + c; };
    if (f.acct_id) {
        add("acct_id = ?");
        values.emplace_back(*f.acct_id);
    }
    using st = certificate_filter::state;
    switch (f.status) {
        case st::any:
            break;
        case st::pending:
            add("cert_pem IS NULL");
            break;
        case st::active:
            add("cert_pem IS NOT NULL AND (not_after = 0 OR not_after >= ?)");
            values.emplace_back(f.now);
            break;
        case st::expired:
            add("cert_pem IS NOT NULL AND not_after <> 0 AND not_after < ?");
            values.emplace_back(f.now);
            break;
        case st::expiring:
            add("cert_pem IS NOT NULL AND not_after >= ? AND not_after < ?");
            values.emplace_back(f.now);
            values.emplace_back(f.now + 30 * 86400);
            break;
    }
    if (!f.name_contains.empty()) {
        std::string pattern = "%";
        for (char const ch : f.name_contains) {
            if (ch == '%' || ch == '_' || ch == '\\') {
                pattern += '\\';
            }
            pattern += ch;
        }
        pattern += '%';
        add("(domain_name LIKE ? OR sans LIKE ?)");
        values.emplace_back(pattern);
        values.emplace_back(pattern);
    }
    if (cond.empty()) {
        return std::nullopt;
    }
    return row_filter{cond, std::move(values)};
}

class mysql_certificates final : public certificate_repository {
  public:
    domain::certificate insert(work& w, domain::certificate cert) override {
        auto& c = conn(w);
        auto ps =
            prepare(c,
                    "INSERT INTO certificates (user_id, public_id, domain_name, sans, acct_id, "
                    "dns_provider_id, key_algorithm, key_dist_policy, server_decrypt_export, auto_renew, "
                    "organization, organizational_unit, country, state, locality, created_at, updated_at, "
                    "client_auth, challenge, fallback_acct_ids) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "?, ?, ?, ?, ?, "
                    "?, ?, ?)");
        ps->setInt64(1, cert.user_id);
        ps->setString(2, cert.public_id);
        ps->setString(3, cert.domain_name);
        ps->setString(4, sans_text(cert.sans));
        ps->setInt64(5, cert.acct_id);
        set_optional(*ps, 6, cert.dns_provider_id);
        ps->setString(7, cert.key_algorithm);
        ps->setString(8, cert.key_dist_policy);
        ps->setBoolean(9, cert.server_decrypt_export);
        ps->setBoolean(10, cert.auto_renew);
        ps->setString(11, cert.organization);
        ps->setString(12, cert.organizational_unit);
        ps->setString(13, cert.country);
        ps->setString(14, cert.state);
        ps->setString(15, cert.locality);
        ps->setInt64(16, cert.created_at);
        ps->setInt64(17, cert.updated_at);
        ps->setBoolean(18, cert.client_auth);
        ps->setString(19, cert.challenge);
        ps->setString(20, text_of_ids(cert.fallback_acct_ids));
        ps->executeUpdate();
        cert.id = last_insert_id(c);
        return cert;
    }

    page<domain::certificate> list(work& w, std::int64_t user_id, page_query const& q,
                                   certificate_filter const& filter, bool with_pem) override {
        return list_page<domain::certificate>(conn(w), "certificates c",
                                              with_pem ? cert_columns : cert_summary_columns, user_id, q,
                                              read_cert, condition_of(filter));
    }

    page<cert_version> list_versions(work& w, std::int64_t user_id, page_query const& q,
                                     certificate_filter const& filter) override {
        auto const f = condition_of(filter);
        return list_page<cert_version>(
            conn(w), "certificates c", "c.id, c.row_version", user_id, q,
            [](sql::ResultSet& rs) {
                return cert_version{i64(rs, 1), i64(rs, 2)};
            },
            f);
    }

    std::vector<domain::certificate> get_many(work& w, std::int64_t user_id,
                                              std::vector<std::int64_t> const& ids) override {
        std::vector<domain::certificate> out;
        out.reserve(ids.size());
        // In batches of a power of two (the last one padded with its last id), so there are few statement
        // texts to prepare and keep.
        std::size_t next = 0;
        while (next < ids.size()) {
            std::size_t batch = 1;
            while (batch < ids.size() - next && batch < 256) {
                batch *= 2;
            }
            std::string q = std::string("SELECT ") + cert_summary_columns +
                            " FROM certificates c WHERE c.user_id = ? AND c.id IN (?";
            for (std::size_t i = 1; i < batch; ++i) {
                q += ", ?";
            }
            q += ")";
            auto ps = prepare(conn(w), q);
            ps->setInt64(1, user_id);
            for (std::size_t i = 0; i < batch; ++i) {
                ps->setInt64(static_cast<unsigned>(i + 2), ids[std::min(next + i, ids.size() - 1)]);
            }
            rs_ptr rs(ps->executeQuery());
            while (rs->next()) {
                out.push_back(read_cert(*rs));
            }
            next += batch;
        }
        return out;
    }

    page<domain::certificate> list_for_device(work& w, std::int64_t user_id, std::int64_t device_id,
                                              page_query const& q, bool with_pem) override {
        return list_page<domain::certificate>(
            conn(w), "certificates c JOIN certificate_assignments a ON a.cert_id = c.id",
            with_pem ? cert_columns : cert_summary_columns, user_id, q, read_cert,
            row_filter{"a.device_id = ?", device_id});
    }

    std::optional<domain::certificate> get(work& w, std::int64_t user_id, std::int64_t id,
                                           row_lock lock) override {
        return find_one<domain::certificate>(conn(w),
                                             std::string("SELECT ") + cert_columns +
                                                 " FROM certificates c WHERE c.user_id = ? AND c.id = ?" +
                                                 lock_clause(lock),
                                             read_cert, user_id, id);
    }

    void remove(work& w, std::int64_t id) override {
        for (char const* q : {"DELETE FROM certificate_assignments WHERE cert_id = ?",
                              "DELETE FROM issue_history WHERE cert_id = ?",
                              "DELETE FROM certificate_master_wrapped WHERE cert_id = ?",
                              "DELETE FROM certificates WHERE id = ?"}) {
            auto ps = prepare(conn(w), q);
            ps->setInt64(1, id);
            ps->executeUpdate();
        }
    }

    std::optional<stored_key> key_of(work& w, std::int64_t user_id, std::int64_t id) override {
        return find_one<stored_key>(
            conn(w),
            "SELECT c.enc_privkey, c.enc_nonce, c.enc_tag, w.key_version, w.wrapped_data_key, w.nonce, w.tag "
            "FROM certificates c LEFT JOIN certificate_master_wrapped w ON w.cert_id = c.id WHERE c.user_id "
            "= ? "
            "AND c.id = ? AND c.enc_privkey IS NOT NULL",
            [](sql::ResultSet& rs) {
                stored_key k;
                k.private_key.ciphertext = rs.getString(1);
                k.private_key.nonce = rs.getString(2);
                k.private_key.tag = rs.getString(3);
                if (!rs.isNull(4)) {
                    crypto::wrapped_key wk;
                    wk.version = static_cast<std::uint32_t>(rs.getInt(4));
                    wk.box.ciphertext = rs.getString(5);
                    wk.box.nonce = rs.getString(6);
                    wk.box.tag = rs.getString(7);
                    k.data_key = wk;
                }
                return k;
            },
            user_id, id);
    }

    void update_settings(work& w, domain::certificate const& c, std::int64_t now) override {
        auto ps =
            prepare(conn(w),
                    "UPDATE certificates SET domain_name = ?, sans = ?, acct_id = ?, dns_provider_id = ?, "
                    "key_algorithm = ?, key_dist_policy = ?, server_decrypt_export = ?, auto_renew = ?, "
                    "client_auth = ?, challenge = ?, fallback_acct_ids = ?, organization = ?, "
                    "organizational_unit = ?, country = ?, "
                    "state = ?, "
                    "locality = ?, updated_at = ?, row_version = row_version + 1 WHERE id = ?");
        unsigned i = 1;
        ps->setString(i++, c.domain_name);
        ps->setString(i++, sans_text(c.sans));
        ps->setInt64(i++, c.acct_id);
        set_optional(*ps, i++, c.dns_provider_id);
        ps->setString(i++, c.key_algorithm);
        ps->setString(i++, c.key_dist_policy);
        ps->setBoolean(i++, c.server_decrypt_export);
        ps->setBoolean(i++, c.auto_renew);
        ps->setBoolean(i++, c.client_auth);
        ps->setString(i++, c.challenge);
        ps->setString(i++, text_of_ids(c.fallback_acct_ids));
        ps->setString(i++, c.organization);
        ps->setString(i++, c.organizational_unit);
        ps->setString(i++, c.country);
        ps->setString(i++, c.state);
        ps->setString(i++, c.locality);
        ps->setInt64(i++, now);
        ps->setInt64(i++, c.id);
        ps->executeUpdate();
    }

    void store_issued(work& w, std::int64_t id, issued_material const& m, std::int64_t now) override {
        auto& c = conn(w);
        auto cert = prepare(
            c,
            "UPDATE certificates SET cert_pem = ?, serial_number = ?, not_before = ?, not_after = "
            "?, self_signed = ?, verified = ?, enc_privkey = ?, enc_nonce = ?, enc_tag = ?, "
            "enc_scheme = 1, renew_after = 0, ari_next_check = 0, expiry_warned_days = NULL, updated_at = ?, "
            "row_version = "
            "row_version + 1 WHERE id = ?");
        cert->setString(1, m.cert_pem);
        cert->setString(2, m.serial_number);
        cert->setInt64(3, m.not_before);
        cert->setInt64(4, m.not_after);
        cert->setBoolean(5, m.self_signed);
        cert->setBoolean(6, m.verified);
        cert->setString(7, m.private_key.ciphertext);
        cert->setString(8, m.private_key.nonce);
        cert->setString(9, m.private_key.tag);
        cert->setInt64(10, now);
        cert->setInt64(11, id);
        cert->executeUpdate();
        if (m.keep_master_copy) {
            auto wrap =
                prepare(c,
                        "REPLACE INTO certificate_master_wrapped (cert_id, key_version, wrapped_data_key, "
                        "nonce, tag) VALUES (?, ?, ?, ?, ?)");
            wrap->setInt64(1, id);
            wrap->setInt(2, static_cast<int>(m.data_key.version));
            wrap->setString(3, m.data_key.box.ciphertext);
            wrap->setString(4, m.data_key.box.nonce);
            wrap->setString(5, m.data_key.box.tag);
            wrap->executeUpdate();
        } else {
            auto drop = prepare(c, "DELETE FROM certificate_master_wrapped WHERE cert_id = ?");
            drop->setInt64(1, id);
            drop->executeUpdate();
        }
    }

    void set_renew_after(work& w, std::int64_t id, std::int64_t when) override {
        auto ps = prepare(
            conn(w), "UPDATE certificates SET renew_after = ?, row_version = row_version + 1 WHERE id = ?");
        ps->setInt64(1, when);
        ps->setInt64(2, id);
        ps->executeUpdate();
    }

    void set_renewal_info(work& w, std::int64_t id, std::int64_t renew_after,
                          std::int64_t next_check) override {
        auto ps = prepare(
            conn(w),
            "UPDATE certificates SET row_version = row_version + (renew_after <> ?), renew_after = ?, "
            "ari_next_check = ? WHERE id = ?");
        ps->setInt64(1, renew_after);
        ps->setInt64(2, renew_after);
        ps->setInt64(3, next_check);
        ps->setInt64(4, id);
        ps->executeUpdate();
    }

    std::vector<std::array<std::int64_t, 3>> renewal_info_due(work& w, std::int64_t now,
                                                              std::int64_t limit) override {
        auto ps = prepare(
            conn(w),
            "SELECT c.user_id, c.id, c.renew_after FROM certificates c WHERE c.ari_next_check > 0 AND "
            "c.ari_next_check <= ? AND c.auto_renew = 1 AND c.cert_pem IS NOT NULL ORDER BY "
            "c.ari_next_check LIMIT ?");
        ps->setInt64(1, now);
        ps->setInt64(2, limit);
        rs_ptr rs(ps->executeQuery());
        std::vector<std::array<std::int64_t, 3>> out;
        while (rs->next()) {
            out.push_back({i64(*rs, 1), i64(*rs, 2), i64(*rs, 3)});
        }
        return out;
    }

    std::vector<std::pair<std::int64_t, std::int64_t>> due_for_renewal(work& w, std::int64_t now,
                                                                       std::int64_t limit) override {
        auto ps =
            prepare(conn(w),
                    "SELECT c.user_id, c.id FROM certificates c WHERE c.auto_renew = 1 AND c.not_after > 0 "
                    "AND c.cert_pem IS NOT NULL AND IF(c.renew_after > 0, c.renew_after, c.not_before + "
                    "(c.not_after - c.not_before) * 2 DIV 3 - MOD(c.id * 2654435761, GREATEST(1, "
                    "(c.not_after - c.not_before) DIV 20))) <= ? AND NOT EXISTS (SELECT 1 FROM issue_history "
                    "h WHERE h.inflight_cert_id = c.id) ORDER BY c.not_after LIMIT ?");
        ps->setInt64(1, now);
        ps->setInt64(2, limit);
        rs_ptr rs(ps->executeQuery());
        std::vector<std::pair<std::int64_t, std::int64_t>> out;
        while (rs->next()) {
            out.emplace_back(i64(*rs, 1), i64(*rs, 2));
        }
        return out;
    }

    bool account_exists(work& w, std::int64_t user_id, std::int64_t acct_id, row_lock lock) override {
        return exists(
            conn(w),
            std::string("SELECT id FROM acme_accounts WHERE user_id = ? AND id = ?") + lock_clause(lock),
            {user_id, acct_id});
    }

    std::optional<std::string> account_provider(work& w, std::int64_t user_id, std::int64_t acct_id,
                                                row_lock lock) override {
        return find_one<std::string>(
            conn(w),
            std::string("SELECT provider FROM acme_accounts WHERE user_id = ? AND id = ?") +
                lock_clause(lock),
            [](sql::ResultSet& rs) { return std::string(rs.getString(1)); }, user_id, acct_id);
    }

    bool dns_provider_exists(work& w, std::int64_t user_id, std::int64_t id, row_lock lock) override {
        return exists(
            conn(w),
            std::string("SELECT id FROM dns_providers WHERE user_id = ? AND id = ?") + lock_clause(lock),
            {user_id, id});
    }
};

}  // namespace

char const* lock_clause_of(row_lock lock) {
    return lock_clause(lock);
}
std::unique_ptr<ca_repository> make_cas() {
    return std::make_unique<mysql_cas>();
}
std::unique_ptr<certificate_repository> make_certificates() {
    return std::make_unique<mysql_certificates>();
}

}  // namespace certctrl::repo::mysql_detail
