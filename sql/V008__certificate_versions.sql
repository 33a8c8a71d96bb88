-- A version per certificate row, moved by every UPDATE of the row: each UPDATE statement of the repository sets
-- row_version = row_version + 1, and so must a change made by hand. A list reads the (id, row_version) pairs of its page from the index and reads
-- and renders in full only the rows whose version the server has not rendered before.
ALTER TABLE certificates ADD COLUMN row_version BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD KEY ix_certificates_user_version (user_id, id, row_version);
ALTER TABLE certificates DROP KEY ix_certificates_user;
