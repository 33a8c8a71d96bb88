#pragma once
// Install configs (agent contract 4.6): what the agent does with the certificates and CAs it receives. Every
// write is a new version with a history row and an install.updated signal, in one transaction.

#include "certctrl/repo/repositories.hpp"
#include "certctrl/service/device_keys.hpp"
#include "certctrl/service/identity.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <optional>
#include <string>

namespace certctrl::service {

/// Validates an install config's items (agent contract 4.6). Errors: bad_request naming the item.
result<boost::json::array> parse_installs(boost::json::value const& v);

/// True when a config runs commands on the agent: exec items, cmd/cmd_argv/env, an after-update script.
bool runs_commands(boost::json::array const& installs, std::optional<std::string> const& script);

class install_config_service {
  public:
    /// `history_kept`: versions of a device's config kept in its history (older ones are deleted; 0 keeps
    /// all).
    install_config_service(repo::repositories& r, device_signals const& signals, unsigned history_kept = 100)
        : r_(r), signals_(signals), history_kept_(history_kept) {}

    // ---- inside a caller's unit of work (the device row locked)
    /// Writes the next version of the device's config with its history row and install.updated signal.
    repo::install_config write(repo::work& w, std::int64_t user_id, std::int64_t device_id,
                               boost::json::array const& installs, std::optional<std::string> const& script,
                               std::string const& updated_by, std::string const& change_note,
                               std::int64_t now) const;
    /// Adds the default copy item for a certificate unless an item already refers to it.
    void add_default_item(repo::work& w, std::int64_t user_id, std::int64_t device_id, std::int64_t cert_id,
                          std::string const& domain_name, std::int64_t now) const;

    /// Who may set install items that run commands (exec items, cmd, cmd_argv, env, after_update_script).
    struct command_policy {
        bool allowed = true;  // devices.allow_commands
        /// For an API key: whether it holds devices:<device_id>[exec]. Empty: may (a session).
        std::function<bool(std::int64_t device_id)> may_exec;
    };

    // ---- requests
    /// The device's install config (an empty version 0 one when none was written). Errors: not_found.
    task<repo::install_config> get(std::int64_t user_id, std::int64_t device_id);
    /// PUT install-config: `{installs:[...]|installs_json, after_update_script?, change_note?}`.
    /// Errors: bad_request, not_found.
    task<repo::install_config> put(std::int64_t user_id, std::int64_t device_id, boost::json::object body,
                                   std::string updated_by, command_policy policy);
    /// Errors: not_found.
    task<repo::page<repo::install_config>> history(std::int64_t user_id, std::int64_t device_id,
                                                   repo::page_query q);
    /// Restores a version as a new version. Errors: bad_request, not_found.
    task<repo::install_config> restore(std::int64_t user_id, std::int64_t device_id, int version,
                                       std::string change_note, std::string updated_by,
                                       command_policy policy);
    /// POST /apiv1/me/install-config-update/:device_public_id: patches matched by (ob_type, ob_id[, id]);
    /// only type, enabled, cmd, cmd_argv, timeout_ms, env (and after_update_script) change.
    /// Errors: bad_request, not_found.
    task<repo::install_config> patch(std::int64_t user_id, std::string device_public_id,
                                     boost::json::value body, std::string updated_by, command_policy policy);

  private:
    /// Writes `installs` as the device's next version, the device locked, in one transaction.
    task<repo::install_config> store(std::int64_t user_id, std::int64_t device_id,
                                     boost::json::array installs, std::optional<std::string> script,
                                     std::string updated_by, std::string change_note, command_policy policy);
    /// Errors: forbidden when `installs`/`script` add or change commands the policy does not allow.
    result<bool> check_commands(repo::work& w, std::int64_t device_id, boost::json::array const& installs,
                                std::optional<std::string> const& script, command_policy const& policy) const;

    repo::repositories& r_;
    device_signals const& signals_;
    unsigned history_kept_ = 100;
};

}  // namespace certctrl::service
