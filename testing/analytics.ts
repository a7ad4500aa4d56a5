/**
 * Fixtures of the analytics suites: a migrated private database, a
 * seeded random event generator and the reference GROUP BY the rollups and
 * the query API are compared with.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import type { TestDatabase } from "./database.ts";
import { loadMigrations, migrate, MIGRATIONS_DIR } from "../shared/db/migrate.ts";
import { type NewLeadEvent, recordLeadEvents } from "../shared/leads/events.ts";
import { bucketSql, bucketStart, type BucketWidth, type Tier } from "../shared/analytics/tier.ts";
import { runTag } from "./namespace.ts";
import { mulberry32 } from "../shared/scoring/forest.ts";

export const HOUR = 3_600_000;
export const DAY = 86_400_000;

/** A fresh database on `db`, migrated; returns a pool on it. */
export async function migratedDatabase(db: TestDatabase, max = 4): Promise<Pool> {
  const pool = db.pool({ database: await db.createDatabase(), max });
  await migrate(pool, await loadMigrations(MIGRATIONS_DIR));
  return pool;
}

/**
 * A seeded PRNG (the scoring model's mulberry32), so a failing case can be
 * replayed from its seed.
 */
export const prng: (seed: number) => () => number = mulberry32;

/** Options of {@linkcode randomEvents}. */
export interface RandomEventsOptions {
  count: number;
  /** Events fall in [start, start + hours·1h). */
  start: number;
  hours: number;
  leads: readonly string[];
  types: readonly string[];
}

/**
 * Random events; about a fifth fall exactly on an hour boundary and a tenth
 * a millisecond before one, so bucket edges are always exercised.
 */
export function randomEvents(random: () => number, o: RandomEventsOptions): NewLeadEvent[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  return Array.from({ length: o.count }, () => {
    const hour = o.start + Math.floor(random() * o.hours) * HOUR;
    const edge = random();
    const time = edge < 0.2
      ? hour
      : edge < 0.3
      ? hour + HOUR - 1
      : hour + Math.floor(random() * HOUR);
    return {
      lead_id: pick(o.leads),
      event_type: pick(o.types),
      source: "test:analytics",
      time: new Date(time),
    };
  });
}

/** Records events in batches of 500. */
export async function insertEvents(sql: Pool, events: readonly NewLeadEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    await recordLeadEvents(sql, events.slice(i, i + 500));
  }
}

/** Event types unique to one run (for suites on a shared database). */
export function runTypes(n: number): string[] {
  const run = runTag();
  return Array.from({ length: n }, (_, i) => `test_${run}_t${i}`);
}

/** A row as leadMetrics() returns it. */
export interface MetricsRow {
  bucket: string;
  event_type: string;
  event_count: number;
  unique_leads: number;
}

/**
 * The reference: a direct GROUP BY over raw events for the buckets that
 * overlap [from, to), optionally restricted to some event types.
 */
export async function directMetrics(
  sql: Pool,
  o: { from: Date; to: Date; bucket: BucketWidth; types?: readonly string[]; tier?: Tier },
): Promise<MetricsRow[]> {
  const b = bucketSql(o.tier ?? 3, o.bucket, "time");
  const { rows } = await sql.query<MetricsRow & { bucket: Date }>(
    `SELECT ${b} AS bucket, event_type, count(*)::int AS event_count,
            count(DISTINCT lead_id)::int AS unique_leads
       FROM lead_events
      WHERE ${b} >= $1::timestamptz AND ${b} < $2::timestamptz
        AND ($3::text[] IS NULL OR event_type = ANY($3::text[]))
      GROUP BY 1, 2 ORDER BY 1, 2`,
    [
      new Date(bucketStart(o.from.getTime(), o.bucket)).toISOString(),
      o.to.toISOString(),
      o.types ? [...o.types] : null,
    ],
  );
  return rows.map((r) => ({ ...r, bucket: new Date(r.bucket).toISOString() }));
}

/** The whole content of a rollup table, in the same shape. */
export async function rollupTable(sql: Pool, bucket: BucketWidth): Promise<MetricsRow[]> {
  const [table, column] = bucket === "1h"
    ? ["lead_metrics_hourly", "hour"]
    : ["lead_metrics_daily", "day"];
  const { rows } = await sql.query<MetricsRow & { bucket: Date }>(
    `SELECT ${column} AS bucket, event_type, event_count::int AS event_count,
            unique_leads::int AS unique_leads
       FROM ${table} ORDER BY 1, 2`,
  );
  return rows.map((r) => ({ ...r, bucket: new Date(r.bucket).toISOString() }));
}

/** Everything the reference says for the whole table. */
export function allEvents(bucket: BucketWidth, tier?: Tier) {
  return {
    from: new Date("1970-01-01T00:00:00Z"),
    to: new Date("2200-01-01T00:00:00Z"),
    bucket,
    ...(tier ? { tier } : {}),
  };
}

/** n random lead ids. */
export function leadIds(n: number): string[] {
  return Array.from({ length: n }, () => crypto.randomUUID());
}
