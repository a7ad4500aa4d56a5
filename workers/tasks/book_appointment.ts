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
 * A worker's concurrent bookings share one transaction: their leads are
 * locked in one statement and booked by one call of `book_appointments`
 * (migration 017), each with the outcome above; a batch never holds two
 * bookings of one lead.
 *
 * @module
 */
import type { z } from "zod";
import type { Pool } from "@neondatabase/serverless";
import { createBatcher } from "../../shared/db/batcher.ts";
import { setChangeSource } from "../../shared/leads/history.ts";
import { type OutreachStatus, stepsToReach } from "../../shared/leads/status.ts";
import type { LeadScorer } from "../../shared/scoring/champion.ts";
import { rescoreLead } from "../../shared/scoring/scores.ts";
import { withTransaction } from "../../shared/leads/transaction.ts";
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

type LockedLead = { id: string; name: string; outreach_status: OutreachStatus };

/** What the booking's transaction decided. */
type Booked =
  | { missing: true }
  | { closed: true }
  | { cancelled: true; appointment: Appointment }
  | { duplicate: boolean; appointment: Appointment; lead: LockedLead };

/**
 * Books a batch of bookings (one per lead) in ONE transaction: the leads are
 * locked in lead order, the state machine decides each lead's steps, and
 * `book_appointments` (migration 017) makes every booking with the outcome
 * its own statements had. With a scorer, each lead that moved is rescored in
 * the transaction, its history naming the booking.
 */
async function bookBatch(
  sql: Pool,
  timeZone: string,
  batch: Booking[],
  scorer: LeadScorer | undefined,
  now: () => number,
): Promise<Booked[]> {
  return await withTransaction(sql, async (client) => {
    const { rows: leads } = await client.query<LockedLead>(
      `SELECT id, name, outreach_status FROM businesses WHERE id = ANY($1::uuid[])
        ORDER BY id FOR UPDATE`,
      [batch.map((b) => b.p.lead_id)],
    );
    const byId = new Map(leads.map((l) => [l.id, l]));
    const out: Booked[] = batch.map((b) => {
      const lead = byId.get(b.p.lead_id);
      // The edge refuses not_interested up front; a lead can say no after the
      // booking was queued. The row lock keeps the check and the booking consistent.
      return !lead ? { missing: true } : { closed: true };
    });
    const open = batch.flatMap((b, i) => {
      const lead = byId.get(b.p.lead_id);
      return lead && lead.outreach_status !== "not_interested" ? [{ b, i, lead }] : [];
    });
    if (open.length === 0) return out;
    const steps = open.map(({ lead }) =>
      stepsToReach(lead.outreach_status, "meeting_scheduled").map(([from, to]) => ({ from, to }))
    );
    const { rows } = await client.query<Record<string, unknown> & { n: string; outcome: string }>(
      `SELECT n, outcome, ${COLUMNS.replace("business_id AS lead_id", "lead_id")}
         FROM book_appointments($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[],
                                $6::text[], $7::text[], $8::text[], $9::jsonb[])`,
      [
        open.map(({ lead }) => lead.id),
        open.map(({ b }) => b.source),
        open.map(({ b }) => b.taskId),
        open.map(({ b }) => b.p.starts_at),
        open.map(({ b }) => b.p.duration_min),
        open.map(({ b }) => b.p.attendee_email),
        open.map(() => timeZone),
        open.map(({ lead }) => lead.outreach_status),
        steps.map((s) => JSON.stringify(s)),
      ],
    );
    for (const { n, outcome, ...row } of rows) {
      const k = Number(n) - 1;
      const { i, lead, b } = open[k]!;
      if (row.id === null) throw new Error(`Booking for lead ${lead.id}: no appointment found`);
      const appointment = toJson(row);
      if (outcome === "cancelled") {
        out[i] = { cancelled: true, appointment };
      } else {
        out[i] = { duplicate: outcome === "duplicate", appointment, lead };
        if (outcome === "booked" && steps[k]!.length > 0 && scorer) {
          await setChangeSource(client, b.source);
          await rescoreLead(client, lead.id, scorer, now());
        }
      }
    }
    return out;
  });
}

/** Builds the handler. */
export function bookAppointmentHandler(s: BookAppointmentServices) {
  // The confirmations of concurrent bookings are enqueued by one script call.
  const enqueue = createBatcher((items: EnqueueItem[]) => s.queue.enqueueMany(items), {
    keyOf: (item) => item.options?.idempotencyKey ?? "",
  });
  // A worker's concurrent bookings share one transaction and one call
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
