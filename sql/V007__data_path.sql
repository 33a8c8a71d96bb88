-- The data path (issue 11).
-- Issuance counts of CAs, spread over shards: concurrent issuances under one CA add to different rows instead
-- of queueing on the CA's row until each commits. A CA's count is cas.issued_cert_count plus its shards.
CREATE TABLE ca_usage (
    ca_id           BIGINT UNSIGNED NOT NULL,
    shard           TINYINT UNSIGNED NOT NULL,
    issued          BIGINT NOT NULL DEFAULT 0,
    last_used_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (ca_id, shard),
    CONSTRAINT fk_ca_usage_ca FOREIGN KEY (ca_id) REFERENCES cas (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Bumped in the transaction of every change that must end cached credentials (an API key deleted, a session
-- ended, a user's status changed). Each instance reads it a few times a second and drops its cache of API keys
-- and sessions when it moved.
CREATE TABLE auth_epoch (
    id              TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    epoch           BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO auth_epoch (id, epoch) VALUES (1, 0);
