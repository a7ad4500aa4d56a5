/**
 * `apply_lead_write`: applies a `POST /v1/leads` or `PATCH /v1/leads/:id`
 * that the gateway accepted (202 queued) while the database breaker refused
 * it. Workers do not claim these tasks while that breaker is open, so this
 * runs once it is closed or half-open (the task may be the probe).
 *
 * The queue delivers at least once (a crash after COMMIT but before the ack
 * runs the task again), so the EFFECT is made idempotent in the database:
 *
 * - Every event this task records has the source `<who asked>:task:<task id>`
 *   (e.g. `api:sa:minerva:task:5b0c…`): who asked, and which task applied it.
 * - A create always has an external_id: the client's, or `task:<task id>`
 *   when it gave none. The UNIQUE (source, external_id) then makes a second
 *   run conflict instead of inserting a second lead; a conflict with a lead
 *   whose `lead_created` event is this task's is "already applied".
 * - An update whose lead already has an event of this task is not applied
 *   again (a rerun would repeat the `lead_updated` event, and a status change
 *   made meanwhile by someone else could turn it into an illegal transition).
 *
 * - A write queued with the request's Idempotency-Key (`write_key`) applies
 *   under that key (shared/leads/idempotent_write.ts): if the request itself
 *   committed after all (a stalled edge), the task finds the key and writes
 *   nothing.
 *
 * Refusals that retrying cannot fix go to the DLQ at once with the reason
 * (PermanentTaskError): another lead with the same (source, external_id), an
 * illegal status transition, an unknown lead. Database failures are retried;
 * a breaker refusal gives the attempt back (workers/runner.ts).
 *
 * @module
 */
import type { z } from "zod";
import type { Breaker } from "../../shared/breakers/breaker.ts";
import type { LoopLag } from "../../shared/loop_lag.ts";
import { AppError } from "../../shared/errors.ts";
import type { Lead } from "../../shared/leads/lead.ts";
import { createLead, updateLead } from "../../shared/leads/repository.ts";
import { withTransaction } from "../../shared/leads/transaction.ts";
import type { LeadScorer } from "../../shared/scoring/champion.ts";
import { PermanentTaskError } from "../../shared/queue/errors.ts";
import type { ApplyLeadWritePayload } from "../../shared/tasks/catalog.ts";
import type { TaskContext } from "../runner.ts";

/** What apply_lead_write needs besides the task context. */
export interface LeadWriteServices {
  /**
   * The database breaker: the write's outcome counts toward it, and a refusal
   * (half-open, probe elsewhere) gives the attempt back. @default none
   */
  breaker?: Breaker;
  /**
   * This process's event-loop stall (the breaker registry's `loopLag`): the
   * write deadline counts net of it. @default none (wall time)
   */
  lag?: LoopLag;
  /** Scores the created or updated lead in the write's transaction (shared/scoring/). @default none */
  scorer?: LeadScorer;
}

/** The task result. */
export interface LeadWriteResult {
  status: "created" | "updated" | "already_applied";
  lead_id: string;
  /** Set on a create. */
  external_id?: string | null;
}

type Payload = z.output<typeof ApplyLeadWritePayload>;

/** Domain refusals: the database answered, so they say nothing about its health. */
const REFUSALS = new Set([
  "LeadExistsError",
  "IllegalTransitionError",
  "LeadNotFoundError",
  "WriteKeyReusedError",
  // The request's own transaction still holds its key: retried (below), not dead-lettered.
  "WriteKeyBusyError",
]);

function isRefusal(err: unknown): err is AppError {
  return typeof err === "object" && err !== null &&
    REFUSALS.has((err as { name?: unknown }).name as string);
}

/** The external_id that makes a create idempotent when the client gave none. */
export function derivedExternalId(taskId: string): string {
  return `task:${taskId}`;
}

/** The event source of everything task `taskId` records. */
export function taskEventSource(source: string, taskId: string): string {
  return `${source}:task:${taskId}`;
}

const toDate = (s: string | null | undefined) =>
  s === undefined ? undefined : s === null ? null : new Date(s);

/** Builds the handler. */
export function leadWriteHandler(s: LeadWriteServices = {}) {
  /** Runs `fn` through the breaker; domain refusals come back as values so they never count. */
  async function database<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    const guarded = async () => {
      try {
        return { value: await fn() };
      } catch (err) {
        if (isRefusal(err)) return { refusal: err };
        throw err;
      }
    };
    const out = s.breaker ? await s.breaker.call(guarded, { signal }) : await guarded();
    if ("refusal" in out) throw out.refusal;
    return out.value;
  }

  return async function applyLeadWrite(p: Payload, ctx: TaskContext): Promise<LeadWriteResult> {
    const source = taskEventSource(p.source, ctx.taskId);
    // The same deadline as the direct write (DB_WRITE_TIMEOUT_MS): on a connection that silently
    // stops answering, the statement fails at it (a database failure: retried, counted by the
    // breaker) instead of holding the task until its timeout and the lease beyond.
    const deadlineMs = ctx.deps.config.database.writeTimeoutMs;
    const lag = s.lag === undefined ? {} : { lag: s.lag };
    // Set when the request's Idempotency-Key was already used: the write happened before.
    let applied = false;
    const hasOwnEvent = (leadId: string, eventType?: string) =>
      database(async () => {
        const { rows } = await withTransaction(ctx.deps.sql, (client) =>
          client.query(
            `SELECT 1 FROM lead_events WHERE lead_id = $1 AND source = $2
               AND ($3::text IS NULL OR event_type = $3) LIMIT 1`,
            [leadId, source, eventType ?? null],
          ), { deadlineMs, ...lag });
        return rows.length > 0;
      }, ctx.signal);
    try {
      if (p.op === "create") {
        const { last_contacted, ...input } = p.input;
        const externalId = input.external_id ?? derivedExternalId(ctx.taskId);
        try {
          const lead: Lead = await database(() =>
            createLead(
              ctx.deps.sql,
              {
                ...input,
                external_id: externalId,
                last_contacted: toDate(last_contacted),
              },
              source,
              {
                ...(s.scorer ? { scorer: s.scorer, now: ctx.deps.now() } : {}),
                writeKey: p.write_key,
                onReplay: () => applied = true,
                deadlineMs,
                ...lag,
              },
            ), ctx.signal);
          return {
            status: applied ? "already_applied" : "created",
            lead_id: lead.id,
            external_id: lead.external_id,
          };
        } catch (err) {
          const existing = (err as { existingId?: string | null }).existingId;
          if (
            (err as Error).name === "LeadExistsError" && typeof existing === "string" &&
            await hasOwnEvent(existing, "lead_created")
          ) {
            return { status: "already_applied", lead_id: existing, external_id: externalId };
          }
          throw err;
        }
      }
      if (await hasOwnEvent(p.lead_id)) return { status: "already_applied", lead_id: p.lead_id };
      const { last_contacted, ...patch } = p.patch;
      const lead = await database(() =>
        updateLead(
          ctx.deps.sql,
          p.lead_id,
          {
            ...patch,
            last_contacted: toDate(last_contacted),
          },
          source,
          {
            ...(s.scorer ? { scorer: s.scorer, now: ctx.deps.now() } : {}),
            writeKey: p.write_key,
            onReplay: () => applied = true,
            deadlineMs,
            ...lag,
          },
        ), ctx.signal);
      return { status: applied ? "already_applied" : "updated", lead_id: lead.id };
    } catch (err) {
      if (!isRefusal(err) || err.name === "WriteKeyBusyError") throw err;
      const detail = err.details?.detail;
      throw new PermanentTaskError(
        typeof detail === "string" ? `${err.message}: ${detail}` : err.message,
        { cause: err },
      );
    }
  };
}
