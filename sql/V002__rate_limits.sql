-- Fixed-window request counters shared by every server instance.
CREATE TABLE rate_limits (
    bucket          VARCHAR(191) NOT NULL PRIMARY KEY,  -- e.g. auth:ip:203.0.113.7, api:user:42
    window_start    BIGINT NOT NULL,                    -- epoch seconds, a multiple of the window length
    count           INT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Sessions are looked up by token hash and pruned by expiry; api keys by key_id (both keys exist in V001).
CREATE INDEX ix_audit_action ON audit_log (action, id);
