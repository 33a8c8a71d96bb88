#pragma once
// Row mappings and transaction helpers shared by the MySQL repositories (internal to certctrl_repo_mysql).

#include "certctrl/domain/acme_account.hpp"
#include "certctrl/domain/ca.hpp"
#include "certctrl/domain/certificate.hpp"
#include "certctrl/domain/device.hpp"

#include "common.hpp"

#include <boost/json.hpp>

#include <initializer_list>
#include <string_view>

namespace certctrl::repo::mysql_detail {

inline std::int64_t i64(sql::ResultSet& rs, unsigned i) {
    return static_cast<std::int64_t>(rs.getInt64(i));
}

// A transaction on one pooled connection: rolled back unless committed (the pool also rolls back a
// transaction a failed job leaves open).
class transaction {
  public:
    explicit transaction(sql::Connection& c) : c_(c) { db::begin_transaction(c_); }
    ~transaction() {
        if (!done_) {
            db::rollback_transaction(c_);
        }
    }
    transaction(transaction const&) = delete;
    transaction& operator=(transaction const&) = delete;
    void commit() {
        db::commit_transaction(c_);
        done_ = true;
    }

  private:
    sql::Connection& c_;
    bool done_ = false;
};

inline bool exists(sql::Connection& c, std::string const& query, std::initializer_list<std::int64_t> args) {
    auto ps = prepare(c, query);
    unsigned i = 1;
    for (auto a : args) {
        ps->setInt64(i++, a);
    }
    rs_ptr rs(ps->executeQuery());
    return rs->next();
}

/// `columns` ("a, b, c") with each name qualified by `table` ("t.a, t.b, t.c").
inline std::string qualified(std::string const& table, std::string_view columns) {
    std::string out;
    while (!columns.empty()) {
        auto const comma = columns.find(", ");
        out += (out.empty() ? "" : ", ") + table + "." + std::string(columns.substr(0, comma));
        columns = comma == std::string_view::npos ? std::string_view() : columns.substr(comma + 2);
    }
    return out;
}

constexpr char const* account_columns =
    "id, user_id, name, email, provider, directory_url, kid, ca_id, key_alg, enc_account_key, eab_kid, "
    "enc_eab_hmac, leaf_key_algorithm, leaf_rsa_bits, leaf_ec_curve, cert_valid_seconds, created_at, "
    "updated_at";
constexpr unsigned account_column_count = 18;

/// An account from the columns of account_columns starting at column `f`.
inline domain::acme_account read_account_at(sql::ResultSet& rs, unsigned f) {
    domain::acme_account a;
    a.id = static_cast<std::int64_t>(rs.getInt64(f));
    a.user_id = static_cast<std::int64_t>(rs.getInt64(f + 1));
    a.name = rs.getString(f + 2);
    a.email = rs.getString(f + 3);
    a.provider = rs.getString(f + 4);
    a.directory_url = rs.getString(f + 5);
    a.kid = opt_string(rs, f + 6);
    a.ca_id = opt_int(rs, f + 7);
    a.key_algorithm = rs.getString(f + 8);
    a.enc_account_key = opt_string(rs, f + 9).value_or("");
    a.eab_kid = opt_string(rs, f + 10);
    a.enc_eab_hmac = opt_string(rs, f + 11).value_or("");
    a.leaf_key_algorithm = opt_string(rs, f + 12);
    a.leaf_rsa_bits = opt_int(rs, f + 13);
    a.leaf_ec_curve = opt_string(rs, f + 14);
    a.cert_valid_seconds = opt_int(rs, f + 15);
    a.created_at = static_cast<std::int64_t>(rs.getInt64(f + 16));
    a.updated_at = static_cast<std::int64_t>(rs.getInt64(f + 17));
    return a;
}
inline domain::acme_account read_account(sql::ResultSet& rs) {
    return read_account_at(rs, 1);
}

/// The columns of a CA row named `t` (read by read_ca): its issuance count and last use include the
/// per-shard counts of ca_usage, where issuances add them without queueing on the CA's row.
inline std::string ca_columns_of(std::string const& t) {
    return qualified(t,
                     "id, user_id, name, algorithm, subject, common_name, organization, organizational_unit, "
                     "country, state, locality, cert_pem, enc_private_key, key_version, serial_number, "
                     "path_length, valid_days, key_usage, status") +
           ", " + t +
           ".issued_cert_count + COALESCE((SELECT SUM(u.issued) FROM ca_usage u WHERE u.ca_id = " + t +
           ".id), 0), GREATEST(" + t +
           ".last_used_at, COALESCE((SELECT MAX(u.last_used_at) FROM ca_usage u WHERE " + "u.ca_id = " + t +
           ".id), 0)), " + qualified(t, "not_before, not_after, created_at, updated_at");
}
inline std::string const ca_columns = ca_columns_of("cas");

/// A CA from the columns of ca_columns_of() starting at column `f`.
inline domain::ca read_ca_at(sql::ResultSet& rs, unsigned f) {
    domain::ca c;
    c.id = i64(rs, f);
    c.user_id = i64(rs, f + 1);
    c.name = rs.getString(f + 2);
    c.key_algorithm = rs.getString(f + 3);
    c.subject_line = rs.getString(f + 4);
    c.subject.common_name = rs.getString(f + 5);
    c.subject.organization = rs.getString(f + 6);
    c.subject.organizational_unit = rs.getString(f + 7);
    c.subject.country = rs.getString(f + 8);
    c.subject.state = rs.getString(f + 9);
    c.subject.locality = rs.getString(f + 10);
    c.cert_pem = rs.getString(f + 11);
    c.enc_private_key = rs.getString(f + 12);
    c.key_version = rs.getInt(f + 13);
    c.serial_number = rs.getString(f + 14);
    c.path_length = rs.getInt(f + 15);
    c.valid_days = i64(rs, f + 16);
    c.key_usage = rs.getString(f + 17);
    c.status = rs.getString(f + 18);
    c.issued_cert_count = i64(rs, f + 19);
    c.last_used_at = i64(rs, f + 20);
    c.not_before = i64(rs, f + 21);
    c.not_after = i64(rs, f + 22);
    c.created_at = i64(rs, f + 23);
    c.updated_at = i64(rs, f + 24);
    return c;
}
inline domain::ca read_ca(sql::ResultSet& rs) {
    return read_ca_at(rs, 1);
}
constexpr unsigned ca_column_count = 25;

constexpr char const* cert_columns =
    "c.id, c.user_id, c.public_id, c.domain_name, c.sans, c.acct_id, c.dns_provider_id, c.key_algorithm, "
    "c.key_dist_policy, c.server_decrypt_export, c.auto_renew, c.cert_pem, c.csr_pem, c.serial_number, "
    "c.self_signed, c.verified, c.organization, c.organizational_unit, c.country, c.state, c.locality, "
    "c.not_before, c.not_after, (c.enc_privkey IS NOT NULL), c.created_at, c.updated_at, c.client_auth, "
    "(c.cert_pem IS NOT NULL), c.row_version, c.challenge, c.fallback_acct_ids";
/// cert_columns without the PEM texts (read_cert leaves them empty): what a list shows without ?detail=most.
constexpr char const* cert_summary_columns =
    "c.id, c.user_id, c.public_id, c.domain_name, c.sans, c.acct_id, c.dns_provider_id, c.key_algorithm, "
    "c.key_dist_policy, c.server_decrypt_export, c.auto_renew, NULL, NULL, c.serial_number, "
    "c.self_signed, c.verified, c.organization, c.organizational_unit, c.country, c.state, c.locality, "
    "c.not_before, c.not_after, (c.enc_privkey IS NOT NULL), c.created_at, c.updated_at, c.client_auth, "
    "(c.cert_pem IS NOT NULL), c.row_version, c.challenge, c.fallback_acct_ids";

// `sans` is stored as JSON text; a value that is not an array of strings comes back as a one-element array
// (of the string it holds, else of the raw text), as agent contract 4.1 describes for legacy rows.
inline std::vector<std::string> sans_of(std::string const& raw) {
    boost::system::error_code ec;
    auto v = boost::json::parse(raw, ec);
    std::vector<std::string> out;
    if (!ec && v.is_array()) {
        for (auto const& s : v.get_array()) {
            if (!s.is_string()) {
                return {raw};
            }
            out.emplace_back(s.get_string());
        }
        return out;
    }
    if (!ec && v.is_string()) {
        return {std::string(v.get_string())};
    }
    return {raw};
}

inline std::string sans_text(std::vector<std::string> const& sans) {
    boost::json::array a;
    for (auto const& s : sans) {
        a.emplace_back(s);
    }
    return boost::json::serialize(a);
}

constexpr unsigned cert_column_count = 31;

// fallback_acct_ids as stored: comma-separated ids ('' for none).
inline std::vector<std::int64_t> ids_of_text(std::string const& raw) {
    std::vector<std::int64_t> out;
    std::size_t at = 0;
    while (at < raw.size()) {
        auto const end = raw.find(',', at);
        std::string const part = raw.substr(at, end == std::string::npos ? std::string::npos : end - at);
        char* stop = nullptr;
        long long const v = std::strtoll(part.c_str(), &stop, 10);
        if (stop != part.c_str() && v > 0) {
            out.push_back(v);
        }
        if (end == std::string::npos) {
            break;
        }
        at = end + 1;
    }
    return out;
}

inline std::string text_of_ids(std::vector<std::int64_t> const& ids) {
    std::string out;
    for (auto id : ids) {
        out += (out.empty() ? "" : ",") + std::to_string(id);
    }
    return out;
}

// The number of columns of a column list (commas outside parentheses, plus one).
constexpr unsigned column_count(std::string_view cols) {
    unsigned n = 1;
    int depth = 0;
    for (char ch : cols) {
        depth += ch == '(' ? 1 : ch == ')' ? -1 : 0;
        n += ch == ',' && depth == 0 ? 1 : 0;
    }
    return n;
}
static_assert(column_count(cert_columns) == cert_column_count,
              "read_cert and the reads after it count these");
static_assert(column_count(cert_summary_columns) == cert_column_count);

inline domain::certificate read_cert(sql::ResultSet& rs) {
    domain::certificate c;
    c.id = i64(rs, 1);
    c.user_id = i64(rs, 2);
    c.public_id = rs.getString(3);
    c.domain_name = rs.getString(4);
    c.sans = sans_of(rs.getString(5));
    c.acct_id = i64(rs, 6);
    c.dns_provider_id = opt_int(rs, 7);
    c.key_algorithm = rs.getString(8);
    c.key_dist_policy = rs.getString(9);
    c.server_decrypt_export = rs.getBoolean(10);
    c.auto_renew = rs.getBoolean(11);
    c.cert_pem = opt_string(rs, 12).value_or("");
    c.csr_pem = opt_string(rs, 13).value_or("");
    c.serial_number = rs.getString(14);
    c.self_signed = rs.getBoolean(15);
    c.verified = rs.getBoolean(16);
    c.organization = rs.getString(17);
    c.organizational_unit = rs.getString(18);
    c.country = rs.getString(19);
    c.state = rs.getString(20);
    c.locality = rs.getString(21);
    c.not_before = i64(rs, 22);
    c.not_after = i64(rs, 23);
    c.has_key = rs.getBoolean(24);
    c.created_at = i64(rs, 25);
    c.updated_at = i64(rs, 26);
    c.client_auth = rs.getBoolean(27);
    c.has_certificate = rs.getBoolean(28);
    c.row_version = i64(rs, 29);
    c.challenge = rs.getString(30);
    c.fallback_acct_ids = ids_of_text(rs.getString(31));
    return c;
}

constexpr char const* device_columns =
    "d.id, d.user_id, d.device_public_id, d.name, d.description, d.device_type, d.platform, d.model, "
    "d.app_version, d.ip, d.user_agent, d.status, (d.dev_public_key IS NOT NULL), d.created_at, "
    "d.last_seen_at, d.agent_version";

inline domain::device read_device(sql::ResultSet& rs) {
    domain::device d;
    d.id = i64(rs, 1);
    d.user_id = i64(rs, 2);
    d.device_public_id = rs.getString(3);
    d.name = rs.getString(4);
    d.description = rs.getString(5);
    d.device_type = rs.getString(6);
    d.platform = rs.getString(7);
    d.model = rs.getString(8);
    d.app_version = rs.getString(9);
    d.ip = rs.getString(10);
    d.user_agent = rs.getString(11);
    d.status = rs.getString(12);
    d.has_public_key = rs.getBoolean(13);
    d.created_at = i64(rs, 14);
    d.last_seen_at = i64(rs, 15);
    d.agent_version = rs.getString(16);
    return d;
}

}  // namespace certctrl::repo::mysql_detail
