/**
 * The analytics read side: lead metrics per bucket, the outreach funnel and
 * the appointment booking rate. Each function takes `sql` first and returns
 * plain JSON-ready values (ISO strings, numbers).
 *
 * @module
 */
import { AppError } from "../errors.ts";
import type { Pool } from "@neondatabase/serverless";
import type { Queryable } from "../leads/transaction.ts";
import {
  BUCKET_MS,
  bucketInterval,
  bucketSql,
  bucketStart,
  type BucketWidth,
  readTier,
  rollupOf,
  type Tier,
} from "./tier.ts";

const DAY_MS = 86_400_000;

/** Longest range per bucket width (a year of hours; ten years of days or of funnel). */
export const MAX_RANGE_MS: Record<BucketWidth, number> = {
  "1h": 366 * DAY_MS,
  "1d": 3660 * DAY_MS,
};

/** A time range the analytics API cannot answer (400). */
export class InvalidAnalyticsRangeError extends AppError {
  override name = "InvalidAnalyticsRangeError";
  constructor(detail: string) {
    super("invalid-range", 400, "Invalid time range", { details: { detail } });
  }
}

/**
 * Checks `[from, to)`: valid dates, from before to, at most `maxMs` long.
 * @returns the two instants in epoch ms
 */
export function checkRange(from: Date, to: Date, maxMs: number): { from: number; to: number } {
  const f = from.getTime();
  const t = to.getTime();
  if (!Number.isFinite(f) || !Number.isFinite(t)) {
    throw new InvalidAnalyticsRangeError("from and to must be valid ISO 8601 date-times");
  }
  if (f >= t) {
    throw new InvalidAnalyticsRangeError(
      `from (${from.toISOString()}) must be before to (${to.toISOString()})`,
    );
  }
  if (t - f > maxMs) {
    throw new InvalidAnalyticsRangeError(
      `The range is ${Math.ceil((t - f) / DAY_MS)} days long; at most ${maxMs / DAY_MS} days`,
    );
  }
  return { from: f, to: t };
}

/** Options of {@linkcode leadMetrics}. */
export interface LeadMetricsOptions {
  from: Date;
  to: Date;
  bucket: BucketWidth;
  /** Only this event type. @default every type */
  eventType?: string;
  /** The tier, if the caller has read it. @default read from analytics_tier */
  tier?: Tier;
}

/** One bucket of one event type. */
export interface LeadMetricsRow {
  /** Bucket start (UTC). */
  bucket: string;
  event_type: string;
  event_count: number;
  unique_leads: number;
}

function tailSql(tier: Tier, width: BucketWidth): string {
  const { table, column } = rollupOf(width);
  const step = bucketInterval(width);
  const bucketOf = (col: string) => bucketSql(tier, width, col);
  // A bucket is recomputed from raw rows when it holds a row that the refresh
  // behind the rollup had not seen (ingest_xid at or above its horizon, $4)
  // or a pending invalidation; buckets before retained_from are final. The
  // horizon is passed as a value, not joined in, so that the planner sees how
  // few rows lie above it and reads the ingest_xid index instead of the table.
  // $1 from and $2 to (both bucket-aligned), $3 event type or null.
  return `
WITH dirty AS (
  SELECT DISTINCT ${bucketOf("e.time")} AS b
    FROM lead_events e
   WHERE ($4::bigint IS NULL OR e.ingest_xid >= $4::bigint)
     AND e.time >= $1::timestamptz AND e.time < $2::timestamptz
     AND ($3::text IS NULL OR e.event_type = $3::text)
  UNION
  SELECT g.b
    FROM lead_metrics_invalidations i
   CROSS JOIN LATERAL generate_series(
     ${bucketOf("greatest(i.range_start, $1::timestamptz)")},
     least(i.range_end, $2::timestamptz) - interval '1 microsecond', ${step}) AS g(b)
   WHERE i.range_start < $2::timestamptz AND i.range_end > $1::timestamptz
),
live AS (
  SELECT d.b FROM dirty d
   WHERE d.b >= coalesce((SELECT retained_from FROM lead_metrics_state), '-infinity')
)
SELECT r.${column} AS bucket, r.event_type, r.event_count::int AS event_count,
       r.unique_leads::int AS unique_leads
  FROM ${table} r
 WHERE r.${column} >= $1::timestamptz AND r.${column} < $2::timestamptz
   AND ($3::text IS NULL OR r.event_type = $3::text)
   AND r.${column} NOT IN (SELECT b FROM live)
UNION ALL
SELECT l.b, e.event_type, count(*)::int, count(DISTINCT e.lead_id)::int
  FROM live l
  JOIN lead_events e ON e.time >= l.b AND e.time < l.b + ${step}
 WHERE $3::text IS NULL OR e.event_type = $3::text
 GROUP BY l.b, e.event_type`;
}

function aggregateSql(width: BucketWidth): string {
  const { table, column } = rollupOf(width);
  // Tier 1: the continuous aggregate with real-time aggregation already adds
  // the rows newer than its last refresh.
  return `
SELECT ${column} AS bucket, event_type, event_count::int AS event_count,
       unique_leads::int AS unique_leads
  FROM ${table}
 WHERE ${column} >= $1::timestamptz AND ${column} < $2::timestamptz
   AND ($3::text IS NULL OR event_type = $3::text)`;
}

/**
 * Wraps a metrics query (unordered rows of bucket, event_type, event_count,
 * unique_leads) so that Postgres returns them as ONE text, in order:
 * `<bucket epoch s>,<count>,<unique>,<type>` joined by `;` (empty without
 * rows). One value to hand over instead of the driver decoding thousands of
 * rows and dates, and cheaper for Postgres to build than JSON arrays (no
 * per-row json_build_array; date_part, a float, instead of extract's numeric:
 * docs/benchmarks.md, design measurements). Event types need no escaping:
 * `lead_events.event_type`'s CHECK allows only `[a-z0-9_.]`.
 */
function asTextSql(rowsSql: string): string {
  return `
SELECT coalesce(string_agg(
         date_part('epoch', m.bucket)::bigint || ',' || m.event_count || ',' || m.unique_leads
           || ',' || m.event_type,
         ';' ORDER BY m.bucket, m.event_type), '') AS rows
  FROM (${rowsSql}) m`;
}

/**
 * The rows of {@linkcode asTextSql}'s text as the API's objects. Scanned with
 * indexOf rather than split: no array per row (half the time).
 */
function parseRows(text: string): LeadMetricsRow[] {
  const out: LeadMetricsRow[] = [];
  // Rows come bucket by bucket: each bucket's ISO text is made once.
  let epoch = "";
  let bucket = "";
  let i = 0;
  while (i < text.length) {
    let j = text.indexOf(",", i);
    const s = text.slice(i, j);
    i = j + 1;
    j = text.indexOf(",", i);
    const event_count = Number(text.slice(i, j));
    i = j + 1;
    j = text.indexOf(",", i);
    const unique_leads = Number(text.slice(i, j));
    i = j + 1;
    j = text.indexOf(";", i);
    if (j < 0) j = text.length;
    const event_type = text.slice(i, j);
    i = j + 1;
    if (s !== epoch) {
      epoch = s;
      bucket = new Date(Number(s) * 1000).toISOString();
    }
    out.push({ bucket, event_type, event_count, unique_leads });
  }
  return out;
}

/** The recorded tier per pool: migration 004 records it once (docs/analytics.md). */
const tiers = new WeakMap<object, Tier>();

async function tierOf(sql: Pool, known: Tier | undefined): Promise<Tier> {
  if (known !== undefined) return known;
  let tier = tiers.get(sql);
  if (tier === undefined) {
    tier = (await readTier(sql)).tier;
    tiers.set(sql, tier);
  }
  return tier;
}

/**
 * Event counts and unique leads per bucket and event type for every bucket
 * that overlaps `[from, to)` (each with its whole-bucket numbers), from the
 * rollup plus the not yet aggregated tail from raw events, so the numbers are
 * current. Buckets without events are absent.
 *
 * Tier 1 reads the continuous aggregate, whose real-time part covers rows
 * after its materialised range; rows inserted into an already materialised
 * bucket (late events) show after the next refresh (policy or
 * refreshLeadMetrics()).
 */
export async function leadMetrics(
  sql: Pool,
  options: LeadMetricsOptions,
): Promise<LeadMetricsRow[]> {
  if (options.bucket !== "1h" && options.bucket !== "1d") {
    throw new InvalidAnalyticsRangeError(`bucket must be 1h or 1d, got ${options.bucket}`);
  }
  const range = checkRange(options.from, options.to, MAX_RANGE_MS[options.bucket]);
  // Both ends on bucket boundaries: whole buckets are reported, so a row
  // anywhere in the last bucket, also after `to`, makes it dirty.
  const size = BUCKET_MS[options.bucket];
  const params = [
    new Date(bucketStart(range.from, options.bucket)).toISOString(),
    new Date(bucketStart(range.to - 1, options.bucket) + size).toISOString(),
    options.eventType ?? null,
  ];
  const tier = await tierOf(sql, options.tier);
  const query = asTextSql(
    tier === 1 ? aggregateSql(options.bucket) : tailSql(tier, options.bucket),
  );
  let rows: string | null;
  try {
    // ONE statement (migration 014): the horizon read and the data on one
    // snapshot, the query planned with the horizon's value, JIT off.
    rows = (await sql.query<{ rows: string | null }>(
      "SELECT read_lead_metrics($1, $2, $3, $4) AS rows",
      [query, ...params],
    )).rows[0]!.rows;
  } catch (err) {
    // Not migrated: readTier() throws the error that says so.
    await readTier(sql);
    throw err;
  }
  if (rows === null) return [];
  return parseRows(rows);
}

/** The funnel's stages, in order. */
export const FUNNEL_STAGES = ["contacted", "responded", "meeting_scheduled", "client"] as const;

/** One funnel stage. */
export interface FunnelStage {
  stage: (typeof FUNNEL_STAGES)[number];
  /** Cohort leads that reached this stage before `to`. */
  leads: number;
  /** leads / the previous stage's leads; null when that is 0 (and for the first stage). */
  rate_from_previous: number | null;
  /** leads / the cohort size; null for an empty cohort. */
  rate_from_first: number | null;
}

/** The outreach funnel of a range. */
export interface Funnel {
  from: string;
  to: string;
  stages: FunnelStage[];
}

/**
 * The outreach funnel as a cohort: the leads first `contacted` in
 * `[from, to)` (a `status_changed` event to "contacted", none before `from`),
 * and how many of them reached each later stage before `to`. The state
 * machine only steps forward one stage at a time (shared/leads/status.ts),
 * so every count is at most the previous one.
 */
export async function funnel(sql: Queryable, range: { from: Date; to: Date }): Promise<Funnel> {
  const r = checkRange(range.from, range.to, MAX_RANGE_MS["1d"]);
  const from = new Date(r.from).toISOString();
  const to = new Date(r.to).toISOString();
  const { rows } = await sql.query<{ stage: string; leads: number }>(
    `WITH cohort AS (
       SELECT DISTINCT e.lead_id FROM lead_events e
        WHERE e.event_type = 'status_changed' AND e.event_data->>'to' = 'contacted'
          AND e.time >= $1::timestamptz AND e.time < $2::timestamptz
          AND NOT EXISTS (
            SELECT 1 FROM lead_events p
             WHERE p.lead_id = e.lead_id AND p.time < $1::timestamptz
               AND p.event_type = 'status_changed' AND p.event_data->>'to' = 'contacted')
     )
     SELECT s.stage, count(*)::int AS leads
       FROM cohort c
       CROSS JOIN LATERAL (
         SELECT DISTINCT e.event_data->>'to' AS stage FROM lead_events e
          WHERE e.lead_id = c.lead_id AND e.event_type = 'status_changed'
            AND e.time >= $1::timestamptz AND e.time < $2::timestamptz
            AND e.event_data->>'to' = ANY($3::text[])) s
      GROUP BY s.stage`,
    [from, to, [...FUNNEL_STAGES]],
  );
  const counts = new Map(rows.map((row) => [row.stage, row.leads]));
  const first = counts.get("contacted") ?? 0;
  const stages = FUNNEL_STAGES.map((stage, i): FunnelStage => {
    const leads = counts.get(stage) ?? 0;
    const previous = i === 0 ? 0 : counts.get(FUNNEL_STAGES[i - 1]!) ?? 0;
    return {
      stage,
      leads,
      rate_from_previous: previous === 0 ? null : leads / previous,
      rate_from_first: first === 0 ? null : leads / first,
    };
  });
  return { from, to, stages };
}

/** Appointment bookings of a range. */
export interface Bookings {
  from: string;
  to: string;
  /** `appointment_booked` events in the range. */
  booked: number;
  /** Distinct leads among them. */
  leads: number;
  /** Of those bookings, how many were cancelled before `to`. */
  cancelled: number;
  /** booked − cancelled. */
  kept: number;
  /** kept / booked; null without bookings. */
  success_rate: number | null;
}

/**
 * The appointment booking success rate: of the appointments booked in
 * `[from, to)` (`appointment_booked` events), the share not cancelled before
 * `to`. A cancellation (`appointment_cancelled`, which carries no appointment
 * id in the data we have) belongs to the lead's latest booking before it.
 * Bookings refused as duplicates write no event and are not attempts here.
 */
export async function bookings(sql: Queryable, range: { from: Date; to: Date }): Promise<Bookings> {
  const r = checkRange(range.from, range.to, MAX_RANGE_MS["1d"]);
  const from = new Date(r.from).toISOString();
  const to = new Date(r.to).toISOString();
  const { rows } = await sql.query<{ booked: number; leads: number; cancelled: number }>(
    `WITH booked AS (
       SELECT b.lead_id, b.time,
              lead(b.time) OVER (PARTITION BY b.lead_id ORDER BY b.time, b.id) AS next_booking
         FROM lead_events b
        WHERE b.event_type = 'appointment_booked'
          AND b.time >= $1::timestamptz AND b.time < $2::timestamptz
     ),
     outcome AS (
       SELECT b.lead_id, EXISTS (
                SELECT 1 FROM lead_events c
                 WHERE c.lead_id = b.lead_id AND c.event_type = 'appointment_cancelled'
                   AND c.time >= b.time AND c.time < $2::timestamptz
                   AND (b.next_booking IS NULL OR c.time < b.next_booking)) AS cancelled
         FROM booked b
     )
     SELECT count(*)::int AS booked, count(DISTINCT lead_id)::int AS leads,
            count(*) FILTER (WHERE cancelled)::int AS cancelled
       FROM outcome`,
    [from, to],
  );
  const { booked, leads, cancelled } = rows[0]!;
  return {
    from,
    to,
    booked,
    leads,
    cancelled,
    kept: booked - cancelled,
    success_rate: booked === 0 ? null : (booked - cancelled) / booked,
  };
}
