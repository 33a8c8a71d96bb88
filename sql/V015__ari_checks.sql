-- ACME Renewal Information followed over time (RFC 9773 §4.3): when to ask the CA again for a certificate's
-- suggested window (its Retry-After; 0: never, e.g. a CA without renewalInfo), so a window the CA moves (a
-- revocation, an incident) moves the renewal with it.
ALTER TABLE certificates ADD COLUMN ari_next_check BIGINT NOT NULL DEFAULT 0 AFTER renew_after,
    ADD KEY ix_certificates_ari (ari_next_check);
