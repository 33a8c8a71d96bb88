-- CA failover (issue 14): a certificate may name further ACME accounts, tried in order when the CA of the
-- one before fails or rate-limits the order (comma-separated account ids, '' for none). Each history row
-- records the ACME account its current (or last) order went to.
ALTER TABLE certificates ADD COLUMN fallback_acct_ids VARCHAR(200) NOT NULL DEFAULT '' AFTER acct_id;
ALTER TABLE issue_history ADD COLUMN acct_id BIGINT UNSIGNED NULL AFTER kind;
