-- How a certificate's names are proven to an ACME CA: '' (auto: DNS-01 through its DNS provider, else HTTP-01
-- on the server's listener), 'http-01-agent' (the assigned devices' agents serve the token) or
-- 'dns-01-delegated' (TXT records at <public_id>.<issuance.delegation.domain>, where the user's
-- _acme-challenge CNAME points).
ALTER TABLE certificates ADD COLUMN challenge VARCHAR(24) NOT NULL DEFAULT '' AFTER client_auth;
-- The newest feed id a device is known to have received (HTTP poll cursors, WebSocket acks): a worker
-- waiting for agents to pick up an acme.http01.start reads it. A table of its own and without a foreign key
-- (whose check would share-lock the device row), so recording it never waits for the device row that signal
-- writers lock; a deleted device's row is only ever read by id, and ids are not reused.
CREATE TABLE device_feed_received (
    device_id       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    feed_id         BIGINT UNSIGNED NOT NULL
) ENGINE=InnoDB;
