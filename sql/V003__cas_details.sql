-- Self-managed CAs keep their subject fields and request settings apart, as the CA object publishes them.
ALTER TABLE cas
    ADD COLUMN common_name         VARCHAR(64)  NOT NULL DEFAULT '' AFTER subject,
    ADD COLUMN organization        VARCHAR(64)  NOT NULL DEFAULT '' AFTER common_name,
    ADD COLUMN organizational_unit VARCHAR(64)  NOT NULL DEFAULT '' AFTER organization,
    ADD COLUMN country             VARCHAR(2)   NOT NULL DEFAULT '' AFTER organizational_unit,
    ADD COLUMN state               VARCHAR(128) NOT NULL DEFAULT '' AFTER country,
    ADD COLUMN locality            VARCHAR(128) NOT NULL DEFAULT '' AFTER state,
    ADD COLUMN valid_days          BIGINT       NOT NULL DEFAULT 0 AFTER path_length,
    ADD COLUMN key_usage           VARCHAR(128) NOT NULL DEFAULT 'keyCertSign,cRLSign' AFTER valid_days,
    ADD COLUMN status              VARCHAR(16)  NOT NULL DEFAULT 'ACTIVE' AFTER key_usage,
    ADD COLUMN issued_cert_count   BIGINT       NOT NULL DEFAULT 0 AFTER status,
    ADD COLUMN last_used_at        BIGINT       NOT NULL DEFAULT 0 AFTER issued_cert_count,
    ADD COLUMN updated_at          BIGINT       NOT NULL DEFAULT 0 AFTER created_at;
