-- Domain ownership (issue 12): the names of ACME certificates belong to the user who claimed them first. An
-- exact name claims itself; "*.<base>" claims every name below <base>. base_rev is <base> with its labels
-- reversed, each followed by a dot ("com.example."), so the names below a name are one index range.
CREATE TABLE domain_claims (
    name            VARCHAR(255) NOT NULL PRIMARY KEY,
    base_rev        VARCHAR(256) NOT NULL,
    wildcard        TINYINT(1) NOT NULL,
    user_id         BIGINT UNSIGNED NOT NULL,
    verify_token    VARCHAR(64) NOT NULL,
    verified_at     BIGINT NULL,
    created_at      BIGINT NOT NULL,
    KEY ix_domain_claims_base (base_rev, wildcard),
    KEY ix_domain_claims_user (user_id, name),
    CONSTRAINT fk_domain_claims_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- Users an admin let use another user's name.
CREATE TABLE domain_shares (
    name            VARCHAR(255) NOT NULL,
    user_id         BIGINT UNSIGNED NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (name, user_id),
    KEY ix_domain_shares_user (user_id),
    CONSTRAINT fk_domain_shares_claim FOREIGN KEY (name) REFERENCES domain_claims (name)
        ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT fk_domain_shares_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin;

-- The HTTP-01 listener answers a token only for the name (Host) its authorization is for.
ALTER TABLE acme_http_challenges ADD COLUMN identifier VARCHAR(255) NOT NULL DEFAULT '';
