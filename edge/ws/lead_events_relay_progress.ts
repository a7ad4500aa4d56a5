/**
 * What the lead-event relay has published, as Postgres snapshots, and the
 * one query that reads the next page of events (edge/ws/lead_events_relay.ts).
 *
 * `lead_events.ingest_xid` is the inserting transaction's id (migration
 * 004). A snapshot (`xmin:xmax:xip,…`, `pg_current_snapshot()`) names
 * exactly the transactions that had committed when it was taken, so "every
 * event visible in snapshot S was published" is a complete record of
 * progress in a few bytes, however many events it covers: a slow transaction
 * that commits after newer ones is in S's in-progress list (or at or above
 * its xmax) and is picked up by a later snapshot, never skipped. This is the
 * xmin watermark of shared/analytics/rollup.ts made exact: the rollup
 * rescans rows at or above the horizon and recomputes (idempotent), while a
 * publish must not repeat, so the rows already published above the horizon
 * are told apart by the snapshot's in-progress list instead of a set of ids
 * that grows with the traffic.
 *
 * A page reads the events of `target` (a snapshot, or the statement's own)
 * that `done` could not see, in (ingest_xid, id, time) order, after
 * `cursor`. A partly published snapshot stays the target until all its
 * events are out, so the set being paged never changes under the cursor.
 *
 * @module
 */
import { microsTimestampSql } from "../../shared/db/keyset.ts";
import type { Queryable } from "../../shared/leads/transaction.ts";

/** Position inside a target snapshot: the last event published, in page order. */
export interface EventKey {
  xid: string;
  id: string;
  /** The event's time as ISO 8601 UTC with microseconds (the exact stored value). */
  time: string;
}

/** The relay's progress; recorded in Redis as JSON. */
export interface Progress {
  /** Every event visible in this snapshot has been published. */
  done: string;
  /** The snapshot being paged through, or null: take a fresh one. */
  target: string | null;
  /** The last event of `target` published, or null: none yet. */
  cursor: EventKey | null;
}

/** A `lead_events` row as the relay publishes it. */
export interface RelayedEvent {
  xid: string;
  id: string;
  lead_id: string;
  event_type: string;
  event_data: unknown;
  source: string;
  /** ISO 8601 UTC with microseconds, e.g. `2026-08-01T10:00:00.123456Z`. */
  time: string;
}

/** One page: the statement's snapshot and the events read. */
export interface Page {
  snapshot: string;
  events: RelayedEvent[];
}

const SNAPSHOT = /^(\d{1,19}):(\d{1,19}):(\d{1,19}(,\d{1,19})*)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** The xmin and xmax of a snapshot's text. */
export function snapshotBounds(snapshot: string): { xmin: bigint; xmax: bigint } {
  const m = SNAPSHOT.exec(snapshot);
  if (!m) throw new TypeError(`Invalid snapshot "${snapshot}"`);
  return { xmin: BigInt(m[1]!), xmax: BigInt(m[2]!) };
}

/** Progress recorded in Redis, or null when it is not valid progress. */
export function parseProgress(text: string): Progress | null {
  let p: Progress;
  try {
    p = JSON.parse(text) as Progress;
  } catch {
    return null;
  }
  if (typeof p !== "object" || p === null || typeof p.done !== "string") return null;
  if (!SNAPSHOT.test(p.done)) return null;
  if (p.target !== null && (typeof p.target !== "string" || !SNAPSHOT.test(p.target))) return null;
  const c = p.cursor;
  if (c !== null) {
    if (typeof c !== "object" || p.target === null) return null;
    if (!/^\d{1,19}$/.test(c.xid) || !UUID.test(c.id) || !TIME.test(c.time)) return null;
  }
  return { done: p.done, target: p.target, cursor: c };
}

/** The snapshot of now: where a relay without recorded progress starts. */
export async function currentSnapshot(sql: Queryable): Promise<string> {
  const { rows } = await sql.query<{ s: string }>("SELECT pg_current_snapshot()::text AS s");
  return rows[0]!.s;
}

// ONE statement, so one snapshot: `snap` is the statement's own. Rows whose
// ingest_xid is NULL predate migration 004 and are history. The first
// condition is the indexed range (migration 018); the visibility tests do the rest.
const PAGE_SQL = `
WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s)
SELECT snap.s::text AS snapshot, e.*
  FROM snap LEFT JOIN LATERAL (
    SELECT e.ingest_xid::text AS xid, e.id::text AS id, e.lead_id::text AS lead_id,
           e.event_type, e.event_data, e.source,
           ${microsTimestampSql("e.time")} AS time
      FROM lead_events e
     WHERE e.ingest_xid >= $1::bigint
       AND NOT pg_visible_in_snapshot(e.ingest_xid::text::xid8, $2::pg_snapshot)
       AND pg_visible_in_snapshot(e.ingest_xid::text::xid8, coalesce($3::pg_snapshot, snap.s))
       AND ($4::bigint IS NULL
            OR (e.ingest_xid, e.id, e.time) > ($4::bigint, $5::uuid, $6::timestamptz))
     ORDER BY e.ingest_xid, e.id, e.time
     LIMIT $7
  ) e ON true`;

/** Reads up to `limit` events not yet published, in publishing order. */
export async function readPage(sql: Queryable, progress: Progress, limit: number): Promise<Page> {
  const c = progress.cursor;
  const { rows } = await sql.query<RelayedEvent & { snapshot: string }>(PAGE_SQL, [
    snapshotBounds(progress.done).xmin.toString(),
    progress.done,
    progress.target,
    c?.xid ?? null,
    c?.id ?? null,
    c?.time ?? null,
    limit,
  ]);
  const events: RelayedEvent[] = [];
  for (const r of rows) {
    if (r.id === null) continue; // the LEFT JOIN's row when nothing matched
    events.push({
      xid: r.xid,
      id: r.id,
      lead_id: r.lead_id,
      event_type: r.event_type,
      event_data: r.event_data,
      source: r.source,
      time: r.time,
    });
  }
  return { snapshot: rows[0]!.snapshot, events };
}

/**
 * Progress after publishing the first `published` events of `page` (read
 * with `progress` and `limit`). A target is done when its last page was read
 * whole and every event of it went out.
 */
export function advance(progress: Progress, page: Page, published: number, limit: number): {
  progress: Progress;
  /** The target (an earlier one, or the page's snapshot) is now `done`. */
  completed: boolean;
} {
  const target = progress.target ?? page.snapshot;
  if (published === page.events.length && page.events.length < limit) {
    return { progress: { done: target, target: null, cursor: null }, completed: true };
  }
  if (published === 0) return { progress, completed: false };
  const last = page.events[published - 1]!;
  return {
    progress: {
      done: progress.done,
      target,
      cursor: { xid: last.xid, id: last.id, time: last.time },
    },
    completed: false,
  };
}
