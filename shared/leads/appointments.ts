/**
 * Appointments after booking (booking itself is the `book_appointment`
 * task): read one, cancel, reschedule. Cancel and reschedule change only the
 * database, so each is ONE transaction at the edge — the row, and its lead
 * event, which the live feed relays (edge/ws/lead_events_relay.ts) — and
 * answers with the outcome; no task is queued.
 *
 * The one-per-lead-per-day rule: at most one `booked` appointment per lead
 * and calendar day, where `day` is the start's date in the booking time zone
 * (BOOKING_TIME_ZONE, shared/config/appointments.ts; each row keeps the zone
 * it was written in, `time_zone`). A unique index on (business_id, day)
 * WHERE status = 'booked' (migration 003) enforces it for bookings and
 * reschedules alike; a cancelled appointment does not count. Both paths lock
 * the lead row first (`FOR UPDATE`), so a reschedule and a booking of the
 * same lead are decided one after the other and the 409 can name the
 * appointment in the way.
 *
 * Both actions are idempotent: cancelling a cancelled appointment, or
 * moving one to the start it already has, changes nothing and records
 * nothing (`changed: false`).
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import { AppError } from "../errors.ts";
import { assertContactable } from "./actions.ts";
import { recordLeadEvent } from "./events.ts";
import { lockLead } from "./repository.ts";
import { type Queryable, withTransaction } from "./transaction.ts";

/** An appointment as the API shows it (`lead_id` is the `business_id` column). */
export interface Appointment {
  id: string;
  lead_id: string;
  lead_name: string;
  starts_at: string;
  duration_min: number;
  attendee_email: string;
  status: "booked" | "cancelled";
  /** The start's calendar day in `time_zone`: the one-per-day rule's key. */
  day: string;
  /** The zone `day` was computed in (BOOKING_TIME_ZONE when the row was written). */
  time_zone: string;
  /** iCalendar SEQUENCE: 0 when booked, +1 per reschedule. */
  sequence: number;
  task_id: string | null;
  created_at: string;
  updated_at: string;
  cancelled_at: string | null;
  cancel_reason: string | null;
}

/** SELECT list of {@linkcode Appointment} over `appointments a JOIN businesses b`. */
export const APPOINTMENT_COLUMNS =
  `a.id, a.business_id AS lead_id, b.name AS lead_name, a.starts_at, a.duration_min,
   a.attendee_email, a.status, a.day::text AS day, a.time_zone, a.sequence, a.task_id,
   a.created_at, a.updated_at, a.cancelled_at, a.cancel_reason`;

type Row = Omit<Appointment, "starts_at" | "created_at" | "updated_at" | "cancelled_at"> & {
  starts_at: Date;
  created_at: Date;
  updated_at: Date;
  cancelled_at: Date | null;
};

const iso = (d: Date) => new Date(d).toISOString();

/** A row of {@linkcode APPOINTMENT_COLUMNS} as JSON (ISO 8601 times). */
export function appointmentView(r: Row): Appointment {
  return {
    ...r,
    starts_at: iso(r.starts_at),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    cancelled_at: r.cancelled_at === null ? null : iso(r.cancelled_at),
  };
}

/** No appointment has this id. */
export class AppointmentNotFoundError extends AppError {
  override name = "AppointmentNotFoundError";
  constructor(id: string) {
    super("appointment-not-found", 404, "No such appointment", {
      details: { detail: `No appointment has id ${id}`, appointment_id: id },
    });
  }
}

/** The lead already has a booked appointment on that day (one per lead per day). */
export class AppointmentExistsError extends AppError {
  override name = "AppointmentExistsError";
  constructor(leadId: string, existing: string, when: { startsAt: string; timeZone: string }) {
    super("appointment-exists", 409, "The lead already has a meeting that day", {
      details: {
        detail:
          `Lead ${leadId} has appointment ${existing} on the day of ${when.startsAt} in ${when.timeZone}: one per lead per day`,
        lead_id: leadId,
        appointment_id: existing,
        time_zone: when.timeZone,
      },
    });
  }
}

/** A cancelled appointment cannot be moved (book a new one instead). */
export class AppointmentCancelledError extends AppError {
  override name = "AppointmentCancelledError";
  constructor(id: string) {
    super("appointment-cancelled", 409, "The appointment is cancelled", {
      details: {
        detail: `Appointment ${id} is cancelled; book a new one (POST /v1/appointments)`,
        appointment_id: id,
      },
    });
  }
}

/** The start lies in the past. */
export class TimeInPastError extends AppError {
  override name = "TimeInPastError";
  constructor(startsAt: string, now: number) {
    super("time-in-past", 422, "The appointment would start in the past", {
      details: {
        detail: `starts_at ${startsAt} is not after ${new Date(now).toISOString()}`,
        starts_at: startsAt,
      },
    });
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** One appointment; throws {@linkcode AppointmentNotFoundError}. */
export async function getAppointment(sql: Queryable, id: string): Promise<Appointment> {
  if (!UUID.test(id)) throw new AppointmentNotFoundError(id);
  const { rows } = await sql.query<Row>(
    `SELECT ${APPOINTMENT_COLUMNS} FROM appointments a JOIN businesses b ON b.id = a.business_id
      WHERE a.id = $1`,
    [id],
  );
  if (!rows[0]) throw new AppointmentNotFoundError(id);
  return appointmentView(rows[0]);
}

/**
 * The id of the lead's booked appointment on the day of `startsAt` in
 * `timeZone`, other than `except`; null when there is none.
 */
export async function bookedOnDay(
  sql: Queryable,
  slot: { leadId: string; startsAt: string; timeZone: string; except?: string },
): Promise<string | null> {
  const { rows } = await sql.query<{ id: string }>(
    `SELECT id FROM appointments
      WHERE business_id = $1 AND day = ($2::timestamptz AT TIME ZONE $3)::date
        AND status = 'booked' AND ($4::uuid IS NULL OR id <> $4::uuid)`,
    [slot.leadId, slot.startsAt, slot.timeZone, slot.except ?? null],
  );
  return rows[0]?.id ?? null;
}

/** Locks appointment `id` (and, first, its lead: the order book_appointment takes too). */
async function lockAppointment(client: Queryable, id: string): Promise<Row> {
  if (!UUID.test(id)) throw new AppointmentNotFoundError(id);
  const { rows: owner } = await client.query<{ lead_id: string }>(
    "SELECT business_id AS lead_id FROM appointments WHERE id = $1",
    [id],
  );
  if (!owner[0]) throw new AppointmentNotFoundError(id);
  await lockLead(client, owner[0].lead_id);
  const { rows } = await client.query<Row>(
    `SELECT ${APPOINTMENT_COLUMNS} FROM appointments a JOIN businesses b ON b.id = a.business_id
      WHERE a.id = $1 FOR UPDATE OF a`,
    [id],
  );
  if (!rows[0]) throw new AppointmentNotFoundError(id);
  return rows[0];
}

/** The outcome of a cancel or reschedule. */
export interface AppointmentChange {
  /** false when the call changed nothing (already cancelled, or already at that start). */
  changed: boolean;
  appointment: Appointment;
}

/**
 * Cancels appointment `id`: status `cancelled` with when and why, and an
 * `appointment_cancelled` lead event `{appointment_id, starts_at, reason?}`.
 * The lead's status is left as it is (the state machine only moves forward;
 * an operator moves the lead if the cancellation means more).
 */
export async function cancelAppointment(
  sql: Pool,
  id: string,
  options: { reason?: string; source: string },
): Promise<AppointmentChange> {
  return await withTransaction(sql, async (client) => {
    const current = await lockAppointment(client, id);
    if (current.status === "cancelled") {
      return { changed: false, appointment: appointmentView(current) };
    }
    await client.query(
      `UPDATE appointments SET status = 'cancelled', cancelled_at = clock_timestamp(),
              cancel_reason = $2
        WHERE id = $1`,
      [id, options.reason ?? null],
    );
    await recordLeadEvent(client, {
      lead_id: current.lead_id,
      event_type: "appointment_cancelled",
      event_data: {
        appointment_id: id,
        starts_at: iso(current.starts_at),
        ...(options.reason === undefined ? {} : { reason: options.reason }),
      },
      source: options.source,
    });
    return { changed: true, appointment: await getAppointment(client, id) };
  });
}

/**
 * Moves appointment `id` to `startsAt` (same duration), re-evaluating the
 * one-per-day rule in `timeZone` (the current BOOKING_TIME_ZONE) for the new
 * day, with the appointment itself left out; bumps `sequence` and records an
 * `appointment_rescheduled` lead event `{appointment_id, from, to, sequence}`.
 *
 * @throws AppointmentNotFoundError, AppointmentCancelledError, TimeInPastError,
 *   LeadNotContactableError (the lead said no since), AppointmentExistsError
 */
export async function rescheduleAppointment(
  sql: Pool,
  id: string,
  options: { startsAt: string; timeZone: string; now: number; source: string },
): Promise<AppointmentChange> {
  const target = Date.parse(options.startsAt);
  return await withTransaction(sql, async (client) => {
    const current = await lockAppointment(client, id);
    if (current.status === "cancelled") throw new AppointmentCancelledError(id);
    if (new Date(current.starts_at).getTime() === target) {
      return { changed: false, appointment: appointmentView(current) };
    }
    if (target <= options.now) throw new TimeInPastError(options.startsAt, options.now);
    const lead = await lockLead(client, current.lead_id);
    assertContactable(lead, "booked");
    const slot = { leadId: lead.id, startsAt: options.startsAt, timeZone: options.timeZone };
    const other = await bookedOnDay(client, { ...slot, except: id });
    if (other !== null) throw new AppointmentExistsError(lead.id, other, slot);
    await client.query(
      `UPDATE appointments
          SET starts_at = $2::timestamptz, day = ($2::timestamptz AT TIME ZONE $3)::date,
              time_zone = $3, sequence = sequence + 1
        WHERE id = $1`,
      [id, options.startsAt, options.timeZone],
    );
    const moved = await getAppointment(client, id);
    await recordLeadEvent(client, {
      lead_id: lead.id,
      event_type: "appointment_rescheduled",
      event_data: {
        appointment_id: id,
        from: iso(current.starts_at),
        to: moved.starts_at,
        sequence: moved.sequence,
      },
      source: options.source,
    });
    return { changed: true, appointment: moved };
  });
}
