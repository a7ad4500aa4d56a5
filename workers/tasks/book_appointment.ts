/**
 * `book_appointment`: books one meeting with a lead. At most one BOOKED
 * appointment per lead per calendar day in the booking time zone
 * (BOOKING_TIME_ZONE, default UTC; shared/leads/appointments.ts), enforced
 * race-free by a unique index on (business_id, day) WHERE status = 'booked'
 * with `ON CONFLICT DO NOTHING` (a cancelled one does not block rebooking; a
 * reschedule moves `day` under the same index):
 *
 * - a booking for a lead that already has one that day (from another
 *   request) → `{"status":"duplicate_prevented","existing_appointment":…}`;
 * - the SAME task run again (crash after commit, lease expiry, concurrent
 *   delivery) finds its own row (same task id) and completes the follow-up
 *   steps instead of reporting a duplicate.
 *
 * In the booking's transaction: the lead moves to `meeting_scheduled`
 * (walking intermediate states) and an `appointment_booked` event is written.
 * After commit the `meeting_confirmation` email (with an .ics invite) is
 * enqueued under a key derived from the appointment, so it is enqueued once
 * however often this runs.
 *
 * A worker's concurrent bookings share one call and its transaction: their
 * leads are locked and booked by one call of `lock_and_book_appointments`
 * (migrations 019 and 017), each with the outcome above; a batch never holds
 * two bookings of one lead.
 *
 * @module
 */
import type { z } from "zod";
import type { Pool } from "@neondatabase/serverless";
import { createBatcher } from "../../shared/db/batcher.ts";
import { setChangeSource } from "../../shared/leads/history.ts";
import { OUTREACH_STATUSES, type OutreachStatus, stepsToReach } from "../../shared/leads/status.ts";
import type { LeadScorer } from "../../shared/scoring/champion.ts";
import { rescoreLead } from "../../shared/scoring/scores.ts";
import { type Queryable, withTransaction } from "../../shared/leads/transaction.ts";
import { PermanentTaskError } from "../../shared/queue/errors.ts";
import type { EnqueueItem, TaskQueue } from "../../shared/queue/queue.ts";
import type { BookAppointmentPayload } from "../../shared/tasks/catalog.ts";
import type { TaskContext } from "../runner.ts";

/** What book_appointment needs besides the task context. */
export interface BookAppointmentServices {
  /** Enqueues the confirmation email. */
  queue: TaskQueue;
  /** Rescores the lead moved to meeting_scheduled, in the booking's transaction. @default none */
  scorer?: LeadScorer;
}

/** An appointment as stored; `lead_id` is the `business_id` column (one name per concept in results). */
export interface Appointment {
  id: string;
  lead_id: string;
  starts_at: string;
  duration_min: number;
  attendee_email: string;
  day: string;
  time_zone: string;
  status: string;
  task_id: string | null;
  created_at: string;
}

/** The task result. */
export type BookAppointmentResult =
  | { status: "booked"; appointment: Appointment; confirmation_task_id: string }
  | { status: "duplicate_prevented"; existing_appointment: Appointment }
  | { status: "lead_not_interested"; skipped: true }
  /** A rerun of this task after its appointment was cancelled: no confirmation is sent. */
  | { status: "cancelled_since"; skipped: true; appointment: Appointment };

const COLUMNS =
  `id, business_id AS lead_id, starts_at, duration_min, attendee_email, day::text AS day,
  time_zone, status, task_id, created_at`;

function toJson(row: Record<string, unknown>): Appointment {
  const iso = (v: unknown) => v instanceof Date ? v.toISOString() : String(v);
  return { ...row, starts_at: iso(row.starts_at), created_at: iso(row.created_at) } as Appointment;
}

/** One booking of a batch. */
interface Booking {
  p: z.output<typeof BookAppointmentPayload>;
  taskId: string;
  source: string;
}

type LockedLead = { id: string; name: string };

/** What the booking's call decided. */
type Booked =
  | { missing: true }
  | { closed: true }
  | { cancelled: true; appointment: Appointment }
  | { duplicate: boolean; appointment: Appointment; lead: LockedLead };

/**
 * The steps to `meeting_scheduled` from every status, for the function to
 * pick the locked lead's (the state machine stays in shared/leads/status.ts).
 */
const STEPS_BY_STATUS = JSON.stringify(
  Object.fromEntries(
    OUTREACH_STATUSES.map((from) => [
      from,
      stepsToReach(from, "meeting_scheduled").map(([from, to]) => ({ from, to })),
    ]),
  ),
);

type BookingRow = Record<string, unknown> & {
  n: string;
  outcome: string;
  lead_name: string | null;
  from_status: OutreachStatus | null;
};

/**
 * Books a batch of bookings (one per lead) with ONE call of
 * `lock_and_book_appointments` (migration 019): it locks the leads in lead
 * order, walks each lead's state-machine steps and books through
 * `book_appointments` (migration 017), each booking with the outcome its own
 * statements had. Without a scorer the call is its own transaction: one
 * round trip per batch. With one, the call and the rescoring of every lead
 * that moved share a transaction, each lead's history naming its booking.
 */
async function bookBatch(
  sql: Pool,
  timeZone: string,
  batch: Booking[],
  scorer: LeadScorer | undefined,
  now: () => number,
): Promise<Booked[]> {
  const call = async (q: Queryable) =>
    (await q.query<BookingRow>(
      `SELECT n, outcome, lead_name, from_status,
              ${COLUMNS.replace("business_id AS lead_id", "lead_id")}
         FROM lock_and_book_appointments($1::uuid[], $2::text[], $3::text[], $4::text[],
                                         $5::int[], $6::text[], $7::text[], $8::jsonb)`,
      [
        batch.map((b) => b.p.lead_id),
        batch.map((b) => b.source),
        batch.map((b) => b.taskId),
        batch.map((b) => b.p.starts_at),
        batch.map((b) => b.p.duration_min),
        batch.map((b) => b.p.attendee_email),
        batch.map(() => timeZone),
        STEPS_BY_STATUS,
      ],
    )).rows;
  if (!scorer) return decide(batch, await call(sql));
  return await withTransaction(sql, async (client) => {
    const rows = await call(client);
    for (const row of rows) {
      const moved = row.outcome === "booked" && row.from_status !== null &&
        stepsToReach(row.from_status, "meeting_scheduled").length > 0;
      if (!moved) continue;
      await setChangeSource(client, batch[Number(row.n) - 1]!.source);
      await rescoreLead(client, String(row.lead_id), scorer, now());
    }
    return decide(batch, rows);
  });
}

/** Each booking's outcome from the function's rows (one per booking, `n` from 1). */
function decide(batch: Booking[], rows: BookingRow[]): Booked[] {
  if (rows.length !== batch.length) {
    throw new Error(`A batch of ${batch.length} bookings returned ${rows.length} outcomes`);
  }
  const out = new Array<Booked>(batch.length);
  for (const { n, outcome, lead_name, from_status: _, ...row } of rows) {
    const k = Number(n) - 1;
    const leadId = batch[k]!.p.lead_id;
    if (outcome === "missing") {
      out[k] = { missing: true };
    } else if (outcome === "closed") {
      out[k] = { closed: true };
    } else if (row.id === null) {
      throw new Error(`Booking for lead ${leadId}: no appointment found`);
    } else if (outcome === "cancelled") {
      out[k] = { cancelled: true, appointment: toJson(row) };
    } else {
      out[k] = {
        duplicate: outcome === "duplicate",
        appointment: toJson(row),
        lead: { id: leadId, name: String(lead_name) },
      };
    }
  }
  return out;
}

/** Builds the handler. */
export function bookAppointmentHandler(s: BookAppointmentServices) {
  // The confirmations of concurrent bookings are enqueued by one script call.
  const enqueue = createBatcher((items: EnqueueItem[]) => s.queue.enqueueMany(items), {
    keyOf: (item) => item.options?.idempotencyKey ?? "",
  });
  // A worker's concurrent bookings share one call and its transaction
  // (shared/db/batcher.ts); two bookings of one lead never share a batch.
  const batchers = new WeakMap<Pool, (b: Booking) => Promise<Booked>>();
  const batcherFor = (deps: TaskContext["deps"]) => {
    let book = batchers.get(deps.sql);
    if (!book) {
      const timeZone = deps.config.booking.timeZone;
      book = createBatcher(
        (batch: Booking[]) => bookBatch(deps.sql, timeZone, batch, s.scorer, deps.now),
        { keyOf: (b) => b.p.lead_id },
      );
      batchers.set(deps.sql, book);
    }
    return book;
  };
  return async function bookAppointment(
    p: z.output<typeof BookAppointmentPayload>,
    ctx: TaskContext,
  ): Promise<BookAppointmentResult> {
    const source = `worker:book_appointment:${ctx.taskId}`;
    const booked = await batcherFor(ctx.deps)({ p, taskId: ctx.taskId, source });
    if ("missing" in booked) throw new PermanentTaskError(`Lead ${p.lead_id} does not exist`);
    if ("closed" in booked) return { status: "lead_not_interested", skipped: true };
    if ("cancelled" in booked) {
      return { status: "cancelled_since", skipped: true, appointment: booked.appointment };
    }
    if (booked.duplicate) {
      return { status: "duplicate_prevented", existing_appointment: booked.appointment };
    }
    const a = booked.appointment;
    const confirmation = await enqueue({
      type: "send_email",
      payload: {
        lead_id: booked.lead.id,
        template: "meeting_confirmation",
        to: a.attendee_email,
        appointment_id: a.id,
        variables: {
          sender_name: "Pleasant Cove",
          ...p.confirmation,
          business_name: booked.lead.name,
          starts_at: a.starts_at,
          duration_min: a.duration_min,
        },
      },
      options: { idempotencyKey: `meeting_confirmation:${a.id}` },
    });
    return { status: "booked", appointment: a, confirmation_task_id: confirmation.id };
  };
}
