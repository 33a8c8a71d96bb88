-- ACME Renewal Information (RFC 9773): when the CA suggests renewing (0: no suggestion, the 2/3 rule applies);
-- and whether SELF_CA leaves also carry the clientAuth extended key usage.
ALTER TABLE certificates
    ADD COLUMN renew_after BIGINT NOT NULL DEFAULT 0 AFTER not_after,
    ADD COLUMN client_auth TINYINT(1) NOT NULL DEFAULT 0 AFTER auto_renew;
