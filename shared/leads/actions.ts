/**
 * What people do to a lead besides editing it: write a note, and (admins
 * only, at the edge) reopen a lead that said no. Also the rule that a lead in
 * `not_interested` is not contacted: {@linkcode assertContactable}, checked
 * by the edge before it queues an email or a booking and by the workers
 * before they act.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import { AppError } from "../errors.ts";
import { LeadNotFoundError } from "./errors.ts";
import { insertLeadEvents, type LeadEvent, recordLeadEvents } from "./events.ts";
import { recordNoteHistory, setChangeSource } from "./history.ts";
import { type Lead, LEAD_COLUMNS } from "./lead.ts";
import { lockLead, type ScoringOptions } from "./repository.ts";
import { rescoreLead } from "../scoring/scores.ts";
import { type OutreachStatus, PIPELINE } from "./status.ts";
import { type Queryable, withTransaction } from "./transaction.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The lead said no (`not_interested`): it is not emailed or booked until an admin reopens it. */
export class LeadNotContactableError extends AppError {
  override name = "LeadNotContactableError";
  constructor(readonly leadId: string, action: string) {
    super("lead-not-interested", 409, "The lead is not interested", {
      details: {
        detail:
          `Lead ${leadId} is not_interested: it cannot be ${action}. An admin can reopen it (POST /v1/admin/leads/${leadId}/reopen)`,
        lead_id: leadId,
      },
    });
  }
}

/** Throws {@linkcode LeadNotContactableError} for a `not_interested` lead. */
export function assertContactable(
  lead: Pick<Lead, "id" | "outreach_status">,
  action: "emailed" | "booked",
): void {
  if (lead.outreach_status === "not_interested") throw new LeadNotContactableError(lead.id, action);
}

/** Reopening a lead that is not `not_interested`. */
export class LeadNotClosedError extends AppError {
  override name = "LeadNotClosedError";
  constructor(readonly leadId: string, status: OutreachStatus) {
    super("lead-not-closed", 409, "The lead is not closed", {
      details: {
        detail: `Lead ${leadId} is ${status}; only a not_interested lead can be reopened`,
        lead_id: leadId,
        outreach_status: status,
      },
    });
  }
}

/**
 * Records a `note_added` event (`{ text }`) on an existing lead, and its
 * history entry in the same transaction, and returns the event.
 */
export async function addLeadNote(
  pool: Pool,
  id: string,
  text: string,
  source: string,
): Promise<LeadEvent> {
  if (!UUID.test(id)) throw new LeadNotFoundError(id);
  return await withTransaction(pool, (client) => noteLead(client, id, text, source));
}

async function noteLead(
  sql: Queryable,
  id: string,
  text: string,
  source: string,
): Promise<LeadEvent> {
  // FOR SHARE: an erasure (which locks the row for update) cannot run between the check and the note.
  const lead = await sql.query<{ id: string }>(
    "SELECT id FROM businesses WHERE id = $1 FOR SHARE",
    [id],
  );
  if (!lead.rows[0]) throw new LeadNotFoundError(id);
  await recordNoteHistory(sql, id, text, source);
  const [eventId] = await insertLeadEvents(sql, [{
    lead_id: id,
    event_type: "note_added",
    event_data: { text },
    source,
  }]);
  const { rows } = await sql.query<LeadEvent>(
    `SELECT id, time, lead_id, event_type, event_data, source FROM lead_events
      WHERE id = $1 AND lead_id = $2`,
    [eventId, id],
  );
  return rows[0]!;
}

/** What {@linkcode reopenLead} does. */
export interface ReopenOptions {
  /** Why (stored on the event). */
  reason: string;
  /** Who (event source). */
  source: string;
  /**
   * The pipeline status to reopen to. @default the status the lead had
   * before it moved to not_interested (from its last `status_changed`), else `new`
   */
  to?: OutreachStatus;
  /** Rescores the reopened lead in the same transaction (repository.ts, ScoringOptions). */
  scorer?: ScoringOptions["scorer"];
  /** Scoring time. @default Date.now() */
  now?: number;
}

/**
 * Moves a `not_interested` lead back into the pipeline, outside the state
 * machine (which keeps `not_interested` terminal), and records
 * `lead_reopened` `{ from, to, reason }` — not `status_changed`, so funnel
 * counts, which follow `status_changed` edges, do not count the lead twice.
 */
export async function reopenLead(sql: Pool, id: string, options: ReopenOptions): Promise<Lead> {
  if (options.to !== undefined && !PIPELINE.includes(options.to)) {
    throw new RangeError(`Cannot reopen lead ${id}: "${options.to}" is not a pipeline status`);
  }
  return await withTransaction(sql, async (client) => {
    await setChangeSource(client, options.source, "reopened");
    const lead = await lockLead(client, id);
    if (lead.outreach_status !== "not_interested") {
      throw new LeadNotClosedError(id, lead.outreach_status);
    }
    let to = options.to;
    if (to === undefined) {
      const { rows } = await client.query<{ from: string | null }>(
        `SELECT event_data->>'from' AS from FROM lead_events
          WHERE lead_id = $1 AND event_type = 'status_changed'
            AND event_data->>'to' = 'not_interested'
          ORDER BY time DESC LIMIT 1`,
        [id],
      );
      const before = rows[0]?.from;
      to = PIPELINE.find((s) => s === before) ?? "new";
    }
    const { rows } = await client.query<Lead>(
      `UPDATE businesses SET outreach_status = $2 WHERE id = $1 RETURNING ${LEAD_COLUMNS}`,
      [id, to],
    );
    await recordLeadEvents(client, [{
      lead_id: id,
      event_type: "lead_reopened",
      event_data: { from: "not_interested", to, reason: options.reason },
      source: options.source,
    }]);
    const reopened = rows[0]!;
    if (!options.scorer) return reopened;
    const score = await rescoreLead(client, id, options.scorer, options.now ?? Date.now());
    return { ...reopened, lead_score: score };
  });
}
