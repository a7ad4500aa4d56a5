/**
 * Lead history (`lead_history`, migration 010): every change to a lead with
 * the old and new value of each field, who made it and when.
 *
 * Field changes are written by the table's trigger in the transaction of the
 * write; {@linkcode setChangeSource} tells the trigger who is writing (it
 * cannot see the caller). Notes are not fields, so
 * {@linkcode recordNoteHistory} writes theirs. {@linkcode listLeadHistory}
 * pages it by (at, id).
 *
 * @module
 */
import { keysetPage, microsTimestampSql } from "../db/keyset.ts";
import { LeadNotFoundError } from "./errors.ts";
import type { Queryable } from "./transaction.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What the history records as a change's kind (the trigger derives the first four). */
export const HISTORY_ACTIONS = [
  "created",
  "updated",
  "status_changed",
  "scored",
  "reopened",
  "note_added",
] as const;
/** A kind of change. */
export type HistoryAction = (typeof HISTORY_ACTIONS)[number];

/** One field's change; `old` is null for a created lead or a first note. */
export interface FieldChange {
  old: unknown;
  new: unknown;
}

/** One change to a lead. */
export interface HistoryEntry {
  id: string;
  lead_id: string;
  at: Date;
  /** Who: `api:<principal sub>`, `worker:<task>…`, `platform`. */
  source: string;
  action: HistoryAction;
  changes: Record<string, FieldChange>;
}

/**
 * Names the writer (and, optionally, the kind of change) for the history
 * trigger, for the rest of the transaction `client` is in. Outside a
 * transaction it lasts one statement only, so call it inside one.
 */
export async function setChangeSource(
  client: Queryable,
  source: string,
  action?: HistoryAction,
): Promise<void> {
  await client.query(
    `SELECT set_config('pleasant_cove.change_source', $1, true),
            set_config('pleasant_cove.change_action', $2, true)`,
    [source, action ?? ""],
  );
}

/** Records a note as a `note_added` history entry (`changes.note.new` is its text). */
export async function recordNoteHistory(
  client: Queryable,
  leadId: string,
  text: string,
  source: string,
): Promise<void> {
  await client.query(
    `INSERT INTO lead_history (lead_id, source, action, changes)
     VALUES ($1, $2, 'note_added', jsonb_build_object('note', jsonb_build_object('old', NULL, 'new', $3::text)))`,
    [leadId, source, text],
  );
}

/**
 * A position in a lead's history: the last entry's time, UTC with
 * microseconds (`2026-01-31T12:00:00.123456Z`; a Date would round entries of
 * one millisecond together), and id.
 */
export interface HistoryPosition {
  at: string;
  id: string;
}

/** Options of {@linkcode listLeadHistory}. */
export interface HistoryQuery {
  /** @default "desc" (newest first) */
  order?: "asc" | "desc";
  /** Start strictly after this entry (the previous page's last). */
  after?: HistoryPosition;
  /** Page size. @default 50 */
  limit?: number;
}

/** One page of a lead's history and where the next one starts (null: last page). */
export interface HistoryPage {
  data: HistoryEntry[];
  next: HistoryPosition | null;
}

/** A page of lead `leadId`'s history; {@linkcode LeadNotFoundError} when there is no such lead. */
export async function listLeadHistory(
  sql: Queryable,
  leadId: string,
  query: HistoryQuery = {},
): Promise<HistoryPage> {
  if (!UUID.test(leadId)) throw new LeadNotFoundError(leadId);
  const limit = query.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 200) {
    throw new RangeError(`Cannot list lead history: limit must be 1 to 200, got ${limit}`);
  }
  const desc = (query.order ?? "desc") === "desc";
  const params: unknown[] = [leadId, limit + 1];
  let after = "";
  if (query.after) {
    params.push(query.after.at, query.after.id);
    after = `AND (h.at, h.id) ${desc ? "<" : ">"} ($3::timestamptz, $4::bigint)`;
  }
  const dir = desc ? "DESC" : "ASC";
  const { rows } = await sql.query<HistoryEntry & { at_key: string }>(
    `SELECT h.id::text AS id, h.lead_id, h.at, ${microsTimestampSql("h.at")} AS at_key, h.source,
            h.action, h.changes
       FROM businesses b JOIN lead_history h ON h.lead_id = b.id
      WHERE b.id = $1 ${after}
      ORDER BY h.at ${dir}, h.id ${dir}
      LIMIT $2`,
    params,
  );
  if (rows.length === 0) {
    const exists = await sql.query("SELECT 1 FROM businesses WHERE id = $1", [leadId]);
    if (exists.rows.length === 0) throw new LeadNotFoundError(leadId);
  }
  const { page, last } = keysetPage(rows, limit);
  return {
    data: page.map(({ at_key: _, ...entry }) => entry),
    next: last ? { at: last.at_key, id: last.id } : null,
  };
}
