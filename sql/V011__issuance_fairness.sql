-- Fairness: workers skip rows of a user who already has issuance.max_concurrent_per_user rows PROCESSING
-- under a live lease; this index answers that count per user.
ALTER TABLE issue_history ADD KEY ix_issue_history_user_running (user_id, status, lease_until);
