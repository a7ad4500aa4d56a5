/**
 * Lead events (`lead_events`): every change to a lead is also an event.
 * {@linkcode recordLeadEvents} is THE one way code writes them — edge routes,
 * the repository and workers alike — and `ingestEvents()`
 * (shared/analytics/ingest.ts) the one way externally reported events with
 * client ids arrive; both go through {@linkcode insertLeadEvents}, so
 * validation and the insert statement live in one place.
 *
 * @module
 */
import type { Queryable } from "./transaction.ts";

/**
 * Event types the platform records. Types are lower snake_case, optionally
 * dotted (`email.opened`), as the table's CHECK requires; other well-formed
 * types are accepted too so that new producers need no change here, but add
 * them to this list when they become part of the domain.
 */
export const LEAD_EVENT_TYPES = [
  "lead_created",
  "lead_updated",
  "status_changed",
  "email_sent",
  "email_failed",
  "email_replied",
  "appointment_booked",
  "appointment_cancelled",
  "appointment_rescheduled",
  "email_suppressed",
  "note_added",
  "lead_reopened",
  "lead_erased",
] as const;

/** A known event type. */
export type KnownLeadEventType = (typeof LEAD_EVENT_TYPES)[number];
/** A known event type, or any other well-formed one (autocompletes the known ones). */
export type LeadEventType = KnownLeadEventType | (string & Record<never, never>);

/** The `lead_events.event_type` CHECK, mirrored so bad input fails before the round trip. */
export const EVENT_TYPE_PATTERN = /^[a-z][a-z0-9_.]{0,62}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An event to record. */
export interface NewLeadEvent {
  /** The event's id, e.g. a client's event id (uuid). @default generated */
  id?: string;
  lead_id: string;
  event_type: LeadEventType;
  /** JSON object stored as `event_data`. @default {} */
  event_data?: Record<string, unknown>;
  /** Who recorded it: `api:<principal>`, `worker:<task>`, … */
  source: string;
  /** When it happened. @default the database clock at insert */
  time?: Date | string;
}

/** A recorded event. */
export interface LeadEvent {
  id: string;
  time: Date;
  lead_id: string;
  event_type: string;
  event_data: Record<string, unknown>;
  source: string;
}

function invalid(index: number, message: string): TypeError {
  return new TypeError(`Cannot record lead event ${index}: ${message}`);
}

/** Options of {@linkcode insertLeadEvents}. */
export interface InsertLeadEventsOptions {
  /**
   * Skip events that are already stored instead of failing: an event is
   * skipped when a row with its id exists with a time at most this many ms
   * from its own (the primary key (id, time) covers concurrent inserts of the
   * same id and time), or when an earlier event of the batch has its id.
   * Needs every event to carry an `id`.
   * @default undefined: every event is inserted; a repeated (id, time) fails the batch
   */
  skipDuplicatesWithinMs?: number;
}

/**
 * The one INSERT of `lead_events`: the whole batch in ONE statement (unnest
 * of parallel arrays). Pass a client to make the events part of the caller's
 * transaction. Validates every event first: a malformed one rejects the
 * whole batch with nothing written.
 *
 * @returns the ids of the rows written (all of them, unless duplicates are skipped)
 */
export async function insertLeadEvents(
  sql: Queryable,
  events: readonly NewLeadEvent[],
  options: InsertLeadEventsOptions = {},
): Promise<string[]> {
  const windowMs = options.skipDuplicatesWithinMs;
  if (windowMs !== undefined && !(Number.isSafeInteger(windowMs) && windowMs >= 0)) {
    throw new RangeError(
      `Cannot record lead events: skipDuplicatesWithinMs must be a non-negative integer, got ${windowMs}`,
    );
  }
  const ids: (string | null)[] = [];
  const leads: string[] = [];
  const types: string[] = [];
  const data: string[] = [];
  const sources: string[] = [];
  const times: (string | null)[] = [];
  const seen = new Set<string>();
  events.forEach((e, i) => {
    if (e.id !== undefined && (typeof e.id !== "string" || !UUID.test(e.id))) {
      throw invalid(i, `id must be a uuid, got ${JSON.stringify(e.id)}`);
    }
    if (windowMs !== undefined && e.id === undefined) {
      throw invalid(i, "id is required when duplicates are skipped");
    }
    if (typeof e.lead_id !== "string" || !UUID.test(e.lead_id)) {
      throw invalid(i, `lead_id must be a uuid, got ${JSON.stringify(e.lead_id)}`);
    }
    if (typeof e.event_type !== "string" || !EVENT_TYPE_PATTERN.test(e.event_type)) {
      throw invalid(i, `event_type must match ${EVENT_TYPE_PATTERN}, got ${e.event_type}`);
    }
    if (typeof e.source !== "string" || e.source.length === 0) {
      throw invalid(i, "source must be a non-empty string");
    }
    const payload = e.event_data ?? {};
    if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
      throw invalid(i, "event_data must be a JSON object");
    }
    let time: string | null = null;
    if (e.time !== undefined) {
      const ms = e.time instanceof Date ? e.time.getTime() : Date.parse(e.time);
      if (!Number.isFinite(ms)) throw invalid(i, `time is not a valid date: ${e.time}`);
      time = new Date(ms).toISOString();
    }
    const id = e.id?.toLowerCase() ?? null;
    if (windowMs !== undefined) {
      // Rows of one statement do not see each other: the first of an id wins here.
      if (seen.has(id!)) return;
      seen.add(id!);
    }
    ids.push(id);
    leads.push(e.lead_id);
    types.push(e.event_type);
    data.push(JSON.stringify(payload));
    sources.push(e.source);
    times.push(time);
  });
  if (ids.length === 0) return [];
  // Default time: the clock at insert (not now(), the transaction start, so
  // later statements of one transaction sort later), batch rows 1 µs apart in
  // input order, so newest-first listings show a batch in a stable order.
  // Duplicates: the primary key is (id, time) (hypertables need the time in
  // it), so an id alone is not unique; the NOT EXISTS probe reads that key's
  // index by id and a time window (a nested-loop anti-join, a few ms per
  // 1,000 probes on plain Postgres: docs/benchmarks.md). On a hypertable the window's bounds
  // come from the outer row, so chunks outside it can only be excluded at run
  // time (not measured here: no TimescaleDB in CI); a wide window probes more
  // chunks.
  const skip = windowMs === undefined ? "" : `
      WHERE NOT EXISTS (
        SELECT 1 FROM lead_events x
         WHERE x.id = i.id
           AND x.time >= i.time - $7::double precision * interval '1 millisecond'
           AND x.time <= i.time + $7::double precision * interval '1 millisecond')
     ON CONFLICT DO NOTHING`;
  // The written ids come back as ONE comma-joined text, not as a row each (a
  // protocol message per event that the proxy forwards and the driver decodes).
  const { rows } = await sql.query<{ ids: string }>(
    `WITH clock AS (SELECT clock_timestamp() AS ts),
     input AS (
       SELECT coalesce(e.id, gen_random_uuid()) AS id, e.lead_id, e.event_type,
              e.event_data::jsonb AS event_data, e.source,
              coalesce(e.time, clock.ts + (e.n - 1) * interval '1 microsecond') AS time
         FROM clock, unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                            $6::timestamptz[])
              WITH ORDINALITY AS e(id, lead_id, event_type, event_data, source, time, n)
     ),
     written AS (
       INSERT INTO lead_events (id, lead_id, event_type, event_data, source, time)
       SELECT i.id, i.lead_id, i.event_type, i.event_data, i.source, i.time FROM input i${skip}
       RETURNING id
     )
     SELECT coalesce(string_agg(id::text, ','), '') AS ids FROM written`,
    windowMs === undefined
      ? [ids, leads, types, data, sources, times]
      : [ids, leads, types, data, sources, times, windowMs],
  );
  const written = rows[0]!.ids;
  return written === "" ? [] : written.split(",");
}

/**
 * Records events in ONE multi-row insert ({@linkcode insertLeadEvents}).
 * Pass a client to make the events part of the caller's transaction.
 * Validates every event first: a malformed one rejects the whole batch with
 * nothing written.
 *
 * @returns the number of events written
 */
export async function recordLeadEvents(
  sql: Queryable,
  events: readonly NewLeadEvent[],
): Promise<number> {
  return (await insertLeadEvents(sql, events)).length;
}

/** Records one event; see {@linkcode recordLeadEvents}. */
export async function recordLeadEvent(sql: Queryable, event: NewLeadEvent): Promise<void> {
  await recordLeadEvents(sql, [event]);
}

/** The `limit` most recent events of a lead, newest first. */
export async function recentLeadEvents(
  sql: Queryable,
  leadId: string,
  limit = 20,
): Promise<LeadEvent[]> {
  if (!UUID.test(leadId)) return [];
  const { rows } = await sql.query<LeadEvent>(
    `SELECT id, time, lead_id, event_type, event_data, source
       FROM lead_events WHERE lead_id = $1
      ORDER BY time DESC, id DESC LIMIT $2`,
    [leadId, limit],
  );
  return rows;
}
