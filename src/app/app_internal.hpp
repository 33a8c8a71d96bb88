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

/// The master keys against the database (master_key_checks, V018): each configured version whose check value
/// is stored must open it; the current version's is stored when missing; a stored check of a version above
/// the current one means secrets were sealed under a key this config lacks. Returns an exit code (2 on a
/// mismatch, the message naming the version).
int check_master_keys(db::pool const& pool, crypto::keyring const& keys);

}  // namespace certctrl::app::detail
