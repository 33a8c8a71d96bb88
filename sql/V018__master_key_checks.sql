-- certctrl: older binaries keep working
-- One check value per master key version, sealed under that version when a server first starts with it. A
-- server whose configured key does not open its version's check value (a restore with another key, a typo
-- in a key file) refuses to start, instead of failing every sealed secret later.
CREATE TABLE master_key_checks (
    version         INT UNSIGNED NOT NULL PRIMARY KEY,
    check_blob      VARBINARY(255) NOT NULL,
    created_at      BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
