-- certctrl initial schema. Forward-only: never edit an applied migration, add V002__... instead.
-- Times are epoch seconds (BIGINT) as the API publishes them; secrets are stored only as hashes or
-- encrypted blobs.

CREATE TABLE users (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email           VARCHAR(254) NOT NULL,
    name            VARCHAR(128) NOT NULL DEFAULT '',
    password_hash   VARCHAR(255) NOT NULL,              -- Argon2id encoded string
    roles           VARCHAR(255) NOT NULL DEFAULT 'user', -- comma-separated
    status          VARCHAR(16)  NOT NULL DEFAULT 'ACTIVE', -- ACTIVE | INACTIVE | DISABLED
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE KEY uq_users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT UNSIGNED NOT NULL,
    token_hash      BINARY(32) NOT NULL,                -- hash of the 256-bit session id
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    ip              VARCHAR(45) NOT NULL DEFAULT '',
    user_agent      VARCHAR(255) NOT NULL DEFAULT '',
    UNIQUE KEY uq_sessions_token (token_hash),
    KEY ix_sessions_user (user_id),
    KEY ix_sessions_expires (expires_at),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE api_keys (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT UNSIGNED NOT NULL,
    key_id          CHAR(32) NOT NULL,                  -- public part of ak_<key_id>.<secret>
    secret_hash     BINARY(32) NOT NULL,
    name            VARCHAR(128) NOT NULL,
    permissions     JSON NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    last_used_at    BIGINT NOT NULL DEFAULT 0,
    UNIQUE KEY uq_api_keys_key_id (key_id),
    KEY ix_api_keys_user (user_id, id),
    CONSTRAINT fk_api_keys_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE cas (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT UNSIGNED NOT NULL,
    name            VARCHAR(128) NOT NULL,
    algorithm       VARCHAR(16) NOT NULL,               -- ECDSA_P256 | ECDSA_P384 | RSA_2048 ...
    subject         VARCHAR(1024) NOT NULL,
    cert_pem        TEXT NOT NULL,
    enc_private_key VARBINARY(8192) NOT NULL,           -- AES-256-GCM under a wrapped data key
    key_version     INT NOT NULL DEFAULT 1,
    serial_number   VARCHAR(128) NOT NULL DEFAULT '',
    path_length     INT NOT NULL DEFAULT -1,
    not_before      BIGINT NOT NULL,
    not_after       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    KEY ix_cas_user (user_id, id),
    CONSTRAINT fk_cas_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE acme_accounts (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT UNSIGNED NOT NULL,
    name            VARCHAR(128) NOT NULL,
    email           VARCHAR(254) NOT NULL DEFAULT '',
    provider        VARCHAR(32) NOT NULL,               -- letsencrypt | zerossl | custom | SELF_CA ...
    directory_url   VARCHAR(1024) NOT NULL DEFAULT '',
    kid             VARCHAR(1024) NULL,                 -- account URL once registered
    ca_id           BIGINT UNSIGNED NULL,               -- SELF_CA only
    key_alg         VARCHAR(16) NOT NULL DEFAULT 'ES256',
    enc_account_key VARBINARY(8192) NULL,
    eab_kid         VARCHAR(255) NULL,
    enc_eab_hmac    VARBINARY(1024) NULL,
    leaf_key_algorithm VARCHAR(16) NULL,
    leaf_rsa_bits   INT NULL,
    leaf_ec_curve   VARCHAR(16) NULL,
    cert_valid_seconds BIGINT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    KEY ix_acme_accounts_user (user_id, id),
    CONSTRAINT fk_acme_accounts_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_acme_accounts_ca FOREIGN KEY (ca_id) REFERENCES cas (id) ON DELETE RESTRICT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE dns_providers (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT UNSIGNED NOT NULL,
    name            VARCHAR(128) NOT NULL,
    kind            VARCHAR(16) NOT NULL,               -- rfc2136 | cloudflare | webhook | manual
    settings        JSON NOT NULL,                      -- non-secret settings (server, zone, ...)
    enc_credentials VARBINARY(8192) NULL,               -- encrypted secrets (TSIG secret, API token, ...)
    key_version     INT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    KEY ix_dns_providers_user (user_id, id),
    CONSTRAINT fk_dns_providers_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE certificates (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT UNSIGNED NOT NULL,
    public_id       CHAR(36) NOT NULL,
    domain_name     VARCHAR(253) NOT NULL,
    sans            JSON NOT NULL,
    acct_id         BIGINT UNSIGNED NOT NULL,
    dns_provider_id BIGINT UNSIGNED NULL,
    key_algorithm   VARCHAR(16) NOT NULL DEFAULT 'ECDSA_P256',
    key_dist_policy VARCHAR(16) NOT NULL DEFAULT 'HYBRID', -- HYBRID | MASTER_ONLY | DEVICE_REQUIRED
    server_decrypt_export TINYINT(1) NOT NULL DEFAULT 0,
    auto_renew      TINYINT(1) NOT NULL DEFAULT 1,
    cert_pem        MEDIUMTEXT NULL,                    -- leaf first, then issuers
    csr_pem         TEXT NULL,
    serial_number   VARCHAR(128) NOT NULL DEFAULT '',
    self_signed     TINYINT(1) NOT NULL DEFAULT 0,
    verified        TINYINT(1) NOT NULL DEFAULT 0,
    organization    VARCHAR(128) NOT NULL DEFAULT '',
    organizational_unit VARCHAR(128) NOT NULL DEFAULT '',
    country         VARCHAR(2) NOT NULL DEFAULT '',
    state           VARCHAR(128) NOT NULL DEFAULT '',
    locality        VARCHAR(128) NOT NULL DEFAULT '',
    not_before      BIGINT NOT NULL DEFAULT 0,
    not_after       BIGINT NOT NULL DEFAULT 0,
    enc_privkey     VARBINARY(16384) NULL,              -- AES-256-GCM ciphertext of the private key
    enc_nonce       BINARY(12) NULL,
    enc_tag         BINARY(16) NULL,
    enc_scheme      TINYINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE KEY uq_certificates_public_id (public_id),
    KEY ix_certificates_user (user_id, id),
    KEY ix_certificates_acct (acct_id, id),
    KEY ix_certificates_renewal (auto_renew, not_after),
    CONSTRAINT fk_certificates_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_certificates_acct FOREIGN KEY (acct_id) REFERENCES acme_accounts (id) ON DELETE RESTRICT,
    CONSTRAINT fk_certificates_dns FOREIGN KEY (dns_provider_id) REFERENCES dns_providers (id) ON DELETE RESTRICT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Master-key wrapped copy of each certificate's data key.
CREATE TABLE certificate_master_wrapped (
    cert_id         BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    key_version     INT NOT NULL,
    wrapped_data_key VARBINARY(64) NOT NULL,
    nonce           BINARY(12) NOT NULL,
    tag             BINARY(16) NOT NULL,
    CONSTRAINT fk_cmw_cert FOREIGN KEY (cert_id) REFERENCES certificates (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Issue history rows double as the issuance job queue (claimed with SELECT ... FOR UPDATE SKIP LOCKED).
CREATE TABLE issue_history (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    cert_id         BIGINT UNSIGNED NOT NULL,
    user_id         BIGINT UNSIGNED NOT NULL,
    issue_attempt_number INT NOT NULL DEFAULT 1,
    status          VARCHAR(16) NOT NULL,               -- PENDING | PROCESSING | SUCCESS | FAILED | CANCELLED
    -- Non-NULL (= cert_id) only while PENDING/PROCESSING: the unique key enforces one job in flight.
    inflight_cert_id BIGINT UNSIGNED NULL,
    acme_order_id   VARCHAR(1024) NOT NULL DEFAULT '',
    acme_state      JSON NULL,                          -- resumable order state
    error_message   VARCHAR(2048) NOT NULL DEFAULT '',
    lease_owner     VARCHAR(64) NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    run_after       BIGINT NOT NULL DEFAULT 0,
    started_at      BIGINT NOT NULL DEFAULT 0,
    completed_at    BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    UNIQUE KEY uq_issue_history_inflight (inflight_cert_id),
    KEY ix_issue_history_cert (cert_id, id),
    KEY ix_issue_history_queue (status, run_after),
    CONSTRAINT fk_issue_history_cert FOREIGN KEY (cert_id) REFERENCES certificates (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE devices (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT UNSIGNED NOT NULL,
    device_public_id CHAR(36) NOT NULL,
    name            VARCHAR(128) NOT NULL,
    description     VARCHAR(1024) NOT NULL DEFAULT '',
    device_type     VARCHAR(64) NOT NULL DEFAULT '',
    platform        VARCHAR(64) NOT NULL DEFAULT '',
    model           VARCHAR(128) NOT NULL DEFAULT '',
    app_version     VARCHAR(64) NOT NULL DEFAULT '',
    ip              VARCHAR(45) NOT NULL DEFAULT '',
    user_agent      VARCHAR(255) NOT NULL DEFAULT '',
    status          VARCHAR(16) NOT NULL DEFAULT 'ACTIVE', -- ACTIVE | REVOKED | LOST
    dev_public_key  BINARY(32) NULL,                    -- X25519 public key for sealed boxes
    device_secret_hash BINARY(32) NULL,                 -- BLAKE2b-256 of dev_public_key
    fp_hash         BINARY(32) NULL,
    fp_version      INT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL DEFAULT 0,
    UNIQUE KEY uq_devices_public_id (device_public_id),
    KEY ix_devices_user (user_id, id),
    CONSTRAINT fk_devices_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE certificate_assignments (
    cert_id         BIGINT UNSIGNED NOT NULL,
    device_id       BIGINT UNSIGNED NOT NULL,
    device_keyfp    BINARY(32) NULL,
    enc_data_key    VARBINARY(128) NULL,                -- sealed data key; 48 zero bytes = wrap pending
    wrap_alg        VARCHAR(16) NOT NULL DEFAULT 'x25519',
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (cert_id, device_id),
    KEY ix_assignments_device (device_id, cert_id),
    CONSTRAINT fk_assignments_cert FOREIGN KEY (cert_id) REFERENCES certificates (id) ON DELETE CASCADE,
    CONSTRAINT fk_assignments_device FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE audit_log (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT UNSIGNED NULL,
    action          VARCHAR(64) NOT NULL,               -- login.success, login.failure, apikey.create ...
    outcome         VARCHAR(16) NOT NULL DEFAULT 'ok',
    ip              VARCHAR(45) NOT NULL DEFAULT '',
    request_id      VARCHAR(64) NOT NULL DEFAULT '',
    detail          JSON NULL,                          -- never a secret
    created_at      BIGINT NOT NULL,
    KEY ix_audit_user (user_id, id),
    KEY ix_audit_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
