/**
 * Writing scores to `businesses`: one statement per batch, and the
 * resumable rescoring of open leads after an activation.
 *
 * Rescoring walks open leads in id order (keyset: `id > last_id`), a chunk
 * per transaction. The chunk's UPDATE and the move of the run's `last_id`
 * commit together, and the run row is locked first, so a rescorer killed
 * at any point resumes after the last committed chunk (nothing skipped,
 * nothing twice), and two rescorers of one version take turns. Only the
 * chunk's rows are locked, never the table.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import { type Queryable, withTransaction } from "../leads/transaction.ts";
import { type LeadScoreResult, scoreWith } from "./champion.ts";
import type { FeatureSource, Population } from "./features.ts";
import { OPEN_STATUSES } from "./labels.ts";
import { assertModel } from "./model.ts";

/** The SELECT list {@linkcode FeatureSource} needs, columns of the table aliased `t`. */
export function featureColumns(t = "businesses"): string {
  return `${t}.category, ${t}.city, ${t}.rating::float8 AS rating, ${t}.reviews, ${t}.has_website,
    ${t}.phone_valid, ${t}.email_confidence_score, ${t}.response_time_hours, ${t}.last_contacted,
    ${t}.created_at`;
}

/** Writes scores; returns the number of leads updated. */
export async function applyScores(
  sql: Queryable,
  scores: readonly { id: string; result: LeadScoreResult }[],
): Promise<number> {
  if (scores.length === 0) return 0;
  const { rowCount } = await sql.query(
    `UPDATE businesses b SET lead_score = u.score, lead_score_model = u.version,
       lead_score_source = u.source, lead_score_factors = u.factors
     FROM unnest($1::uuid[], $2::real[], $3::integer[], $4::text[], $5::jsonb[])
       AS u(id, score, version, source, factors)
     WHERE b.id = u.id`,
    [
      scores.map((s) => s.id),
      scores.map((s) => s.result.lead_score),
      scores.map((s) => s.result.model_version),
      scores.map((s) => s.result.source),
      scores.map((s) => JSON.stringify(s.result.factors)),
    ],
  );
  return rowCount ?? 0;
}

/** Reads the leads `ids`, scores them with `score`, writes the scores. */
export async function scoreLeadsById(
  sql: Queryable,
  ids: readonly string[],
  score: (lead: FeatureSource) => LeadScoreResult,
): Promise<number> {
  if (ids.length === 0) return 0;
  const { rows } = await sql.query<FeatureSource & { id: string }>(
    `SELECT id, ${featureColumns()} FROM businesses WHERE id = ANY($1::uuid[])`,
    [[...ids]],
  );
  return await applyScores(sql, rows.map((r) => ({ id: r.id, result: score(r) })));
}

/** A caller-given score: kept as it is, marked `manual`. */
export function manualScore(leadScore: number): LeadScoreResult {
  return { lead_score: leadScore, source: "manual", model_version: null, factors: [] };
}

/**
 * Rescores lead `id` with `scorer` as of `now` after a write changed it, on
 * `sql` (the write's transaction client, so the score commits with the
 * change); returns the new score, null when the lead does not exist.
 */
export async function rescoreLead(
  sql: Queryable,
  id: string,
  scorer: { score(lead: FeatureSource, now: number): LeadScoreResult },
  now: number,
): Promise<number | null> {
  let score: number | null = null;
  await scoreLeadsById(sql, [id], (lead) => {
    const result = scorer.score(lead, now);
    score = result.lead_score;
    return result;
  });
  return score;
}

/** Where a lead's `lead_score` came from, for `GET /v1/leads/:id`. */
export interface LeadScoreDetails {
  /** `model`, `heuristic` (no champion when it was scored), `manual` (a caller set it); null: never scored. */
  source: "model" | "heuristic" | "manual" | null;
  model_version: number | null;
  /** The population the model serves (`pre_reply`, `replied`); null without a model. */
  model_population: Population | null;
  /** The features that moved a model score most, in score points. */
  top_factors: unknown[];
}

/** The score provenance of lead `id` (a valid uuid); null when it does not exist. */
export async function leadScoreDetails(
  sql: Queryable,
  id: string,
): Promise<LeadScoreDetails | null> {
  const { rows } = await sql.query<
    { s: string | null; v: number | null; p: Population | null; f: unknown[] | null }
  >(
    `SELECT b.lead_score_source AS s, b.lead_score_model AS v, m.population AS p,
            b.lead_score_factors AS f
       FROM businesses b LEFT JOIN ml_models m ON m.version = b.lead_score_model
      WHERE b.id = $1`,
    [id],
  );
  const row = rows[0];
  return row
    ? {
      source: row.s as LeadScoreDetails["source"],
      model_version: row.v,
      model_population: row.v === null ? null : row.p,
      top_factors: row.f ?? [],
    }
    : null;
}

/** Options of {@linkcode rescoreOpenLeads}. */
export interface RescoreOptions {
  /** Leads per transaction. @default 1000 */
  chunkSize?: number;
  signal?: AbortSignal;
  /** Called after each committed chunk. */
  onChunk?: (progress: { rows: number; total: number }) => void;
}

/** What a rescoring call did. */
export interface RescoreResult {
  /** Leads this call rescored. */
  rows: number;
  /** Leads rescored by every call for this version so far. */
  total: number;
  /** A later activation or rollback exists: stopped early. */
  superseded: boolean;
}

/**
 * Rescores every open lead of the activated model's population (with or
 * without a response time) with the model of activation `activationId`,
 * resuming where an earlier call for the same activation stopped; stops
 * early (`superseded`) once a later activation or rollback of that
 * population exists. `now`
 * gives the scoring time.
 */
export async function rescoreOpenLeads(
  sql: Pool,
  activationId: number,
  now: () => number,
  options: RescoreOptions = {},
): Promise<RescoreResult> {
  const chunkSize = options.chunkSize ?? 1000;
  const { rows: found } = await sql.query<
    { version: number; model: unknown; population: Population }
  >(
    `SELECT a.version, m.model, m.population FROM ml_model_activations a
       JOIN ml_models m ON m.version = a.version
      WHERE a.id = $1`,
    [activationId],
  );
  if (!found[0]) throw new RangeError(`Cannot rescore: no activation ${activationId}`);
  const champion = { version: found[0].version, model: assertModel(found[0].model) };
  const population = found[0].population;
  await sql.query(
    `INSERT INTO ml_rescore_runs (activation_id, model_version) VALUES ($1, $2)
     ON CONFLICT DO NOTHING`,
    [activationId, champion.version],
  );
  let rows = 0;
  for (;;) {
    options.signal?.throwIfAborted();
    const step = await withTransaction(sql, async (client) => {
      const run = await client.query<
        { last_id: string | null; rows_done: string; finished: boolean; champion: boolean }
      >(
        `SELECT r.last_id, r.rows_done, r.finished_at IS NOT NULL AS finished,
           r.activation_id = (
             SELECT max(a.id) FROM ml_model_activations a JOIN ml_models m ON m.version = a.version
              WHERE m.population = $2
           ) AS champion
         FROM ml_rescore_runs r WHERE r.activation_id = $1 FOR UPDATE`,
        [activationId, population],
      );
      const state = run.rows[0]!;
      const total = Number(state.rows_done);
      if (state.finished) return { done: true, superseded: false, total, n: 0 };
      if (!state.champion) return { done: true, superseded: true, total, n: 0 };
      const leads = await client.query<FeatureSource & { id: string }>(
        `SELECT id, ${featureColumns()} FROM businesses
          WHERE outreach_status = ANY($1::text[]) AND ($2::uuid IS NULL OR id > $2::uuid)
            AND (response_time_hours IS NOT NULL) = $4 -- populationOf() in SQL
          ORDER BY id LIMIT $3 FOR UPDATE`,
        [[...OPEN_STATUSES], state.last_id, chunkSize, population === "replied"],
      );
      if (leads.rows.length === 0) {
        await client.query(
          "UPDATE ml_rescore_runs SET finished_at = now() WHERE activation_id = $1",
          [activationId],
        );
        return { done: true, superseded: false, total, n: 0 };
      }
      const at = now();
      const n = await applyScores(
        client,
        leads.rows.map((r) => ({ id: r.id, result: scoreWith(champion, r, at) })),
      );
      await client.query(
        `UPDATE ml_rescore_runs SET last_id = $2, rows_done = rows_done + $3
          WHERE activation_id = $1`,
        [activationId, leads.rows.at(-1)!.id, n],
      );
      return { done: false, superseded: false, total: total + n, n };
    });
    rows += step.n;
    if (step.done) return { rows, total: step.total, superseded: step.superseded };
    options.onChunk?.({ rows, total: step.total });
  }
}
