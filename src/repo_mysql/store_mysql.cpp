// The MySQL unit-of-work runner: one pool hop per unit, the transaction opened and closed around it.
#include "certctrl/db/pool.hpp"
#include "certctrl/db/statements.hpp"
#include "certctrl/repo/mysql.hpp"

#include "common.hpp"
#include "factories.hpp"

#include <cppconn/exception.h>

namespace certctrl::repo {

namespace {

constexpr int deadlock = 1213;  // ER_LOCK_DEADLOCK
constexpr int max_attempts = 3;

class unit_job final : public db::pool::job {
  public:
    unit_job(bool transactional, std::unique_ptr<store::unit> u)
        : transactional_(transactional), unit_(std::move(u)) {}

    void run(sql::Connection* conn, app_error const* err) override {
        if (conn == nullptr) {
            unit_->fail(*err);
            unit_->complete();
            return;
        }
        retry_on_new_connection_ = false;
        mysql_detail::mysql_work w(*conn);
        // A transaction chosen as a deadlock victim (or, on Galera, one that lost certification: also 1213)
        // is rolled back by the server and run again (units touch nothing outside the database, so running
        // one twice is safe). One whose connection died before COMMIT was sent was rolled back with it: it
        // runs again once, on a new connection. A connection lost during COMMIT leaves the outcome unknown:
        // that is never retried (the caller gets 503 and can look).
        for (int attempt = 1;; ++attempt) {
            bool open = false;
            bool committing = false;
            try {
                if (transactional_) {
                    db::begin_transaction(*conn);
                    open = true;
                }
                bool const ok = unit_->run(w);
                if (open) {
                    open = false;
                    if (ok) {
                        committing = true;
                        db::commit_transaction(*conn);
                    } else {
                        db::rollback_transaction(*conn);
                    }
                }
            } catch (sql::SQLException const& e) {
                if (open) {
                    db::rollback_transaction(*conn);
                }
                if (e.getErrorCode() == deadlock && transactional_ && attempt < max_attempts) {
                    continue;
                }
                if (db::is_connection_error(e.getErrorCode()) && transactional_ && !committing &&
                    !reconnected_) {
                    reconnected_ = true;
                    retry_on_new_connection_ = true;
                    db::detail::note_job_error(e.getErrorCode());  // the pool drops this connection
                    return;                                        // not completed: it runs again
                }
                unit_->fail(db::map_sql_error(e));
                db::detail::note_job_error(e.getErrorCode());
            } catch (...) {
                if (open) {
                    db::rollback_transaction(*conn);
                }
                unit_->fail(db::detail::current_exception_to_error());
            }
            break;
        }
        unit_->complete();
    }

    bool wants_new_connection() const override { return retry_on_new_connection_; }

  private:
    bool transactional_;
    bool reconnected_ = false;  // ran again on a new connection once already
    bool retry_on_new_connection_ = false;
    std::unique_ptr<store::unit> unit_;
};

class mysql_store final : public store {
  public:
    explicit mysql_store(db::pool& p) : pool_(p) {}
    void submit(bool transactional, std::unique_ptr<unit> u) override {
        pool_.submit(std::make_unique<unit_job>(transactional, std::move(u)));
    }

  private:
    db::pool& pool_;
};

}  // namespace

std::unique_ptr<store> make_mysql_store(db::pool& p) {
    return std::make_unique<mysql_store>(p);
}

repositories make_mysql_repositories(db::pool& p) {
    using namespace mysql_detail;
    repositories r;
    r.db = make_mysql_store(p);
    r.cas = make_cas();
    r.certificates = make_certificates();
    r.issuance = make_issuance();
    r.devices = make_devices();
    r.grants = make_grants();
    r.device_sessions = make_device_sessions();
    r.feed = make_feed();
    r.assignments = make_assignments();
    r.install_configs = make_install_configs();
    r.device_cas = make_device_cas();
    r.domains = make_domain_claims();
    r.webhooks = make_webhooks();
    return r;
}

}  // namespace certctrl::repo
