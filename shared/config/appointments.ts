/**
 * The appointments area: how the one-meeting-per-lead-per-day rule reads a
 * "day" (edge/routes/appointments.ts, workers/tasks/book_appointment.ts;
 * docs/api.md, "Appointments").
 *
 * @module
 */
import { z } from "zod";
import { defineArea } from "./spec.ts";

/** An IANA zone name, canonicalised (`europe/paris` → `Europe/Paris`). */
const timeZone = z.string().min(1).max(64).transform((zone, ctx) => {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    ctx.addIssue({ code: "custom", message: "expected an IANA time zone, e.g. America/New_York" });
    return z.NEVER;
  }
});

/** Booking rules. */
export const appointments = defineArea(
  "Appointments",
  {
    BOOKING_TIME_ZONE: {
      description:
        "IANA time zone whose calendar days the one-appointment-per-lead-per-day rule counts (leads store no time zone of their own); a booking keeps the zone it was made in",
      default: "UTC",
      schema: timeZone,
    },
  },
  [],
  (v) => ({ booking: { timeZone: v.BOOKING_TIME_ZONE } }),
);
