/**
 * The email send ledger (`email_messages`) as send_email uses it: claim a
 * send, then record its delivery. Each is ONE call of a SQL function
 * (migration 016) for a whole batch of sends, so no transaction (and no
 * pooled connection) is held while the provider is called, and a worker's
 * concurrent sends share a round trip (send_email batches them).
 *
 * - `claimSends` inserts the row for each send's once-per-day key, or takes
 *   over an existing one that is neither sent nor claimed by a live sender.
 *   Per send it returns the claim token, or why the send must not happen now.
 * - `releaseClaim` gives a claim back after a failed provider call, so the
 *   retry does not wait for the claim to expire.
 * - `recordDeliveries` marks each row sent — only while the caller still
 *   holds its claim — and, in the same call, moves the lead from `new` to
 *   `contacted` (the state machine's first step; a lead further along keeps
 *   its status), stamps `last_contacted`, writes the `email_sent` (and, when
 *   the status moved, `status_changed`) lead events with the same shape
 *   `recordLeadEvents` / `transitionLead` write, and the lead's history row
 *   naming the send's own source.
 *
 * `claimSend` and `recordDelivered` are the same for one send.
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

/**
 * Claims the sends of many ledger rows in ONE call (`claim_email_sends`,
 * migration 016); each send's outcome is what {@linkcode claimSend} gives.
 */
export async function claimSends(
  sql: Queryable,
  claims: readonly SendClaim[],
): Promise<ClaimOutcome[]> {
  if (claims.length === 0) return [];
  const tokens = claims.map(() => crypto.randomUUID());
  const col = <K extends keyof SendClaim>(k: K) => claims.map((c) => c[k]);
  const { rows } = await sql.query<
    { n: string; outcome: string; message_id: string; claimed_until: Date | null }
  >(
    `SELECT n, outcome, message_id, claimed_until FROM claim_email_sends(
       $1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::date[], $6::text[], $7::text[],
       $8::text[], $9::text[], $10::uuid[], $11::float8[])`,
    [
      col("ledgerId"),
      col("leadId"),
      col("to"),
      col("template"),
      col("day"),
      col("subject"),
      col("provider"),
      col("messageId"),
      col("taskId"),
      tokens,
      col("claimMs"),
    ],
  );
  return rows.map((row): ClaimOutcome => {
    const i = Number(row.n) - 1;
    if (row.outcome === "claimed") {
      return { kind: "claimed", token: tokens[i]!, messageId: row.message_id };
    }
    return row.outcome === "sent"
      ? { kind: "sent", messageId: row.message_id }
      : { kind: "busy", messageId: row.message_id, claimedUntil: new Date(row.claimed_until!) };
  });
}

/** Claims the send of one ledger row (see the module doc). */
export async function claimSend(sql: Queryable, c: SendClaim): Promise<ClaimOutcome> {
  return (await claimSends(sql, [c]))[0]!;
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
 * Records many deliveries in ONE call (`record_email_deliveries`, migration
 * 014); per delivery, what {@linkcode recordDelivered} returns.
 */
export async function recordDeliveries(
  sql: Queryable,
  deliveries: readonly Delivery[],
): Promise<boolean[]> {
  if (deliveries.length === 0) return [];
  const { rows } = await sql.query<{ n: string; sent: boolean }>(
    `SELECT n, sent FROM record_email_deliveries(
       $1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[])`,
    [
      deliveries.map((d) => d.ledgerId),
      deliveries.map((d) => d.token),
      deliveries.map((d) => d.response),
      deliveries.map((d) => JSON.stringify(d.event)),
      deliveries.map((d) => d.source),
    ],
  );
  const sent = deliveries.map(() => false);
  for (const row of rows) sent[Number(row.n) - 1] = row.sent;
  return sent;
}

/**
 * Records a delivery (see the module doc). Returns false when the claim was
 * lost meanwhile (it expired and another sender took the row over).
 */
export async function recordDelivered(sql: Queryable, d: Delivery): Promise<boolean> {
  return (await recordDeliveries(sql, [d]))[0]!;
}

/** Gives a claim back (the provider call failed): the row is `pending` again. */
export async function releaseClaim(sql: Queryable, ledgerId: string, token: string): Promise<void> {
  await sql.query(
    `UPDATE email_messages SET status = 'pending', claim_token = NULL, claimed_until = NULL
      WHERE id = $1 AND claim_token = $2 AND status = 'sending'`,
    [ledgerId, token],
  );
}
