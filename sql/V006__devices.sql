-- Device distribution: the OAuth 2.0 device grant and registration codes, device sessions with rotating
-- refresh tokens, the per-device update feed (the outbox written in the same transaction as each change),
-- install configs with their history, and CAs assigned to devices.
ALTER TABLE devices
    ADD COLUMN agent_version VARCHAR(64) NOT NULL DEFAULT '' AFTER app_version,
    ADD COLUMN push_token VARCHAR(512) NOT NULL DEFAULT '' AFTER user_agent,
    ADD COLUMN updates_trimmed_through BIGINT UNSIGNED NOT NULL DEFAULT 0;  -- highest feed id dropped

CREATE TABLE device_auth_codes (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_code_hash BINARY(32) NOT NULL,               -- SHA-256 of the device_code
    user_code       CHAR(9) NOT NULL,                   -- XXXX-XXXX
    status          VARCHAR(16) NOT NULL,               -- PENDING | APPROVED | DENIED | ISSUED
    user_id         BIGINT UNSIGNED NULL,               -- the approving user
    scopes          VARCHAR(512) NOT NULL DEFAULT '',
    interval_s      INT NOT NULL,
    expires_at      BIGINT NOT NULL,
    last_poll_ms    BIGINT NOT NULL DEFAULT 0,
    registration_code_hash BINARY(32) NULL,
    registration_expires_at BIGINT NOT NULL DEFAULT 0,
    registered_device_id BIGINT UNSIGNED NULL,          -- the device the registration code was first used for
    created_at      BIGINT NOT NULL,
    UNIQUE KEY uq_device_auth_codes_device_code (device_code_hash),
    UNIQUE KEY uq_device_auth_codes_user_code (user_code),
    UNIQUE KEY uq_device_auth_codes_registration (registration_code_hash),
    KEY ix_device_auth_codes_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One session per registration of a device; its refresh tokens rotate, a rotated token used again ends it.
CREATE TABLE device_sessions (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id       BIGINT UNSIGNED NOT NULL,
    user_id         BIGINT UNSIGNED NOT NULL,
    started_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,                    -- of the newest refresh token
    terminated_at   BIGINT NOT NULL DEFAULT 0,
    terminated_reason VARCHAR(32) NOT NULL DEFAULT '',
    KEY ix_device_sessions_device (device_id),
    CONSTRAINT fk_device_sessions_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE device_refresh_tokens (
    token_hash      BINARY(32) NOT NULL PRIMARY KEY,    -- SHA-256 of the token
    session_id      BIGINT UNSIGNED NOT NULL,
    rotated_at      BIGINT NOT NULL DEFAULT 0,          -- 0 while it is the session's live token
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    KEY ix_device_refresh_tokens_session (session_id),
    CONSTRAINT fk_device_refresh_tokens_session FOREIGN KEY (session_id) REFERENCES device_sessions (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The update feed: rows are written in the transaction of the change that causes them; the id is the cursor.
CREATE TABLE device_updates (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id       BIGINT UNSIGNED NOT NULL,
    type            VARCHAR(64) NOT NULL,
    ref             JSON NOT NULL,
    ts_ms           BIGINT NOT NULL,
    KEY ix_device_updates_device (device_id, id),
    CONSTRAINT fk_device_updates_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE device_install_configs (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    device_id       BIGINT UNSIGNED NOT NULL,
    user_id         BIGINT UNSIGNED NOT NULL,
    version         INT NOT NULL,
    installs        JSON NOT NULL,
    installs_hash   VARCHAR(64) NOT NULL,
    after_update_script MEDIUMTEXT NULL,
    updated_by      VARCHAR(128) NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE KEY uq_device_install_configs_device (device_id),
    CONSTRAINT fk_device_install_configs_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE device_install_config_history (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    config_id       BIGINT UNSIGNED NOT NULL,
    device_id       BIGINT UNSIGNED NOT NULL,
    version         INT NOT NULL,
    installs        JSON NOT NULL,
    installs_hash   VARCHAR(64) NOT NULL,
    after_update_script MEDIUMTEXT NULL,
    change_note     VARCHAR(512) NOT NULL DEFAULT '',
    updated_by      VARCHAR(128) NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    UNIQUE KEY uq_device_install_config_history (device_id, version),
    CONSTRAINT fk_device_install_config_history_device FOREIGN KEY (device_id) REFERENCES devices (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE device_cas (
    device_id       BIGINT UNSIGNED NOT NULL,
    ca_id           BIGINT UNSIGNED NOT NULL,
    assigned_at     BIGINT NOT NULL,
    PRIMARY KEY (device_id, ca_id),
    KEY ix_device_cas_ca (ca_id),
    CONSTRAINT fk_device_cas_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE,
    CONSTRAINT fk_device_cas_ca FOREIGN KEY (ca_id) REFERENCES cas (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
