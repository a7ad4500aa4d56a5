-- 003: send claims on the email ledger, and bookings that ignore cancelled rows.
--
-- send_email used to hold a transaction (and a pooled connection) open across
-- the provider call. Now a send CLAIMS its ledger row in one statement
-- (status 'sending', a claim token and an expiry), calls the provider with no
-- transaction open, and finishes with one statement that only applies while
-- it still holds the claim. A crashed sender's claim expires, so the task's
-- redelivery can take it over.

ALTER TABLE email_messages DROP CONSTRAINT email_messages_status_check;
ALTER TABLE email_messages ADD CONSTRAINT email_messages_status_check
  CHECK (status IN ('pending', 'sending', 'sent', 'failed'));
ALTER TABLE email_messages
  ADD COLUMN claim_token uuid,
  ADD COLUMN claimed_until timestamptz;

-- One BOOKED appointment per lead and UTC day: a cancelled one no longer
-- blocks rebooking that day.
ALTER TABLE appointments DROP CONSTRAINT appointments_lead_day_key;
CREATE UNIQUE INDEX appointments_lead_day_booked_key
  ON appointments (business_id, day) WHERE status = 'booked';
