// MySQL implementations of the CA, certificate and device repositories (plain functions returning
// awaitables: see identity_mysql.cpp for why they are not coroutines).
#include "certctrl/db/pool.hpp"
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "rows.hpp"
#include "signals.hpp"

#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <memory>

namespace certctrl::repo {

namespace {

using boost::asio::use_awaitable;
using namespace mysql_detail;

// ---------------------------------------------------------------------------------------------- CAs

class mysql_cas final : public ca_repository {
  public:
    explicit mysql_cas(db::pool& p) : pool_(p) {}

    task<domain::ca> create(domain::ca ca) override {
        return db::async_offload(
            pool_,
            [ca](sql::Connection& c) mutable -> result<domain::ca> {
                auto ps =
                    prepare(c,
                            "INSERT INTO cas (user_id, name, algorithm, subject, common_name, organization, "
                            "organizational_unit, country, state, locality, cert_pem, enc_private_key, "
                            "key_version, serial_number, path_length, valid_days, key_usage, status, "
                            "not_before, not_after, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                            "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
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
            },
            use_awaitable);
    }

    task<page<domain::ca>> list(std::int64_t user_id, page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::ca>> {
                return list_page<domain::ca>(c, "cas", ca_columns, user_id, q, read_ca);
            },
            use_awaitable);
    }

    task<std::optional<domain::ca>> get(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::ca>> {
                return find_one<domain::ca>(
                    c, std::string("SELECT ") + ca_columns + " FROM cas WHERE user_id = ? AND id = ?",
                    read_ca, user_id, id);
            },
            use_awaitable);
    }

    task<bool> remove(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                transaction tx(c);
                auto ca = find_one<domain::ca>(
                    c,
                    std::string("SELECT ") + ca_columns + " FROM cas WHERE user_id = ? AND id = ? FOR UPDATE",
                    read_ca, user_id, id);
                if (!ca) {
                    return false;
                }
                // The devices that trust it are told (ca.unassigned) in the same transaction.
                std::vector<std::int64_t> devices;
                {
                    auto q = prepare(c, "SELECT device_id FROM device_cas WHERE ca_id = ?");
                    q->setInt64(1, id);
                    rs_ptr rs(q->executeQuery());
                    while (rs->next()) {
                        devices.push_back(i64(*rs, 1));
                    }
                }
                lock_devices(c, devices);
                for (auto d : devices) {
                    emit_signal(c, d, "ca.unassigned",
                                boost::json::object{
                                    {"ca_id", id}, {"serial", ca->serial_number}, {"ca_name", ca->name}});
                }
                auto del_links = prepare(c, "DELETE FROM device_cas WHERE ca_id = ?");
                del_links->setInt64(1, id);
                del_links->executeUpdate();
                auto del =
                    prepare(c, "DELETE FROM cas WHERE id = ?");  // FK 1451 -> conflict (an account uses it)
                del->setInt64(1, id);
                del->executeUpdate();
                tx.commit();
                return true;
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

// --------------------------------------------------------------------------------------- certificates

class mysql_certificates final : public certificate_repository {
  public:
    explicit mysql_certificates(db::pool& p) : pool_(p) {}

    task<domain::certificate> create(domain::certificate cert) override {
        return db::async_offload(
            pool_,
            [cert](sql::Connection& c) mutable -> result<domain::certificate> {
                transaction tx(c);
                // Shared locks keep the account and provider from being deleted before the insert commits.
                if (!exists(c, "SELECT id FROM acme_accounts WHERE user_id = ? AND id = ? LOCK IN SHARE MODE",
                            {cert.user_id, cert.acct_id})) {
                    return make_error(errc::not_found,
                                      "ACME account " + std::to_string(cert.acct_id) + " not found",
                                      {{"field", "acct_id"}});
                }
                if (cert.dns_provider_id &&
                    !exists(c, "SELECT id FROM dns_providers WHERE user_id = ? AND id = ? LOCK IN SHARE MODE",
                            {cert.user_id, *cert.dns_provider_id})) {
                    return make_error(errc::not_found,
                                      "DNS provider " + std::to_string(*cert.dns_provider_id) + " not found",
                                      {{"field", "dns_provider_id"}});
                }
                auto ps = prepare(
                    c,
                    "INSERT INTO certificates (user_id, public_id, domain_name, sans, acct_id, "
                    "dns_provider_id, "
                    "key_algorithm, key_dist_policy, server_decrypt_export, auto_renew, organization, "
                    "organizational_unit, country, state, locality, created_at, updated_at, client_auth) "
                    "VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
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
                ps->executeUpdate();
                cert.id = last_insert_id(c);
                tx.commit();
                return cert;
            },
            use_awaitable);
    }

    task<page<domain::certificate>> list(std::int64_t user_id, page_query q,
                                         std::optional<std::int64_t> acct_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::certificate>> {
                std::optional<row_filter> f;
                if (acct_id) {
                    f = row_filter{"acct_id = ?", *acct_id};
                }
                return list_page<domain::certificate>(c, "certificates c", cert_columns, user_id, q,
                                                      read_cert, f);
            },
            use_awaitable);
    }

    task<page<domain::certificate>> list_for_device(std::int64_t user_id, std::int64_t device_id,
                                                    page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::certificate>> {
                return list_page<domain::certificate>(
                    c, "certificates c JOIN certificate_assignments a ON a.cert_id = c.id", cert_columns,
                    user_id, q, read_cert, row_filter{"a.device_id = ?", device_id});
            },
            use_awaitable);
    }

    task<std::optional<domain::certificate>> get(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::certificate>> {
                return find_one<domain::certificate>(
                    c,
                    std::string("SELECT ") + cert_columns +
                        " FROM certificates c WHERE c.user_id = ? AND c.id = ?",
                    read_cert, user_id, id);
            },
            use_awaitable);
    }

    task<bool> remove(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                transaction tx(c);
                if (!exists(c, "SELECT id FROM certificates WHERE user_id = ? AND id = ? FOR UPDATE",
                            {user_id, id})) {
                    return false;
                }
                // Devices holding it are told (cert.unassigned) in the same transaction; a new assignment
                // waits for the certificate's lock, so the list is complete.
                auto const devices = devices_of_cert(c, id);
                lock_devices(c, devices);
                for (auto d : devices) {
                    emit_signal(c, d, "cert.unassigned", boost::json::object{{"cert_id", id}});
                }
                for (char const* q : {"DELETE FROM certificate_assignments WHERE cert_id = ?",
                                      "DELETE FROM issue_history WHERE cert_id = ?",
                                      "DELETE FROM certificate_master_wrapped WHERE cert_id = ?",
                                      "DELETE FROM certificates WHERE id = ?"}) {
                    auto ps = prepare(c, q);
                    ps->setInt64(1, id);
                    ps->executeUpdate();
                }
                tx.commit();
                return true;
            },
            use_awaitable);
    }

    task<bool> account_exists(std::int64_t user_id, std::int64_t acct_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                return owned_row_exists(c, "acme_accounts", user_id, acct_id);
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

// -------------------------------------------------------------------------------------------- devices

class mysql_devices final : public device_repository {
  public:
    explicit mysql_devices(db::pool& p) : pool_(p) {}

    task<domain::device> create(domain::device d) override {
        return db::async_offload(
            pool_,
            [d](sql::Connection& c) mutable -> result<domain::device> {
                auto ps =
                    prepare(c,
                            "INSERT INTO devices (user_id, device_public_id, name, description, device_type, "
                            "platform, model, app_version, ip, user_agent, status, created_at) VALUES (?, ?, "
                            "?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
                ps->setInt64(1, d.user_id);
                ps->setString(2, d.device_public_id);
                ps->setString(3, d.name);
                ps->setString(4, d.description);
                ps->setString(5, d.device_type);
                ps->setString(6, d.platform);
                ps->setString(7, d.model);
                ps->setString(8, d.app_version);
                ps->setString(9, d.ip);
                ps->setString(10, d.user_agent);
                ps->setString(11, d.status);
                ps->setInt64(12, d.created_at);
                ps->executeUpdate();
                d.id = last_insert_id(c);
                return d;
            },
            use_awaitable);
    }

    task<page<domain::device>> list(std::int64_t user_id, page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::device>> {
                return list_page<domain::device>(c, "devices d", device_columns, user_id, q, read_device);
            },
            use_awaitable);
    }

    task<page<domain::device>> list_for_certificate(std::int64_t user_id, std::int64_t cert_id,
                                                    page_query q) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<page<domain::device>> {
                return list_page<domain::device>(
                    c, "devices d JOIN certificate_assignments a ON a.device_id = d.id", device_columns,
                    user_id, q, read_device, row_filter{"a.cert_id = ?", cert_id});
            },
            use_awaitable);
    }

    task<std::optional<domain::device>> get(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::device>> {
                return find_one<domain::device>(c,
                                                std::string("SELECT ") + device_columns +
                                                    " FROM devices d WHERE d.user_id = ? AND d.id = ?",
                                                read_device, user_id, id);
            },
            use_awaitable);
    }

    task<std::optional<domain::device>> get_by_public_id(std::int64_t user_id,
                                                         std::string public_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::device>> {
                return find_one<domain::device>(
                    c,
                    std::string("SELECT ") + device_columns +
                        " FROM devices d WHERE d.user_id = ? AND d.device_public_id = ?",
                    read_device, user_id, public_id);
            },
            use_awaitable);
    }

    task<bool> remove(std::int64_t user_id, std::int64_t id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                return delete_owned_with(c, "devices", user_id, id,
                                         {"DELETE FROM certificate_assignments WHERE device_id = ?"});
            },
            use_awaitable);
    }

    task<assign_outcome> assign(std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id,
                                std::int64_t now, device_sealer sealer) override {
        return db::async_offload(
            pool_,
            [=, sealer = std::move(sealer)](sql::Connection& c) -> result<assign_outcome> {
                transaction tx(c);
                // The certificate first, then the device: the order issuance success takes them in.
                auto cq = prepare(c,
                                  "SELECT domain_name FROM certificates WHERE user_id = ? AND id = ? "
                                  "LOCK IN SHARE MODE");
                cq->setInt64(1, user_id);
                cq->setInt64(2, cert_id);
                rs_ptr crs(cq->executeQuery());
                if (!crs->next()) {
                    return assign_outcome::no_certificate;
                }
                std::string const domain_name = crs->getString(1);
                auto dev = prepare(c, "SELECT status FROM devices WHERE user_id = ? AND id = ? FOR UPDATE");
                dev->setInt64(1, user_id);
                dev->setInt64(2, device_id);
                rs_ptr drs(dev->executeQuery());
                if (!drs->next()) {
                    return assign_outcome::no_device;
                }
                if (drs->getString(1) != "ACTIVE") {
                    return assign_outcome::device_inactive;
                }
                if (exists(c,
                           "SELECT cert_id FROM certificate_assignments WHERE cert_id = ? AND device_id = ?",
                           {cert_id, device_id})) {
                    return assign_outcome::already;
                }
                auto ps =
                    prepare(c,
                            "INSERT INTO certificate_assignments (cert_id, device_id, created_at) VALUES "
                            "(?, ?, ?)");
                ps->setInt64(1, cert_id);
                ps->setInt64(2, device_id);
                ps->setInt64(3, now);
                ps->executeUpdate();
                // The key is sealed to the device now where it can be (cert.updated is signalled either way),
                // and the install config gains an item for the certificate so the agent deploys something.
                wrap_state const state = wrap_assignment(c, cert_id, device_id, sealer);
                add_default_install_item(c, user_id, device_id, cert_id, domain_name, now);
                tx.commit();
                return state == wrap_state::pending ? assign_outcome::assigned_pending
                                                    : assign_outcome::assigned;
            },
            use_awaitable);
    }

    task<bool> unassign(std::int64_t user_id, std::int64_t cert_id, std::int64_t device_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<bool> {
                transaction tx(c);
                if (!exists(c, "SELECT id FROM devices WHERE user_id = ? AND id = ? FOR UPDATE",
                            {user_id, device_id})) {
                    return false;
                }
                auto ps =
                    prepare(c,
                            "DELETE a FROM certificate_assignments a JOIN devices d ON d.id = a.device_id "
                            "WHERE d.user_id = ? AND a.cert_id = ? AND a.device_id = ?");
                ps->setInt64(1, user_id);
                ps->setInt64(2, cert_id);
                ps->setInt64(3, device_id);
                if (ps->executeUpdate() == 0) {
                    return false;
                }
                emit_signal(c, device_id, "cert.unassigned", boost::json::object{{"cert_id", cert_id}});
                tx.commit();
                return true;
            },
            use_awaitable);
    }

    task<std::optional<domain::assignment>> get_assignment(std::int64_t user_id, std::int64_t cert_id,
                                                           std::int64_t device_id) override {
        return db::async_offload(
            pool_,
            [=](sql::Connection& c) -> result<std::optional<domain::assignment>> {
                auto ps = prepare(c,
                                  "SELECT a.cert_id, a.device_id, d.device_public_id, a.wrap_alg, "
                                  "(a.enc_data_key IS NOT NULL AND a.enc_data_key <> REPEAT(CHAR(0), 48)), "
                                  "a.created_at, (a.enc_data_key = REPEAT(CHAR(0), 48)) FROM "
                                  "certificate_assignments a JOIN devices d ON d.id = a.device_id "
                                  "WHERE d.user_id = ? AND a.cert_id = ? AND a.device_id = ?");
                ps->setInt64(1, user_id);
                ps->setInt64(2, cert_id);
                ps->setInt64(3, device_id);
                rs_ptr rs(ps->executeQuery());
                if (!rs->next()) {
                    return std::optional<domain::assignment>{};
                }
                domain::assignment a;
                a.cert_id = i64(*rs, 1);
                a.device_id = i64(*rs, 2);
                a.device_public_id = rs->getString(3);
                a.wrap_alg = rs->getString(4);
                a.wrapped = rs->getBoolean(5);
                a.created_at = i64(*rs, 6);
                a.wrap_pending = rs->getBoolean(7);
                return std::optional<domain::assignment>(a);
            },
            use_awaitable);
    }

  private:
    db::pool& pool_;
};

}  // namespace

std::unique_ptr<ca_repository> make_mysql_ca_repository(db::pool& p) {
    return std::make_unique<mysql_cas>(p);
}
std::unique_ptr<certificate_repository> make_mysql_certificate_repository(db::pool& p) {
    return std::make_unique<mysql_certificates>(p);
}
std::unique_ptr<device_repository> make_mysql_device_repository(db::pool& p) {
    return std::make_unique<mysql_devices>(p);
}

}  // namespace certctrl::repo
