-- 006: Idempotency-Keys recorded in the database, in the transaction of the
-- write they protect.
--
-- The edge's Idempotency-Key record lives in Redis and its in-flight lock is
-- a lease: an edge paused longer than the lock (a GC pause, a VM freeze, Redis
-- unreachable while Postgres works) loses it and may still commit, while the
-- client's retry runs on another edge. A lock in Redis cannot fence a commit
-- in Postgres, so every write a key protects first inserts its row here in
-- the same transaction (shared/leads/idempotent_write.ts): the second of two
-- such transactions waits on the first's row and then finds the key taken,
-- so at most one commits, and the retry answers the stored result.
--
--   scope        who and which route: '<principal> POST /v1/leads'
--   key          the client's Idempotency-Key
--   fingerprint  SHA-256 of the write (op, lead, fields): the same key with a
--                different write is refused (422 idempotency-key-reused)
--   result       what the write returned (the lead as JSON)
CREATE TABLE idempotent_writes (
  scope text NOT NULL,
  key text NOT NULL,
  fingerprint text NOT NULL,
  result jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);

-- Expiry by age: the daily apply_retention task removes rows older than 7 days.
CREATE INDEX idempotent_writes_created_at_idx ON idempotent_writes (created_at);
