#pragma once
// The MySQL statement sets, made by make_mysql_repositories() (internal to certctrl_repo_mysql).

#include "certctrl/repo/repositories.hpp"

#include <memory>

namespace certctrl::repo::mysql_detail {

std::unique_ptr<ca_repository> make_cas();
std::unique_ptr<certificate_repository> make_certificates();
std::unique_ptr<issuance_repository> make_issuance();
std::unique_ptr<device_repository> make_devices();
std::unique_ptr<device_grant_repository> make_grants();
std::unique_ptr<device_session_repository> make_device_sessions();
std::unique_ptr<device_feed_repository> make_feed();
std::unique_ptr<assignment_repository> make_assignments();
std::unique_ptr<install_config_repository> make_install_configs();
std::unique_ptr<device_ca_repository> make_device_cas();
std::unique_ptr<domain_claim_repository> make_domain_claims();
std::unique_ptr<webhook_repository> make_webhooks();

/// The locking clause of a read (" FOR UPDATE", " LOCK IN SHARE MODE" or "").
char const* lock_clause_of(row_lock lock);

}  // namespace certctrl::repo::mysql_detail
