-- 002: the outreach domain — lead events, the email send ledger, suppressions,
-- appointments and scrape runs. Each effect the workers perform is made
-- idempotent by a UNIQUE constraint here, never by check-then-act in code.

-- Every change to a lead is also an event. A plain table here; the analytics
-- migration turns it into a hypertable where TimescaleDB is available, which
-- is why the primary key includes "time" (hypertables require it).
CREATE TABLE lead_events (
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  time timestamptz NOT NULL DEFAULT now(),
  lead_id uuid NOT NULL,
  event_type text NOT NULL CHECK (event_type ~ '^[a-z][a-z0-9_.]{0,62}$'),
  event_data jsonb NOT NULL DEFAULT '{}'::jsonb,
  source text NOT NULL,
  PRIMARY KEY (id, time)
);
CREATE INDEX lead_events_lead_time_idx ON lead_events (lead_id, time DESC);
CREATE INDEX lead_events_type_time_idx ON lead_events (event_type, time DESC);

-- The send ledger: one row per (recipient, template, business, UTC day) — the
-- once-per-day rule. The row is written BEFORE the provider is called; its id
-- is the provider idempotency key and the Message-ID.
CREATE TABLE email_messages (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  business_id uuid NOT NULL REFERENCES businesses (id),
  to_address text NOT NULL CHECK (to_address = lower(to_address)),
  template text NOT NULL,
  send_day date NOT NULL,
  subject text NOT NULL,
  provider text NOT NULL,
  message_id text NOT NULL UNIQUE,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
  provider_response text,
  task_id text,
  attempts integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  CONSTRAINT email_messages_once_per_day_key UNIQUE (to_address, template, business_id, send_day)
);
CREATE INDEX email_messages_business_idx ON email_messages (business_id, created_at DESC);

CREATE TABLE email_suppressions (
  address text PRIMARY KEY CHECK (address = lower(address)),
  reason text NOT NULL DEFAULT 'unsubscribed',
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One appointment per lead per calendar day (UTC), race-free by constraint.
CREATE TABLE appointments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  business_id uuid NOT NULL REFERENCES businesses (id),
  starts_at timestamptz NOT NULL,
  duration_min integer NOT NULL CHECK (duration_min BETWEEN 5 AND 480),
  attendee_email text NOT NULL,
  day date NOT NULL,
  status text NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled')),
  task_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT appointments_lead_day_key UNIQUE (business_id, day)
);
CREATE INDEX appointments_starts_at_idx ON appointments (starts_at);

CREATE TABLE scrape_runs (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  task_id text UNIQUE,
  provider text NOT NULL,
  query text,
  location text,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
  inserted integer NOT NULL DEFAULT 0,
  updated integer NOT NULL DEFAULT 0,
  rejected integer NOT NULL DEFAULT 0,
  rejections jsonb NOT NULL DEFAULT '[]'::jsonb,
  error text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

-- Leads are listed by (created_at, id) with keyset pagination, and searched by name.
CREATE INDEX businesses_created_id_idx ON businesses (created_at DESC, id DESC);
CREATE INDEX businesses_email_idx ON businesses (lower(email));
