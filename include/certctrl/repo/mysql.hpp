#pragma once

#include "certctrl/repo/acme_accounts.hpp"
#include "certctrl/repo/devices.hpp"
#include "certctrl/repo/dns_providers.hpp"
#include "certctrl/repo/health_repository.hpp"
#include "certctrl/repo/identity.hpp"
#include "certctrl/repo/issuance.hpp"
#include "certctrl/repo/repositories.hpp"
#include "certctrl/repo/resources.hpp"
#include "certctrl/repo/work.hpp"

#include <memory>

namespace certctrl::db {
class pool;
}

namespace certctrl::repo {

/// MySQL implementations of the repository interfaces; the pool must outlive them.
std::unique_ptr<store> make_mysql_store(db::pool& pool);
/// The unit-of-work runner over the pool and every statement set of the MySQL schema.
repositories make_mysql_repositories(db::pool& pool);
std::unique_ptr<health_repository> make_mysql_health_repository(db::pool& pool);
std::unique_ptr<user_repository> make_mysql_user_repository(db::pool& pool);
std::unique_ptr<session_repository> make_mysql_session_repository(db::pool& pool);
std::unique_ptr<api_key_repository> make_mysql_api_key_repository(db::pool& pool);
std::unique_ptr<audit_repository> make_mysql_audit_repository(db::pool& pool);
std::unique_ptr<rate_limit_repository> make_mysql_rate_limit_repository(db::pool& pool);
std::unique_ptr<auth_epoch_repository> make_mysql_auth_epoch_repository(db::pool& pool);
std::unique_ptr<acme_account_repository> make_mysql_acme_account_repository(db::pool& pool);
std::unique_ptr<dns_provider_repository> make_mysql_dns_provider_repository(db::pool& pool);

}  // namespace certctrl::repo
