#pragma once
// What the composition root's files share (internal to certctrl_app).

#include "certctrl/config/config.hpp"
#include "certctrl/crypto/aead.hpp"
#include "certctrl/db/pool.hpp"

namespace certctrl::app::detail {

/// Runs migrations (`apply`) or only checks the schema, on a dedicated connection. Returns an exit code.
int prepare_schema(db::pool const& pool, bool apply);

/// The configured master keys: retired versions and the current one.
crypto::keyring make_keyring(config::config const& cfg);

}  // namespace certctrl::app::detail
