-- Webhooks (issue 15): subscriptions, the events written in the same transaction as the change that caused
-- them (the outbox), and one delivery per subscription and event, claimed by the senders of every instance.

CREATE TABLE webhooks (
    id                    BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id               BIGINT UNSIGNED NOT NULL,
    url                   VARCHAR(2048) NOT NULL,
    description           VARCHAR(255) NOT NULL DEFAULT '',
    events                VARCHAR(512) NOT NULL,      -- event types, comma-separated
    cert_ids              TEXT NULL,                  -- certificate ids, comma-separated; NULL: every one
    enabled               TINYINT(1) NOT NULL DEFAULT 1,
    enc_secret            VARBINARY(255) NOT NULL,    -- sealed under the master keyring, bound to the row
    enc_previous_secret   VARBINARY(255) NULL,        -- still signed with until previous_secret_until
    previous_secret_until BIGINT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    KEY ix_webhooks_user (user_id, id),
    CONSTRAINT fk_webhooks_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE webhook_events (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    public_id       CHAR(30) NOT NULL,               -- "evt_" + 26 random characters: webhook-id and payload id
    user_id         BIGINT UNSIGNED NOT NULL,
    type            VARCHAR(64) NOT NULL,
    cert_id         BIGINT UNSIGNED NULL,            -- no foreign key: certificate.deleted outlives its row
    payload         MEDIUMTEXT NOT NULL,             -- the JSON body sent, byte for byte
    created_at      BIGINT NOT NULL,
    UNIQUE KEY uq_webhook_events_public (public_id),
    KEY ix_webhook_events_user (user_id, id),
    KEY ix_webhook_events_created (created_at),
    CONSTRAINT fk_webhook_events_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE webhook_deliveries (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    webhook_id      BIGINT UNSIGNED NOT NULL,
    event_id        BIGINT UNSIGNED NOT NULL,
    user_id         BIGINT UNSIGNED NOT NULL,
    status          VARCHAR(16) NOT NULL,            -- PENDING | SUCCESS | FAILED
    attempts        INT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,                 -- due time; a claim moves it past its lease
    lease_owner     VARCHAR(128) NULL,
    expires_at      BIGINT NOT NULL,                 -- after this, a failed attempt gives up (FAILED)
    last_status_code INT NULL,
    last_error      VARCHAR(512) NULL,
    last_attempt_at BIGINT NULL,
    completed_at    BIGINT NULL,
    created_at      BIGINT NOT NULL,
    KEY ix_webhook_deliveries_due (status, next_attempt_ms, user_id),
    KEY ix_webhook_deliveries_completed (completed_at),
    KEY ix_webhook_deliveries_webhook (webhook_id, id),
    KEY ix_webhook_deliveries_event (event_id),
    CONSTRAINT fk_webhook_deliveries_webhook FOREIGN KEY (webhook_id) REFERENCES webhooks (id) ON DELETE CASCADE,
    CONSTRAINT fk_webhook_deliveries_event FOREIGN KEY (event_id) REFERENCES webhook_events (id)
        ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- certificate.expiring: the smallest threshold (days) already announced for the certificate's current
-- not_after (NULL: none yet); storing a new certificate clears it.
ALTER TABLE certificates ADD COLUMN expiry_warned_days INT NULL,
    ADD KEY ix_certificates_expiry (not_after, expiry_warned_days);

-- certificate.deployed: the serial a device fetched the deploy materials of, and the one it confirmed
-- (acknowledged its feed after the fetch, or said so in a notify event).
ALTER TABLE certificate_assignments ADD COLUMN fetched_serial VARCHAR(128) NULL,
    ADD COLUMN deployed_serial VARCHAR(128) NULL;
