/**
 * Writing sourced leads: a batched upsert into `businesses` keyed by
 * `(source, external_id)`, and the `scrape_runs` bookkeeping of one sourcing
 * task. Reruns of the same import or search never duplicate a lead.
 *
 * @module
 */
import type { PoolClient } from "@neondatabase/serverless";
import type { LeadRecord, LeadRejection } from "./record.ts";

/** The Pool (each call autocommits) or a client checked out of it, maybe in a transaction. */
export type Queryable = Pick<PoolClient, "query">;

/** Counts of {@linkcode upsertLeads}. */
export interface UpsertResult {
  /** New leads. */
  inserted: number;
  /** Existing leads whose stored values changed. */
  updated: number;
  /** Existing leads that already had exactly these values (not written). */
  unchanged: number;
  /** Records dropped because a later record in the same call had the same key. */
  duplicates: number;
  /** Ids of the new leads (for their `lead_created` events). */
  insertedIds: string[];
  /** Ids of the existing leads whose values changed (rescored: docs/lead-scoring.md). */
  updatedIds: string[];
}

/** Options of {@linkcode upsertLeads}. */
export interface UpsertOptions {
  /** Rows per statement. @default 500 */
  chunkSize?: number;
}

// One statement per chunk: 11 array parameters whatever the row count, so the
// chunk size is bounded by statement time, not by the 65535-parameter limit.
//
// - Only source-owned columns are set on conflict: outreach_status,
//   lead_score, last_contacted and the other pipeline columns are never reset
//   by a rescrape.
// - email keeps the stored address when the source has none (Places never
//   has one; an address found by enrichment must survive the next search).
// - The WHERE … IS DISTINCT FROM skips rows whose values did not change, so an
//   identical rerun writes nothing and does not bump updated_at; those rows
//   are missing from RETURNING and counted as unchanged.
// - xmax = 0 holds for a freshly inserted row version only: the usual way
//   to tell inserts from updates in one upsert.
const UPSERT_SQL = `
INSERT INTO businesses AS b
  (source, external_id, name, category, city, rating, reviews, has_website, phone, phone_valid, email)
SELECT * FROM unnest(
  $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::integer[],
  $8::boolean[], $9::text[], $10::boolean[], $11::text[]
)
ON CONFLICT (source, external_id) DO UPDATE SET
  name = EXCLUDED.name,
  category = EXCLUDED.category,
  city = EXCLUDED.city,
  rating = EXCLUDED.rating,
  reviews = EXCLUDED.reviews,
  has_website = EXCLUDED.has_website,
  phone = EXCLUDED.phone,
  phone_valid = EXCLUDED.phone_valid,
  email = COALESCE(EXCLUDED.email, b.email)
WHERE (b.name, b.category, b.city, b.rating, b.reviews, b.has_website, b.phone, b.phone_valid,
       b.email)
  IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.category, EXCLUDED.city, EXCLUDED.rating, EXCLUDED.reviews,
       EXCLUDED.has_website, EXCLUDED.phone, EXCLUDED.phone_valid, COALESCE(EXCLUDED.email, b.email))
RETURNING id, (xmax = 0) AS inserted`;

function compareKeys(a: LeadRecord, b: LeadRecord): number {
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  return a.external_id < b.external_id ? -1 : a.external_id > b.external_id ? 1 : 0;
}

/**
 * Upserts `records` into `businesses`, one batched statement per chunk. Each
 * chunk is atomic; chunks are not atomic together, which is safe because a
 * rerun converges. Within one call the last record for a key wins (Postgres
 * refuses to update one row twice in a statement).
 */
export async function upsertLeads(
  sql: Queryable,
  records: readonly LeadRecord[],
  options: UpsertOptions = {},
): Promise<UpsertResult> {
  const chunkSize = options.chunkSize ?? 500;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(
      `Cannot upsert leads: chunkSize must be a positive integer, got ${chunkSize}`,
    );
  }
  const byKey = new Map<string, LeadRecord>();
  for (const r of records) byKey.set(JSON.stringify([r.source, r.external_id]), r);
  // Key order everywhere: two concurrent imports sharing leads lock their
  // rows in the same order and cannot deadlock.
  const unique = [...byKey.values()].sort(compareKeys);
  const result: UpsertResult = {
    inserted: 0,
    updated: 0,
    unchanged: 0,
    duplicates: records.length - unique.length,
    insertedIds: [],
    updatedIds: [],
  };
  for (let i = 0; i < unique.length; i += chunkSize) {
    const chunk = unique.slice(i, i + chunkSize);
    const { rows } = await sql.query<{ id: string; inserted: boolean }>(UPSERT_SQL, [
      chunk.map((r) => r.source),
      chunk.map((r) => r.external_id),
      chunk.map((r) => r.name),
      chunk.map((r) => r.category),
      chunk.map((r) => r.city),
      chunk.map((r) => r.rating),
      chunk.map((r) => r.reviews),
      chunk.map((r) => r.has_website),
      chunk.map((r) => r.phone),
      chunk.map((r) => r.phone_valid),
      chunk.map((r) => r.email),
    ]);
    const inserted = rows.filter((r) => r.inserted).length;
    for (const r of rows) (r.inserted ? result.insertedIds : result.updatedIds).push(r.id);
    result.inserted += inserted;
    result.updated += rows.length - inserted;
    result.unchanged += chunk.length - rows.length;
  }
  return result;
}

/** A `scrape_runs` row. */
export interface ScrapeRun {
  id: string;
  task_id: string | null;
  provider: string;
  query: string | null;
  location: string | null;
  status: "running" | "succeeded" | "failed";
  inserted: number;
  updated: number;
  rejected: number;
  rejections: LeadRejection[];
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
}

/** What a run is about. */
export interface ScrapeRunStart {
  /** The queue task running it; null for runs outside the queue (each gets a new row). */
  taskId: string | null;
  /** "places", "csv", "json", … */
  provider: string;
  query?: string | null;
  location?: string | null;
}

/**
 * Starts (or restarts) the run of a task. Idempotent on `task_id`: a retried
 * task gets its existing row back, reset to running with zero counts, so one
 * task is always one row; `started_at` stays the first start.
 */
export async function startScrapeRun(sql: Queryable, run: ScrapeRunStart): Promise<ScrapeRun> {
  const { rows } = await sql.query<ScrapeRun>(
    `INSERT INTO scrape_runs (task_id, provider, query, location)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (task_id) DO UPDATE SET
       provider = EXCLUDED.provider, query = EXCLUDED.query, location = EXCLUDED.location,
       status = 'running', inserted = 0, updated = 0, rejected = 0, rejections = '[]'::jsonb,
       error = NULL, finished_at = NULL
     RETURNING *`,
    [run.taskId, run.provider, run.query ?? null, run.location ?? null],
  );
  return rows[0]!;
}

/** The outcome of a run. */
export interface ScrapeRunFinish {
  status: "succeeded" | "failed";
  inserted: number;
  updated: number;
  /** How many inputs were rejected (all of them, also beyond `rejections`). */
  rejected: number;
  rejections: readonly LeadRejection[];
  error?: string | null;
  /** Rejections stored at most; `rejected` keeps the full count. @default 1000 */
  maxRejections?: number;
}

/**
 * Records the outcome of run `id`; returns the row, or null when there is no
 * such run. The stored rejections are capped so that one broken 10,000-row
 * file cannot make a multi-megabyte row.
 */
export async function finishScrapeRun(
  sql: Queryable,
  id: string,
  outcome: ScrapeRunFinish,
): Promise<ScrapeRun | null> {
  const rejections = outcome.rejections.slice(0, outcome.maxRejections ?? 1000);
  const { rows } = await sql.query<ScrapeRun>(
    `UPDATE scrape_runs SET status = $2, inserted = $3, updated = $4, rejected = $5,
       rejections = $6::jsonb, error = $7, finished_at = now()
     WHERE id = $1
     RETURNING *`,
    [
      id,
      outcome.status,
      outcome.inserted,
      outcome.updated,
      outcome.rejected,
      JSON.stringify(rejections),
      outcome.error ?? null,
    ],
  );
  return rows[0] ?? null;
}
