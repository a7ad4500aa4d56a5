-- 001: businesses, the leads Pleasant Cove finds, scores and contacts.
-- Columns follow the lead-scoring pipeline; outreach_status is a CHECK-ed text
-- (not an enum type) so later migrations can add states without ALTER TYPE.

CREATE TABLE businesses (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 500),
  category text,
  city text,
  rating numeric(2, 1) CHECK (rating BETWEEN 0 AND 5),
  reviews integer NOT NULL DEFAULT 0 CHECK (reviews >= 0),
  has_website boolean NOT NULL DEFAULT false,
  phone text,
  phone_valid boolean,
  email text,
  email_confidence_score real CHECK (email_confidence_score BETWEEN 0 AND 1),
  outreach_status text NOT NULL DEFAULT 'new' CHECK (
    outreach_status IN ('new', 'contacted', 'responded', 'meeting_scheduled', 'client', 'not_interested')
  ),
  last_contacted timestamptz,
  response_time_hours real CHECK (response_time_hours >= 0),
  lead_score real CHECK (lead_score BETWEEN 0 AND 100),
  source text NOT NULL,
  external_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- The same business scraped twice from one source is one lead.
  CONSTRAINT businesses_source_external_id_key UNIQUE (source, external_id)
);

CREATE INDEX businesses_outreach_status_idx ON businesses (outreach_status);
CREATE INDEX businesses_lead_score_idx ON businesses (lead_score DESC NULLS LAST);
CREATE INDEX businesses_city_category_idx ON businesses (city, category);

-- updated_at is maintained by the database so every writer gets it right.
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE TRIGGER businesses_set_updated_at
  BEFORE UPDATE ON businesses
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
