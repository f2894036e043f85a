-- An operator may give up on a welcome email that cannot be delivered (an address that bounces
-- for good): POST /admin/dead-letters/:id/discard marks the dead job skipped, reason 'discarded'.
-- Before, such a job kept dead_letter firing for good; retrying only dead-lettered it again.
ALTER TABLE stakesync.outbox DROP CONSTRAINT outbox_skip_reason_check;
ALTER TABLE stakesync.outbox ADD CONSTRAINT outbox_skip_reason_check
  CHECK (skip_reason IN ('no_email', 'historic', 'discarded'));
