// MySQL statement set of certificate assignments and of what a device is sent of an assigned certificate.
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "factories.hpp"
#include "rows.hpp"

namespace certctrl::repo::mysql_detail {

namespace {

// A master-wrapped data key from four columns (version, ciphertext, nonce, tag) starting at `first`.
std::optional<crypto::wrapped_key> wrapped_at(sql::ResultSet& rs, unsigned first) {
    if (rs.isNull(first)) {
        return std::nullopt;
    }
    return crypto::wrapped_key{static_cast<std::uint32_t>(rs.getInt(first)),
                               {std::string(rs.getString(first + 2)), std::string(rs.getString(first + 1)),
                                std::string(rs.getString(first + 3))}};
}

class mysql_assignments final : public assignment_repository {
  public:
    bool exists(work& w, std::int64_t cert_id, std::int64_t device_id) override {
        return mysql_detail::exists(
            conn(w), "SELECT cert_id FROM certificate_assignments WHERE cert_id = ? AND device_id = ?",
            {cert_id, device_id});
    }

    void insert(work& w, std::int64_t cert_id, std::int64_t device_id, std::int64_t now) override {
        auto ps = prepare(
            conn(w), "INSERT INTO certificate_assignments (cert_id, device_id, created_at) VALUES (?, ?, ?)");
        ps->setInt64(1, cert_id);
        ps->setInt64(2, device_id);
        ps->setInt64(3, now);
        ps->executeUpdate();
    }

    bool remove(work& w, std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id) override {
        auto ps =
            prepare(conn(w),
                    "DELETE a FROM certificate_assignments a JOIN devices d ON d.id = a.device_id WHERE "
                    "d.user_id = ? AND a.cert_id = ? AND a.device_id = ?");
        ps->setInt64(1, user_id);
        ps->setInt64(2, cert_id);
        ps->setInt64(3, device_id);
        return ps->executeUpdate() > 0;
    }

    std::optional<domain::assignment> get(work& w, std::int64_t user_id, std::int64_t cert_id,
                                          std::int64_t device_id) override {
        return find_one<domain::assignment>(
            conn(w),
            "SELECT a.cert_id, a.device_id, d.device_public_id, a.wrap_alg, (a.enc_data_key IS NOT NULL AND "
            "a.enc_data_key <> REPEAT(CHAR(0), 48)), a.created_at, (a.enc_data_key = REPEAT(CHAR(0), 48)) "
            "FROM "
            "certificate_assignments a JOIN devices d ON d.id = a.device_id WHERE d.user_id = ? AND "
            "a.cert_id = ? "
            "AND a.device_id = ?",
            [](sql::ResultSet& rs) {
                domain::assignment a;
                a.cert_id = i64(rs, 1);
                a.device_id = i64(rs, 2);
                a.device_public_id = rs.getString(3);
                a.wrap_alg = rs.getString(4);
                a.wrapped = rs.getBoolean(5);
                a.created_at = i64(rs, 6);
                a.wrap_pending = rs.getBoolean(7);
                return a;
            },
            user_id, cert_id, device_id);
    }

    std::vector<std::int64_t> devices_of(work& w, std::int64_t cert_id) override {
        return ids_of(conn(w),
                      "SELECT device_id FROM certificate_assignments WHERE cert_id = ? ORDER BY device_id",
                      cert_id);
    }

    std::vector<std::int64_t> certificates_of(work& w, std::int64_t device_id) override {
        return ids_of(conn(w),
                      "SELECT cert_id FROM certificate_assignments WHERE device_id = ? ORDER BY cert_id",
                      device_id);
    }

    std::optional<wrap_inputs> wrap_inputs_of(work& w, std::int64_t cert_id,
                                              std::int64_t device_id) override {
        return find_one<wrap_inputs>(
            conn(w),
            "SELECT c.key_dist_policy, c.enc_privkey IS NOT NULL, c.serial_number, c.user_id, "
            "d.dev_public_key, "
            "w.key_version, w.wrapped_data_key, w.nonce, w.tag, COALESCE(a.enc_data_key = UNHEX(REPEAT('00', "
            "48)), 0) FROM certificates "
            "c JOIN devices d ON d.id = ? LEFT JOIN certificate_master_wrapped w ON w.cert_id = c.id LEFT "
            "JOIN "
            "certificate_assignments a ON a.cert_id = c.id AND a.device_id = d.id WHERE c.id = ?",
            [](sql::ResultSet& rs) {
                wrap_inputs in;
                in.policy = rs.getString(1);
                in.issued = rs.getBoolean(2);
                in.serial = rs.getString(3);
                in.user_id = i64(rs, 4);
                in.device_key = opt_string(rs, 5);
                in.master = wrapped_at(rs, 6);
                in.was_pending = rs.getBoolean(10);
                return in;
            },
            device_id, cert_id);
    }

    void store_wrap(work& w, std::int64_t cert_id, std::int64_t device_id,
                    std::optional<std::string> const& sealed,
                    std::optional<std::string> const& keyfp) override {
        auto ps = prepare(conn(w),
                          "UPDATE certificate_assignments SET enc_data_key = ?, device_keyfp = ?, wrap_alg = "
                          "'x25519' WHERE cert_id = ? AND device_id = ?");
        set_optional(*ps, 1, sealed);
        set_optional(*ps, 2, keyfp);
        ps->setInt64(3, cert_id);
        ps->setInt64(4, device_id);
        ps->executeUpdate();
    }

    std::optional<device_cert_material> material(work& w, std::int64_t user_id, std::int64_t device_id,
                                                 std::int64_t cert_id) override {
        // One read: the record, the device's sealed key, the encrypted private key and the master copy.
        return find_one<device_cert_material>(
            conn(w),
            std::string("SELECT ") + cert_columns +
                ", a.enc_data_key, a.device_keyfp, a.wrap_alg, c.enc_privkey, c.enc_nonce, c.enc_tag, "
                "w.key_version, w.wrapped_data_key, w.nonce, w.tag FROM certificates c JOIN "
                "certificate_assignments a ON a.cert_id = c.id LEFT JOIN certificate_master_wrapped w ON "
                "w.cert_id = c.id WHERE c.user_id = ? AND c.id = ? AND a.device_id = ?",
            [](sql::ResultSet& rs) {
                device_cert_material m;
                m.cert = read_cert(rs);
                m.issued = m.cert.has_key;
                unsigned const k = cert_column_count + 1;
                m.enc_data_key = opt_string(rs, k);
                m.device_keyfp = opt_string(rs, k + 1).value_or("");
                m.wrap_alg = rs.getString(k + 2);
                if (m.issued) {
                    m.private_key = {opt_string(rs, k + 4).value_or(""), opt_string(rs, k + 3).value_or(""),
                                     opt_string(rs, k + 5).value_or("")};
                }
                m.data_key = wrapped_at(rs, k + 6);
                return m;
            },
            user_id, cert_id, device_id);
    }
};

}  // namespace

std::unique_ptr<assignment_repository> make_assignments() {
    return std::make_unique<mysql_assignments>();
}

}  // namespace certctrl::repo::mysql_detail
