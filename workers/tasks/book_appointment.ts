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
 * @module
 */
import type { z } from "zod";
import { recordLeadEvent } from "../../shared/leads/events.ts";
import { transitionLead } from "../../shared/leads/repository.ts";
import type { LeadScorer } from "../../shared/scoring/champion.ts";
import { withTransaction } from "../../shared/leads/transaction.ts";
import { PermanentTaskError } from "../../shared/queue/errors.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
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

/** Builds the handler. */
export function bookAppointmentHandler(s: BookAppointmentServices) {
  return async function bookAppointment(
    p: z.output<typeof BookAppointmentPayload>,
    ctx: TaskContext,
  ): Promise<BookAppointmentResult> {
    const source = `worker:book_appointment:${ctx.taskId}`;
    const timeZone = ctx.deps.config.booking.timeZone;
    const booked = await withTransaction(ctx.deps.sql, async (client) => {
      const { rows: leads } = await client.query<
        { id: string; name: string; outreach_status: string }
      >(
        "SELECT id, name, outreach_status FROM businesses WHERE id = $1 FOR UPDATE",
        [p.lead_id],
      );
      const lead = leads[0];
      if (!lead) throw new PermanentTaskError(`Lead ${p.lead_id} does not exist`);
      // The edge refuses these up front; a lead can say no after the booking was
      // queued. The row lock (taken later anyway for the status change) keeps
      // the check and the booking consistent; FOR SHARE would deadlock two runs.
      if (lead.outreach_status === "not_interested") return { closed: true as const };
      // A run of this task already booked (crash after commit, lease expiry):
      // its appointment may have been rescheduled or cancelled since, so the
      // day's unique index would not find it. Its appointment_booked event,
      // written in the booking's transaction, does (lead_events by lead).
      const { rows: mine } = await client.query<{ id: string }>(
        `SELECT event_data->>'appointment_id' AS id FROM lead_events
          WHERE lead_id = $1 AND event_type = 'appointment_booked' AND source = $2 LIMIT 1`,
        [lead.id, source],
      );
      if (mine[0]) {
        const { rows } = await client.query(`SELECT ${COLUMNS} FROM appointments WHERE id = $1`, [
          mine[0].id,
        ]);
        if (rows[0]) {
          const own = toJson(rows[0]);
          if (own.status === "cancelled") return { cancelled: true as const, appointment: own };
          return { duplicate: false as const, appointment: own, lead };
        }
      }
      const inserted = await client.query(
        `INSERT INTO appointments (business_id, starts_at, duration_min, attendee_email, day,
                                   time_zone, task_id)
         VALUES ($1, $2::timestamptz, $3, lower($4), ($2::timestamptz AT TIME ZONE $6)::date, $6,
                 $5)
         ON CONFLICT (business_id, day) WHERE status = 'booked' DO NOTHING
         RETURNING ${COLUMNS}`,
        [lead.id, p.starts_at, p.duration_min, p.attendee_email, ctx.taskId, timeZone],
      );
      if (inserted.rows.length === 0) {
        const { rows } = await client.query(
          `SELECT ${COLUMNS} FROM appointments
            WHERE business_id = $1 AND day = ($2::timestamptz AT TIME ZONE $3)::date
              AND status = 'booked'`,
          [lead.id, p.starts_at, timeZone],
        );
        const existing = toJson(rows[0]!);
        if (existing.task_id !== ctx.taskId) {
          return { duplicate: true as const, appointment: existing, lead };
        }
        // Our own earlier run committed the booking: only the follow-ups remain.
        return { duplicate: false as const, appointment: existing, lead };
      }
      const appointment = toJson(inserted.rows[0]!);
      await transitionLead(client, lead.id, "meeting_scheduled", source, {
        ifReached: "noop",
        data: { appointment_id: appointment.id },
        ...(s.scorer ? { scorer: s.scorer, now: ctx.deps.now() } : {}),
      });
      await recordLeadEvent(client, {
        lead_id: lead.id,
        event_type: "appointment_booked",
        event_data: {
          appointment_id: appointment.id,
          starts_at: appointment.starts_at,
          duration_min: appointment.duration_min,
        },
        source,
      });
      return { duplicate: false as const, appointment, lead };
    });
    if ("closed" in booked) return { status: "lead_not_interested", skipped: true };
    if ("cancelled" in booked) {
      return { status: "cancelled_since", skipped: true, appointment: booked.appointment };
    }
    if (booked.duplicate) {
      return { status: "duplicate_prevented", existing_appointment: booked.appointment };
    }
    const a = booked.appointment;
    const confirmation = await s.queue.enqueue("send_email", {
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
    }, { idempotencyKey: `meeting_confirmation:${a.id}` });
    return { status: "booked", appointment: a, confirmation_task_id: confirmation.id };
  };
}
