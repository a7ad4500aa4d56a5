-- 011: managing outreach — listing sent emails, suppressions an admin adds
-- and removes (audited), and appointments that are cancelled or rescheduled.

-- Sent emails are listed newest first, overall and per lead, in keyset pages
-- on (created_at, id) (GET /v1/outreach/emails, GET /v1/leads/{id}/emails).
-- The per-lead index replaces 002's (business_id, created_at DESC).
CREATE INDEX email_messages_created_id_idx ON email_messages (created_at DESC, id DESC);
CREATE INDEX email_messages_business_created_id_idx
  ON email_messages (business_id, created_at DESC, id DESC);
DROP INDEX email_messages_business_idx;

-- Who put an address on the list: `api:<principal>` for an admin, NULL for
-- the recipient's own unsubscribe link and for rows older than this column.
ALTER TABLE email_suppressions ADD COLUMN added_by text;
CREATE INDEX email_suppressions_created_idx ON email_suppressions (created_at DESC, address DESC);

-- Every change an admin makes to the suppression list, kept after the
-- suppression itself is removed: removing one lets mail reach a person who
-- once asked for none, so who did it, when and why must stay on record.
CREATE TABLE email_suppression_changes (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  address text NOT NULL CHECK (address = lower(address)),
  action text NOT NULL CHECK (action IN ('added', 'removed')),
  reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
  actor text NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX email_suppression_changes_at_idx ON email_suppression_changes (at DESC, id DESC);
CREATE INDEX email_suppression_changes_address_idx
  ON email_suppression_changes (address, at DESC);

-- Appointments change after booking. `day` (the one-per-day rule's key, see
-- the unique index of 003) is the start's calendar day in `time_zone`, the
-- zone the rule was evaluated in when the row was written; rows older than
-- this column were booked by UTC day. `sequence` is the iCalendar SEQUENCE
-- of the meeting: each reschedule bumps it.
ALTER TABLE appointments
  ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC',
  ADD COLUMN sequence integer NOT NULL DEFAULT 0 CHECK (sequence >= 0),
  ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN cancelled_at timestamptz,
  ADD COLUMN cancel_reason text CHECK (length(cancel_reason) BETWEEN 1 AND 1000);

CREATE TRIGGER appointments_set_updated_at
  BEFORE UPDATE ON appointments
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
