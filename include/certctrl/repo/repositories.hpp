#pragma once
// The unit-of-work runner and the statement sets it runs, built together by the composition root (the MySQL
// ones by repo::make_mysql_repositories) and handed to the services.

#include "certctrl/repo/devices.hpp"
#include "certctrl/repo/domain_claims.hpp"
#include "certctrl/repo/issuance.hpp"
#include "certctrl/repo/resources.hpp"
#include "certctrl/repo/webhooks.hpp"
#include "certctrl/repo/work.hpp"

#include <memory>

namespace certctrl::repo {

struct repositories {
    std::unique_ptr<store> db;
    std::unique_ptr<ca_repository> cas;
    std::unique_ptr<certificate_repository> certificates;
    std::unique_ptr<issuance_repository> issuance;
    std::unique_ptr<device_repository> devices;
    std::unique_ptr<device_grant_repository> grants;
    std::unique_ptr<device_session_repository> device_sessions;
    std::unique_ptr<device_feed_repository> feed;
    std::unique_ptr<assignment_repository> assignments;
    std::unique_ptr<install_config_repository> install_configs;
    std::unique_ptr<device_ca_repository> device_cas;
    std::unique_ptr<domain_claim_repository> domains;
    std::unique_ptr<webhook_repository> webhooks;
};

}  // namespace certctrl::repo
