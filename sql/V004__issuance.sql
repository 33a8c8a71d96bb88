-- Issuance: a cancel request a worker honours at its next safe point, and the HTTP-01 key authorizations any
-- instance's challenge listener serves.
ALTER TABLE issue_history
    ADD COLUMN cancel_requested TINYINT(1) NOT NULL DEFAULT 0 AFTER run_after,
    ADD COLUMN kind VARCHAR(16) NOT NULL DEFAULT 'issue' AFTER status;  -- issue | renew

CREATE TABLE acme_http_challenges (
    token           VARCHAR(255) NOT NULL PRIMARY KEY,
    key_authorization VARCHAR(512) NOT NULL,
    history_id      BIGINT UNSIGNED NOT NULL,
    expires_at      BIGINT NOT NULL,
    KEY ix_acme_http_challenges_history (history_id),
    KEY ix_acme_http_challenges_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
