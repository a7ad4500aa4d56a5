/**
 * `appointment_bookings_total{status}`: one count per book_appointment
 * attempt, by what the executor did with it:
 *
 * - `success`: a booking was made (or this task's own earlier booking completed);
 * - `duplicate_prevented`: the lead already had a booking that day;
 * - `rejected`: a permanent error (bad lead, invalid slot): dead-lettered, not retried;
 * - `deferred`: a breaker refused the call (the attempt is given back);
 * - `failed`: any other error (retried with backoff, dead-lettered when exhausted).
 *
 * @module
 */
import { isDeferred, isPermanent } from "../../shared/queue/errors.ts";
import type { Handler } from "../runner.ts";

/** Wraps the book_appointment handler so every attempt is counted by outcome. */
export function countBookingOutcomes(handler: Handler): Handler {
  return async function countedBooking(payload, ctx) {
    const bookings = ctx.deps.metrics.bookings;
    let result: unknown;
    try {
      result = await handler(payload, ctx);
    } catch (err) {
      bookings.inc({
        status: isPermanent(err) ? "rejected" : isDeferred(err) ? "deferred" : "failed",
      });
      throw err;
    }
    const status = (result as { status?: unknown } | null)?.status;
    bookings.inc({ status: status === "duplicate_prevented" ? "duplicate_prevented" : "success" });
    return result;
  };
}
