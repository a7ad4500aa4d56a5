/**
 * Retention of raw lead events and of the rollups: the `apply_retention`
 * task's work (daily).
 *
 * - Tier 1: the retention policies do it; this only re-aligns their
 *   `drop_after` with the configured intervals when they differ.
 * - Tier 2: `drop_chunks('lead_events', older_than => cutoff)`, which removes
 *   whole 1-day chunks (rows up to one chunk older than the cutoff remain until
 *   their chunk ages out, docs/reference/timescale-tiers.md §4.4).
 * - Tier 3: DELETE in bounded batches (short transactions and locks), from
 *   the UTC midnight at or before the cutoff, so that whole hour and day
 *   buckets go, as with 1-day chunks.
 *
 * Tiers 2–3 then record the start of the retained raw data as
 * `lead_metrics_state.retained_from`: rollup buckets before it are final and
 * are never recomputed from the partial raw rows (the refresh-window rule of
 * docs/reference/timescale-tiers.md §4.4), which is what lets rollups outlive raw events.
 * A refresh runs first so that those buckets are complete when they freeze.
 * Rollups are trimmed at their own cutoff, which cannot be later than the raw one.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import { refreshLeadMetrics } from "./rollup.ts";
import { bucketStart, readTier, type Tier } from "./tier.ts";

/** Options of {@linkcode applyRetention}. */
export interface RetentionOptions {
  /** The clock (epoch ms). */
  now: number;
  /** Raw events older than this (ms) are removed, e.g. 90 days. */
  olderThanMs: number;
  /**
   * Rollup buckets older than this (ms) are removed; at least `olderThanMs`
   * (longer keeps hourly and daily history after raw events are gone).
   * @default olderThanMs
   */
  rollupOlderThanMs?: number;
  /** Tier 3: rows per DELETE statement. @default 10_000 */
  batchSize?: number;
  /** Tier 3: DELETE statements per call at most; `done` is false when rows remain. @default 1_000 */
  maxBatches?: number;
  /** The tier, if the caller has read it. @default read from analytics_tier */
  tier?: Tier;
}

/** What a retention run did. */
export interface RetentionResult {
  tier: Tier;
  mode: "policy" | "drop_chunks" | "delete";
  /** Raw events before this instant are gone (tiers 2–3). */
  retainedFrom: string | null;
  /** Rollup buckets before this instant are gone (tiers 2–3). */
  rollupCutoff: string | null;
  /** Tier 2: chunks dropped. */
  droppedChunks: number;
  /** Tier 3: raw events deleted, in how many statements. */
  deletedEvents: number;
  batches: number;
  /** False when tier 3 stopped at maxBatches with old rows left. */
  done: boolean;
  /** Tiers 2–3: rollup rows deleted. */
  deletedRollupRows: number;
  /** Tier 1: relations whose retention policy was replaced. */
  policiesChanged: string[];
}

function intervalText(ms: number): string {
  return ms % 86_400_000 === 0 ? `${ms / 86_400_000} days` : `${ms / 1000} seconds`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

async function alignPolicies(sql: Pool, raw: number, rollup: number): Promise<string[]> {
  const changed: string[] = [];
  const wanted: [string, number][] = [
    ["lead_events", raw],
    ["lead_metrics_hourly", rollup],
    ["lead_metrics_daily", rollup],
  ];
  for (const [relation, ms] of wanted) {
    const interval = intervalText(ms);
    // A continuous aggregate's policy is listed under its materialization hypertable.
    const { rows } = await sql.query<{ same: boolean }>(
      `SELECT (j.config->>'drop_after')::interval = $2::interval AS same
         FROM timescaledb_information.jobs j
        WHERE j.proc_name = 'policy_retention'
          AND (j.hypertable_schema, j.hypertable_name) IN (
            SELECT 'public'::name, $1::name
            UNION ALL
            SELECT materialization_hypertable_schema, materialization_hypertable_name
              FROM timescaledb_information.continuous_aggregates WHERE view_name = $1::name)`,
      [relation, interval],
    );
    if (rows[0]?.same) continue;
    await sql.query("SELECT remove_retention_policy($1::regclass, if_exists => true)", [relation]);
    await sql.query("SELECT add_retention_policy($1::regclass, drop_after => $2::interval)", [
      relation,
      interval,
    ]);
    changed.push(relation);
  }
  return changed;
}

async function freeze(sql: Pool, retainedFrom: number): Promise<void> {
  await sql.query(
    `UPDATE lead_metrics_state
        SET retained_from = greatest(coalesce(retained_from, '-infinity'), $1::timestamptz)`,
    [iso(retainedFrom)],
  );
}

async function trimRollups(sql: Pool, cutoff: number): Promise<number> {
  const { rows } = await sql.query<{ n: number }>(
    `WITH h AS (DELETE FROM lead_metrics_hourly WHERE hour < $1 RETURNING 1),
          d AS (DELETE FROM lead_metrics_daily WHERE day < $1 RETURNING 1)
     SELECT ((SELECT count(*) FROM h) + (SELECT count(*) FROM d))::int AS n`,
    [iso(cutoff)],
  );
  return rows[0]!.n;
}

/** Removes lead events and rollup buckets past their retention (see the module doc per tier). */
export async function applyRetention(
  sql: Pool,
  options: RetentionOptions,
): Promise<RetentionResult> {
  const rawMs = options.olderThanMs;
  const rollupMs = options.rollupOlderThanMs ?? rawMs;
  if (!(Number.isFinite(rawMs) && rawMs > 0) || !(rollupMs >= rawMs)) {
    throw new RangeError(
      `Cannot apply retention: olderThanMs (${rawMs}) must be positive and ` +
        `rollupOlderThanMs (${rollupMs}) at least as long`,
    );
  }
  const tier = options.tier ?? (await readTier(sql)).tier;
  const result: RetentionResult = {
    tier,
    mode: tier === 1 ? "policy" : tier === 2 ? "drop_chunks" : "delete",
    retainedFrom: null,
    rollupCutoff: null,
    droppedChunks: 0,
    deletedEvents: 0,
    batches: 0,
    done: true,
    deletedRollupRows: 0,
    policiesChanged: [],
  };
  if (tier === 1) {
    result.policiesChanged = await alignPolicies(sql, rawMs, rollupMs);
    return result;
  }

  await refreshLeadMetrics(sql, { now: options.now, wait: true, tier });
  const cutoff = options.now - rawMs;
  let retainedFrom: number;
  if (tier === 2) {
    // drop_chunks keeps every chunk that ends after the cutoff, whole.
    const { rows } = await sql.query<{ start: Date | null }>(
      `SELECT min(range_start) AS start FROM timescaledb_information.chunks
        WHERE hypertable_schema = 'public' AND hypertable_name = 'lead_events'
          AND range_end > $1::timestamptz`,
      [iso(cutoff)],
    );
    const start = rows[0]?.start ? new Date(rows[0].start).getTime() : cutoff;
    retainedFrom = bucketStart(Math.min(start, cutoff), "1d");
    await freeze(sql, retainedFrom);
    const dropped = await sql.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM drop_chunks('lead_events', older_than => $1::timestamptz)",
      [iso(cutoff)],
    );
    result.droppedChunks = dropped.rows[0]!.n;
  } else {
    retainedFrom = bucketStart(cutoff, "1d");
    await freeze(sql, retainedFrom);
    const batchSize = options.batchSize ?? 10_000;
    const maxBatches = options.maxBatches ?? 1_000;
    while (result.batches < maxBatches) {
      const res = await sql.query(
        `DELETE FROM lead_events WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM lead_events WHERE time < $1::timestamptz LIMIT $2))`,
        [iso(retainedFrom), batchSize],
      );
      result.batches++;
      const n = res.rowCount ?? 0;
      result.deletedEvents += n;
      if (n < batchSize) break;
    }
    if (result.batches === maxBatches) {
      const left = await sql.query(
        "SELECT 1 FROM lead_events WHERE time < $1::timestamptz LIMIT 1",
        [iso(retainedFrom)],
      );
      result.done = left.rows.length === 0;
    }
  }
  const rollupCutoff = Math.min(bucketStart(options.now - rollupMs, "1d"), retainedFrom);
  result.deletedRollupRows = await trimRollups(sql, rollupCutoff);
  result.retainedFrom = iso(retainedFrom);
  result.rollupCutoff = iso(rollupCutoff);
  return result;
}
