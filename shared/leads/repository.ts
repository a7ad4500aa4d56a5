/**
 * Leads in Postgres (`businesses` + `lead_events`). Every function takes the
 * pool (or a client) first. Writes that change a lead record an event in the
 * same transaction, through {@linkcode recordLeadEvents}.
 *
 * Status changes are race-free: the row is locked (`SELECT … FOR UPDATE`)
 * before the state machine decides, and the UPDATE is conditional on the
 * status it decided from, so two concurrent transitions from one state never
 * both apply.
 *
 * @module
 */
import { Pool } from "@neondatabase/serverless";
import { keysetPage, microsTimestampSql } from "../db/keyset.ts";
import { decodeCursor, encodeCursor, type LeadSort, type SortOrder } from "./cursor.ts";
import { LeadExistsError, LeadNotFoundError } from "./errors.ts";
import { type LeadEvent, type NewLeadEvent, recentLeadEvents, recordLeadEvents } from "./events.ts";
import {
  EDITABLE_FIELDS,
  INSERT_COLUMNS,
  insertValues,
  type Lead,
  LEAD_COLUMNS,
  type LeadPatch,
  type NewLead,
} from "./lead.ts";
import type { LoopLag } from "../loop_lag.ts";
import type { LeadScoreResult } from "../scoring/champion.ts";
import { applyScores, manualScore, rescoreLead } from "../scoring/scores.ts";
import { assertTransition, type OutreachStatus, stepsToReach } from "./status.ts";
import { type Queryable, withTransaction } from "./transaction.ts";
import { type IdempotentResult, idempotentWrite, type WriteKey } from "./idempotent_write.ts";
import { setChangeSource } from "./history.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A lead with its most recent events (newest first). */
export type LeadDetail = Lead & { recent_events: LeadEvent[] };

/** Options of the writes protected by an Idempotency-Key. */
export interface WriteOptions {
  /**
   * Applies the write at most once per key: a second call with the key
   * returns the first's lead without writing (shared/leads/idempotent_write.ts).
   */
  writeKey?: WriteKey;
  /** Called when the key had been used: the lead returned is the earlier write's. */
  onReplay?: () => void;
  /**
   * Deadline of the write's transaction, ms (shared/leads/transaction.ts):
   * past it the connection is destroyed and the write rejects with
   * TransactionDeadlineError. Safe with a `writeKey`: the key is fenced in
   * the write's own transaction, so a late commit and a retry apply once.
   * @default undefined (no deadline)
   */
  deadlineMs?: number;
  /** This process's event-loop stall: the deadline counts net of it (TransactionOptions.lag). */
  lag?: LoopLag;
}

/**
 * Scoring on write (docs/lead-scoring.md §Scoring): with a scorer, a write
 * scores the lead it wrote in the SAME transaction. The row is locked by the
 * write already, scoring is CPU only (the champion is in memory), and the
 * score then commits or rolls back with the features it was computed from:
 * no reader sees new features next to an old score, and no crash between
 * commit and rescore leaves a stale one.
 */
export interface ScoringOptions {
  scorer?: { score(lead: Lead, now: number): LeadScoreResult };
  /** Scoring time. @default Date.now() */
  now?: number;
}

/**
 * Options of {@linkcode createLead}: a caller-given `lead_score` is kept and
 * marked `manual`; otherwise the scorer scores the new lead.
 */
export interface CreateLeadOptions extends WriteOptions, ScoringOptions {}

/**
 * Options of {@linkcode updateLead}: a write that changes the lead is
 * rescored; a patch that sets `lead_score` keeps it, marked `manual`
 * (`null` hands the lead back to the scorer).
 */
export interface UpdateLeadOptions extends WriteOptions, ScoringOptions {}

/** A lead stored as JSON by an idempotent write, with its dates back. */
function reviveLead(json: unknown): Lead {
  const lead = json as Lead & Record<"created_at" | "updated_at", string>;
  return {
    ...lead,
    last_contacted: lead.last_contacted === null ? null : new Date(lead.last_contacted),
    created_at: new Date(lead.created_at),
    updated_at: new Date(lead.updated_at),
  };
}

/**
 * Runs `write` in one transaction under `options`: fenced by the write key
 * (an earlier write with the key answers instead, and `options.onReplay` is
 * told) and bounded by the write deadline.
 */
async function leadWrite(
  sql: Pool,
  options: WriteOptions,
  write: (client: Queryable) => Promise<Lead>,
): Promise<Lead> {
  const out: IdempotentResult<Lead> = await withTransaction(
    sql,
    (client) => idempotentWrite(client, options.writeKey, reviveLead, () => write(client)),
    {
      ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
      ...(options.lag === undefined ? {} : { lag: options.lag }),
    },
  );
  if (out.replayed) options.onReplay?.();
  return out.value;
}

/** Creates a lead and its `lead_created` event in one transaction. `source` is who records it. */
export async function createLead(
  sql: Pool,
  input: NewLead,
  source: string,
  options: CreateLeadOptions = {},
): Promise<Lead> {
  return await leadWrite(sql, options, (client) => insertLead(client, input, source, options));
}

async function insertLead(
  client: Queryable,
  input: NewLead,
  source: string,
  options: CreateLeadOptions,
): Promise<Lead> {
  await setChangeSource(client, source);
  const values = insertValues(input);
  const { rows } = await client.query<Lead>(
    `INSERT INTO businesses (${INSERT_COLUMNS.join(", ")})
     VALUES (${values.map((_, i) => `$${i + 1}`).join(", ")})
     ON CONFLICT (source, external_id) DO NOTHING
     RETURNING ${LEAD_COLUMNS}`,
    values,
  );
  const lead = rows[0];
  if (!lead) {
    // Only a (source, external_id) duplicate lands here: NULL external_ids never conflict.
    const existing = await client.query<{ id: string }>(
      "SELECT id FROM businesses WHERE source = $1 AND external_id = $2",
      [input.source, input.external_id],
    );
    throw new LeadExistsError(input.source, input.external_id!, existing.rows[0]?.id ?? null);
  }
  await recordLeadEvents(client, [{
    lead_id: lead.id,
    event_type: "lead_created",
    event_data: { source: lead.source, external_id: lead.external_id },
    source,
  }]);
  if (!options.scorer) return lead;
  const result: LeadScoreResult = input.lead_score == null
    ? options.scorer.score(lead, options.now ?? Date.now())
    : manualScore(input.lead_score);
  await applyScores(client, [{ id: lead.id, result }]);
  return { ...lead, lead_score: result.lead_score };
}

/** Rescores the written lead under `options` (see {@linkcode ScoringOptions}). */
async function scoreWritten(
  client: Queryable,
  lead: Lead,
  options: ScoringOptions,
): Promise<Lead> {
  if (!options.scorer) return lead;
  const score = await rescoreLead(client, lead.id, options.scorer, options.now ?? Date.now());
  return score === null ? lead : { ...lead, lead_score: score };
}

/** A lead with its 20 most recent events; {@linkcode LeadNotFoundError} when unknown. */
export async function getLead(sql: Queryable, id: string): Promise<LeadDetail> {
  if (!UUID.test(id)) throw new LeadNotFoundError(id);
  const [lead, events] = await Promise.all([
    sql.query<Lead>(`SELECT ${LEAD_COLUMNS} FROM businesses WHERE id = $1`, [id]),
    recentLeadEvents(sql, id, 20),
  ]);
  const row = lead.rows[0];
  if (!row) throw new LeadNotFoundError(id);
  return { ...row, recent_events: events };
}

/** Filters and page of {@linkcode listLeads}. */
export interface LeadFilter {
  /** One status or any of several. */
  status?: OutreachStatus | readonly OutreachStatus[];
  min_score?: number;
  /** Case-insensitive exact match. */
  city?: string;
  /** Case-insensitive exact match. */
  category?: string;
  /** Exact match. */
  source?: string;
  has_website?: boolean;
  /** Leads with (true) or without (false) an email address. */
  has_email?: boolean;
  /** Inclusive lower bound of `created_at`. */
  created_after?: Date;
  /** Exclusive upper bound of `created_at`. */
  created_before?: Date;
  /** Inclusive lower bound of `updated_at`. */
  updated_after?: Date;
  /** Exclusive upper bound of `updated_at`. */
  updated_before?: Date;
  /**
   * Substring of the name, case- and accent-insensitive (`cafe` finds
   * "Café"; `%` and `_` match literally), compared with lead_search_fold()
   * (migration 009).
   */
  q?: string;
  /** @default "created_at" */
  sort?: LeadSort;
  /** @default "desc" */
  order?: SortOrder;
  /** `next_cursor` of the previous page (of the same sort and order). */
  cursor?: string;
  /** Page size, 1 to 200. @default 50 */
  limit?: number;
}

/** One page of leads. */
export interface LeadPage {
  data: Lead[];
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

/** The largest page {@linkcode listLeads} returns. */
export const MAX_PAGE_SIZE = 200;

/**
 * The sort key of each order, as indexed by migrations 002 and 009, and how
 * the cursor renders it. A lead never scored sorts as -1.
 */
const SORT_KEYS: Record<LeadSort, { expr: string; cast: string; render: string }> = {
  created_at: {
    expr: "created_at",
    cast: "timestamptz",
    render: microsTimestampSql("created_at"),
  },
  updated_at: {
    expr: "updated_at",
    cast: "timestamptz",
    render: microsTimestampSql("updated_at"),
  },
  lead_score: {
    expr: "COALESCE(lead_score, -1)",
    cast: "real",
    render: "COALESCE(lead_score, -1)",
  },
};

/**
 * Lists leads in the order of `sort` (default newest first: created_at DESC),
 * ties broken by id in the same direction, with keyset pagination: a page
 * starts strictly after the cursor's row, so rows inserted while a client
 * pages never shift the rows it has not seen yet (no duplicates, no gaps,
 * unlike OFFSET). A row whose sort key changes between two pages (a rescored
 * lead, an update) may be seen twice or not at all, as in any keyset listing.
 */
export async function listLeads(sql: Queryable, filter: LeadFilter = {}): Promise<LeadPage> {
  const limit = filter.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new RangeError(`Cannot list leads: limit must be 1 to ${MAX_PAGE_SIZE}, got ${limit}`);
  }
  const sort = filter.sort ?? "created_at";
  const order = filter.order ?? "desc";
  const key = SORT_KEYS[sort];
  const where: string[] = [];
  const params: unknown[] = [];
  const param = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.status !== undefined) {
    const statuses = typeof filter.status === "string" ? [filter.status] : [...filter.status];
    where.push(`outreach_status = ANY(${param(statuses)}::text[])`);
  }
  if (filter.min_score !== undefined) where.push(`lead_score >= ${param(filter.min_score)}`);
  if (filter.city !== undefined) where.push(`lower(city) = lower(${param(filter.city)})`);
  if (filter.category !== undefined) {
    where.push(`lower(category) = lower(${param(filter.category)})`);
  }
  if (filter.source !== undefined) where.push(`source = ${param(filter.source)}`);
  if (filter.has_website !== undefined) {
    where.push(`has_website = ${param(filter.has_website)}::boolean`);
  }
  if (filter.has_email !== undefined) {
    where.push(filter.has_email ? "email IS NOT NULL" : "email IS NULL");
  }
  const range = (column: string, op: string, at: Date | undefined) => {
    if (at !== undefined) where.push(`${column} ${op} ${param(at.toISOString())}::timestamptz`);
  };
  range("created_at", ">=", filter.created_after);
  range("created_at", "<", filter.created_before);
  range("updated_at", ">=", filter.updated_after);
  range("updated_at", "<", filter.updated_before);
  if (filter.q !== undefined && filter.q !== "") {
    const pattern = `%${filter.q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
    where.push(`lead_search_fold(name) LIKE lead_search_fold(${param(pattern)}) ESCAPE '\\'`);
  }
  const dir = order === "desc" ? "DESC" : "ASC";
  if (filter.cursor !== undefined) {
    const at = decodeCursor(filter.cursor, { sort, order });
    where.push(
      `(${key.expr}, id) ${order === "desc" ? "<" : ">"} (${param(at.key)}::${key.cast}, ${
        param(at.id)
      }::uuid)`,
    );
  }
  const { rows } = await sql.query<Lead & { cursor_key: string | number }>(
    `SELECT ${LEAD_COLUMNS}, ${key.render} AS cursor_key FROM businesses
      ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY ${key.expr} ${dir}, id ${dir}
      LIMIT ${param(limit + 1)}`,
    params,
  );
  const { page, last } = keysetPage(rows, limit);
  return {
    data: page.map(({ cursor_key: _, ...lead }) => lead),
    next_cursor: last ? encodeCursor({ sort, order, key: last.cursor_key, id: last.id }) : null,
  };
}

/** Locks the lead's row for the rest of the transaction; {@linkcode LeadNotFoundError} when unknown. */
export async function lockLead(client: Queryable, id: string): Promise<Lead> {
  if (!UUID.test(id)) throw new LeadNotFoundError(id);
  const { rows } = await client.query<Lead>(
    `SELECT ${LEAD_COLUMNS} FROM businesses WHERE id = $1 FOR UPDATE`,
    [id],
  );
  if (!rows[0]) throw new LeadNotFoundError(id);
  return rows[0];
}

/**
 * Applies a status change to a locked lead; `null` when another writer
 * changed the status in between (only possible without a transaction).
 */
async function moveStatus(
  client: Queryable,
  lead: Lead,
  steps: [OutreachStatus, OutreachStatus][],
  source: string,
  data: Record<string, unknown>,
): Promise<Lead | null> {
  const to = steps.at(-1)![1];
  const { rows } = await client.query<Lead>(
    `UPDATE businesses SET outreach_status = $2 WHERE id = $1 AND outreach_status = $3
     RETURNING ${LEAD_COLUMNS}`,
    [lead.id, to, lead.outreach_status],
  );
  if (!rows[0]) return null;
  // One event per step: every status_changed event is one edge of the state machine.
  await recordLeadEvents(
    client,
    steps.map(([from, step], i): NewLeadEvent => ({
      lead_id: lead.id,
      event_type: "status_changed",
      event_data: i === steps.length - 1 ? { ...data, from, to: step } : { from, to: step },
      source,
    })),
  );
  return rows[0];
}

/**
 * Updates editable fields. A status change goes through the state machine
 * (strict: {@linkcode IllegalTransitionError} for anything but the next step
 * or `not_interested`) and records `status_changed`; other changed fields
 * are recorded as one `lead_updated` event listing them.
 */
export async function updateLead(
  sql: Pool,
  id: string,
  patch: LeadPatch,
  source: string,
  options: UpdateLeadOptions = {},
): Promise<Lead> {
  return await leadWrite(sql, options, (client) => patchLead(client, id, patch, source, options));
}

async function patchLead(
  client: Queryable,
  id: string,
  patch: LeadPatch,
  source: string,
  options: ScoringOptions,
): Promise<Lead> {
  await setChangeSource(client, source);
  let lead = await lockLead(client, id);
  const to = patch.outreach_status;
  const moved = to !== undefined && to !== lead.outreach_status;
  if (moved) {
    assertTransition(lead.outreach_status, to, { leadId: id });
    // The row is locked, so the conditional UPDATE cannot miss.
    lead = (await moveStatus(client, lead, [[lead.outreach_status, to]], source, {}))!;
  }
  const fields = EDITABLE_FIELDS.filter((f) => f !== "outreach_status" && patch[f] !== undefined);
  if (fields.length > 0) {
    const { rows } = await client.query<Lead>(
      `UPDATE businesses SET ${fields.map((f, i) => `${f} = $${i + 2}`).join(", ")}
        WHERE id = $1 RETURNING ${LEAD_COLUMNS}`,
      [id, ...fields.map((f) => patch[f])],
    );
    await recordLeadEvents(client, [{
      lead_id: id,
      event_type: "lead_updated",
      event_data: { fields },
      source,
    }]);
    lead = rows[0]!;
  }
  if (!moved && fields.length === 0) return lead;
  if (patch.lead_score != null) {
    if (options.scorer) await applyScores(client, [{ id, result: manualScore(patch.lead_score) }]);
    return lead;
  }
  return await scoreWritten(client, lead, options);
}

/** Options of {@linkcode transitionLead}. */
export interface TransitionOptions {
  /** Merged into the (last) `status_changed` event's data. @default {} */
  data?: Record<string, unknown>;
  /**
   * `"error"`: the strict state machine (IllegalTransitionError otherwise).
   * `"noop"` (workers): a lead already at or past `to`, or `not_interested`,
   * is left alone; a lead behind it walks every intermediate step, one event
   * each (a booking moves a `contacted` lead through `responded`).
   * @default "error"
   */
  ifReached?: "error" | "noop";
  /**
   * Rescores the lead when its status changed, in the transition's
   * transaction (the caller's, when it passes a client). @default none
   */
  scorer?: ScoringOptions["scorer"];
  /** Scoring time. @default Date.now() */
  now?: number;
}

/** What {@linkcode transitionLead} did. */
export interface TransitionResult {
  /** The lead after the call. */
  lead: Lead;
  /** Its status before the call. */
  from: OutreachStatus;
  /** False when nothing changed (same state, or already reached with `ifReached: "noop"`). */
  changed: boolean;
}

/**
 * Moves a lead to `to`, recording `status_changed` with `source`. With the
 * Pool it runs in its own transaction; with a client it joins the caller's
 * (pass a client inside BEGIN … COMMIT: the event is then atomic with the
 * caller's other writes). Same state is a no-op.
 */
export async function transitionLead(
  sql: Pool | Queryable,
  id: string,
  to: OutreachStatus,
  source: string,
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  const run = async (client: Queryable): Promise<TransitionResult> => {
    await setChangeSource(client, source);
    // Without a caller transaction the lock ends with the SELECT; the
    // conditional UPDATE then detects a concurrent change and we decide again.
    for (let attempt = 0;; attempt++) {
      const lead = await lockLead(client, id);
      const from = lead.outreach_status;
      let steps: [OutreachStatus, OutreachStatus][];
      if (options.ifReached === "noop") {
        steps = stepsToReach(from, to);
      } else {
        assertTransition(from, to, { leadId: id });
        steps = from === to ? [] : [[from, to]];
      }
      if (steps.length === 0) return { lead, from, changed: false };
      const moved = await moveStatus(client, lead, steps, source, options.data ?? {});
      if (moved) return { lead: await scoreWritten(client, moved, options), from, changed: true };
      if (attempt >= 5) {
        throw new Error(`Cannot move lead ${id} to "${to}": its status keeps changing`);
      }
    }
  };
  return sql instanceof Pool ? await withTransaction(sql, run) : await run(sql);
}
