/**
 * The email send ledger (`email_messages`) as send_email uses it: claim a
 * send, then record its delivery. Each is ONE statement, so no transaction
 * (and no pooled connection) is held while the provider is called.
 *
 * - `claimSend` inserts the row for the once-per-day key, or takes over an
 *   existing one that is neither sent nor claimed by a live sender. It
 *   returns the claim token, or why the send must not happen now.
 * - `releaseClaim` gives a claim back after a failed provider call, so the
 *   retry does not wait for the claim to expire.
 * - `recordDelivered` marks the row sent — only while the caller still holds
 *   its claim — and, in the same statement, moves the lead from `new` to
 *   `contacted` (the state machine's first step; a lead further along keeps
 *   its status), stamps `last_contacted`, and writes the `email_sent` (and,
 *   when the status moved, `status_changed`) lead events with the same shape
 *   `recordLeadEvents` / `transitionLead` write.
 *
 * @module
 */
import type { Queryable } from "./transaction.ts";

/** What to claim. */
export interface SendClaim {
  ledgerId: string;
  leadId: string;
  to: string;
  template: string;
  /** UTC day of the once-per-day rule, `YYYY-MM-DD`. */
  day: string;
  subject: string;
  provider: string;
  messageId: string;
  taskId: string;
  /** How long the claim protects the send from a concurrent sender. */
  claimMs: number;
}

/** The outcome of {@linkcode claimSend}. */
export type ClaimOutcome =
  | { kind: "claimed"; token: string; messageId: string }
  | { kind: "sent"; messageId: string }
  | { kind: "busy"; messageId: string; claimedUntil: Date };

/** Claims the send of one ledger row (see the module doc). */
export async function claimSend(sql: Queryable, c: SendClaim): Promise<ClaimOutcome> {
  const token = crypto.randomUUID();
  const claimed = await sql.query<{ message_id: string }>(
    `INSERT INTO email_messages AS m
       (id, business_id, to_address, template, send_day, subject, provider, message_id, task_id,
        status, claim_token, claimed_until, attempts)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'sending', $10,
             clock_timestamp() + $11 * interval '1 millisecond', 1)
     ON CONFLICT (to_address, template, business_id, send_day) DO UPDATE
       SET status = 'sending', claim_token = EXCLUDED.claim_token,
           claimed_until = EXCLUDED.claimed_until, attempts = m.attempts + 1,
           task_id = EXCLUDED.task_id
       WHERE m.status <> 'sent'
         AND (m.status <> 'sending' OR m.claimed_until < clock_timestamp()
              -- A redelivery of the SAME task (its lease expired: the earlier
              -- attempt crashed or stalled) takes its own claim over at once;
              -- the queue's lease lets only one attempt of a task be live.
              OR m.task_id = EXCLUDED.task_id)
     RETURNING message_id`,
    [
      c.ledgerId,
      c.leadId,
      c.to,
      c.template,
      c.day,
      c.subject,
      c.provider,
      c.messageId,
      c.taskId,
      token,
      c.claimMs,
    ],
  );
  // An existing row keeps its Message-ID: every attempt of one send carries the same one.
  if (claimed.rows[0]) return { kind: "claimed", token, messageId: claimed.rows[0].message_id };
  const { rows } = await sql.query<{ status: string; message_id: string; claimed_until: Date }>(
    `SELECT status, message_id, claimed_until FROM email_messages
      WHERE to_address = $1 AND template = $2 AND business_id = $3 AND send_day = $4`,
    [c.to, c.template, c.leadId, c.day],
  );
  const row = rows[0]!;
  return row.status === "sent"
    ? { kind: "sent", messageId: row.message_id }
    : { kind: "busy", messageId: row.message_id, claimedUntil: new Date(row.claimed_until) };
}

/** What {@linkcode recordDelivered} records. */
export interface Delivery {
  ledgerId: string;
  token: string;
  /** The provider's answer, kept for operators. */
  response: string;
  /** Event source, e.g. `worker:send_email:<task id>`. */
  source: string;
  /** `email_sent` event data. */
  event: Record<string, unknown>;
}

/**
 * Records a delivery (see the module doc). Returns false when the claim was
 * lost meanwhile (it expired and another sender took the row over).
 */
export async function recordDelivered(sql: Queryable, d: Delivery): Promise<boolean> {
  const { rows } = await sql.query<{ sent: number }>(
    `WITH sent AS (
       UPDATE email_messages
          SET status = 'sent', sent_at = now(), provider_response = $3,
              claim_token = NULL, claimed_until = NULL
        WHERE id = $1 AND claim_token = $2 AND status = 'sending'
        RETURNING business_id
     ), before AS (
       SELECT b.id, b.outreach_status AS old FROM businesses b
        WHERE b.id = (SELECT business_id FROM sent) FOR UPDATE
     ), lead AS (
       UPDATE businesses b
          SET last_contacted = now(),
              outreach_status = CASE WHEN before.old = 'new' THEN 'contacted' ELSE b.outreach_status END
         FROM before WHERE b.id = before.id
       RETURNING b.id, before.old
     ), events AS (
       INSERT INTO lead_events (lead_id, event_type, event_data, source, time)
       SELECT id, 'status_changed',
              jsonb_build_object('from', 'new', 'to', 'contacted') || ($4::jsonb - 'to' - 'template'),
              $5, clock_timestamp()
         FROM lead WHERE old = 'new'
       UNION ALL
       SELECT id, 'email_sent', $4::jsonb, $5, clock_timestamp() + interval '1 microsecond'
         FROM lead
       RETURNING 1
     ), writer AS (
       -- Names the writer for the lead history trigger (migration 010), which
       -- fires at the end of this statement, after this CTE ran.
       SELECT set_config('pleasant_cove.change_source', $5, true) AS source
     )
     SELECT (SELECT count(*) FROM sent)::int AS sent, (SELECT count(*) FROM events)::int AS events,
            (SELECT source FROM writer) AS source`,
    [d.ledgerId, d.token, d.response.slice(0, 2000), JSON.stringify(d.event), d.source],
  );
  return (rows[0]?.sent ?? 0) > 0;
}

/** Gives a claim back (the provider call failed): the row is `pending` again. */
export async function releaseClaim(sql: Queryable, ledgerId: string, token: string): Promise<void> {
  await sql.query(
    `UPDATE email_messages SET status = 'pending', claim_token = NULL, claimed_until = NULL
      WHERE id = $1 AND claim_token = $2 AND status = 'sending'`,
    [ledgerId, token],
  );
}
