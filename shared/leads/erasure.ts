/**
 * Erasing a lead on an erasure request (`DELETE /v1/leads/{id}`, admins):
 * its personal data leaves every table that holds it, in ONE transaction,
 * per table as docs/security.md "Data erasure" says:
 *
 * - `businesses`: the row is deleted (the lead no longer exists: 404
 *   everywhere); `lead_history` goes with it (ON DELETE CASCADE, migration 010).
 * - `email_messages`, `appointments`: the lead's rows are deleted (they only
 *   describe contact with this person).
 * - `lead_events`: kept for the funnel and the rollups, which count them, but
 *   each payload keeps only keys that cannot identify anyone
 *   ({@linkcode KEPT_EVENT_KEYS}) plus `erased: true`; a `lead_erased`
 *   event records who erased it.
 * - `idempotent_writes`: the records whose stored result is this lead.
 * - `scrape_runs.rejections`: rejected rows that quote the lead's address,
 *   phone or external id.
 * - `email_suppressions`: every address of the lead (its email, the ledger's
 *   recipients, appointment attendees) is ADDED (reason `erased`, with its
 *   `email_suppression_changes` audit row) or kept, so an erased person is
 *   never mailed again, even if re-imported.
 *
 * @module
 */
import type { Pool, PoolClient } from "@neondatabase/serverless";
import { recordLeadEvents } from "./events.ts";
import { lockLead } from "./repository.ts";
import { withTransaction } from "./transaction.ts";

/**
 * Event payload keys kept by an erasure: statuses (`from`/`to` of status
 * events only: an `email_sent` event's `to` is an address), the template,
 * who refused a send, names of edited fields, the sourcing provider and run.
 */
export const KEPT_EVENT_KEYS = ["template", "refused_by", "fields", "provider", "scrape_run_id"];
const STATUS_EVENTS = ["status_changed", "lead_reopened"];

/** What {@linkcode eraseLead} removed, counted per table (for the audit event and the log). */
export interface ErasureReport {
  lead_id: string;
  email_messages: number;
  appointments: number;
  lead_events: number;
  lead_history: number;
  idempotent_writes: number;
  scrape_runs: number;
  /** Addresses put on (or already on) the suppression list. */
  suppressed: number;
}

/**
 * Erases lead `id` (see the module doc); `source` is who, for the
 * `lead_erased` event. {@linkcode LeadNotFoundError} when there is no such
 * lead — also on a second call: an erased lead no longer exists.
 */
export async function eraseLead(
  sql: Pool,
  id: string,
  source: string,
): Promise<ErasureReport> {
  return await withTransaction(sql, async (client) => {
    // Locked first: a concurrent write to the lead waits, then finds it gone.
    const lead = await lockLead(client, id);
    const count = async (text: string, params: unknown[]) =>
      (await client.query(text, params)).rowCount ?? 0;
    const { rows: addresses } = await client.query<{ address: string }>(
      `SELECT DISTINCT lower(address) AS address FROM (
         SELECT $2::text AS address
         UNION ALL SELECT to_address FROM email_messages WHERE business_id = $1
         UNION ALL SELECT attendee_email FROM appointments WHERE business_id = $1
       ) a WHERE address IS NOT NULL`,
      [id, lead.email],
    );
    // Audited like an admin's addition (shared/email/suppressions.ts, migration 011).
    await client.query(
      `WITH inserted AS (
         INSERT INTO email_suppressions (address, reason, added_by)
         SELECT unnest($1::text[]), 'erased', $2 ON CONFLICT (address) DO NOTHING
         RETURNING address
       )
       INSERT INTO email_suppression_changes (address, action, reason, actor)
       SELECT address, 'added', 'erasure of lead ' || $3, $2 FROM inserted`,
      [addresses.map((a) => a.address), source, id],
    );
    const quoted = [lead.email, lead.phone, lead.external_id].filter((v): v is string => !!v);
    const scrape_runs = quoted.length === 0 ? 0 : await count(
      `UPDATE scrape_runs SET rejections = (
         SELECT coalesce(jsonb_agg(r ORDER BY n), '[]'::jsonb)
           FROM jsonb_array_elements(rejections) WITH ORDINALITY AS x(r, n)
          WHERE NOT EXISTS (SELECT 1 FROM unnest($1::text[]) q WHERE strpos(r::text, q) > 0))
        WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) q WHERE strpos(rejections::text, q) > 0)`,
      [quoted],
    );
    const lead_events = await redactLeadEvents(client, id);
    const idempotent_writes = await count(
      "DELETE FROM idempotent_writes WHERE result->>'id' = $1",
      [id],
    );
    const email_messages = await count("DELETE FROM email_messages WHERE business_id = $1", [id]);
    const appointments = await count("DELETE FROM appointments WHERE business_id = $1", [id]);
    const lead_history = await count("DELETE FROM lead_history WHERE lead_id = $1", [id]);
    await client.query("DELETE FROM businesses WHERE id = $1", [id]);
    const report: ErasureReport = {
      lead_id: id,
      email_messages,
      appointments,
      lead_events,
      lead_history,
      idempotent_writes,
      scrape_runs,
      suppressed: addresses.length,
    };
    const { lead_id: _, ...counts } = report;
    await recordLeadEvents(client, [{
      lead_id: id,
      event_type: "lead_erased",
      event_data: counts,
      source,
    }]);
    return report;
  });
}

/** The part of a client {@linkcode redactLeadEvents} uses. */
export type EventsClient = Pick<PoolClient, "query">;

const REDACT_EVENTS = `UPDATE lead_events SET event_data = (
     SELECT coalesce(jsonb_object_agg(d.key, d.value), '{}'::jsonb)
       FROM jsonb_each(event_data) AS d
      WHERE d.key = ANY($2::text[])
         OR (d.key IN ('from', 'to') AND event_type = ANY($3::text[]))
   ) || '{"erased": true}'::jsonb
   WHERE lead_id = $1`;

/**
 * Decompresses the compressed chunks of `lead_events` whose time range
 * holds an event of lead $1 (docs/reference/timescale-tiers.md §5.1:
 * `timescaledb_information.chunks`). The compression policy compresses them
 * again on its next run.
 */
const DECOMPRESS_LEAD_CHUNKS = `SELECT decompress_chunk(
       format('%I.%I', c.chunk_schema, c.chunk_name)::regclass, true)
   FROM timescaledb_information.chunks c,
        (SELECT min(time) AS lo, max(time) AS hi FROM lead_events WHERE lead_id = $1) r
  WHERE c.hypertable_name = 'lead_events' AND c.is_compressed
    AND c.range_end > r.lo AND c.range_start <= r.hi`;

/**
 * TimescaleDB before 2.11 refuses to change rows of a compressed chunk with
 * SQLSTATE 0A000 (feature_not_supported), "cannot update/delete rows from
 * chunk … as it is compressed"; later versions update them in place.
 */
export function isCompressedChunkRefusal(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === "0A000" && /compressed/i.test(String(e.message ?? ""));
}

/**
 * Cuts lead `id`'s event payloads to {@linkcode KEPT_EVENT_KEYS} (inside the
 * erasure's transaction). Where TimescaleDB refuses because some of them
 * sit in compressed chunks (lead_events compress after 7 days, migration
 * 005), those chunks are decompressed and the update runs again, so an
 * erasure never depends on the TimescaleDB version. Returns the rows changed.
 */
export async function redactLeadEvents(client: EventsClient, id: string): Promise<number> {
  const update = async () =>
    (await client.query(REDACT_EVENTS, [id, KEPT_EVENT_KEYS, STATUS_EVENTS])).rowCount ?? 0;
  // A savepoint: the refused statement must not abort the whole erasure.
  await client.query("SAVEPOINT redact_lead_events");
  try {
    const n = await update();
    await client.query("RELEASE SAVEPOINT redact_lead_events");
    return n;
  } catch (err) {
    if (!isCompressedChunkRefusal(err)) throw err;
    await client.query("ROLLBACK TO SAVEPOINT redact_lead_events");
    await client.query(DECOMPRESS_LEAD_CHUNKS, [id]);
    return await update();
  }
}
