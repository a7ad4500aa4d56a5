/**
 * One appointment and what happens to it after booking
 * (shared/leads/appointments.ts):
 *
 * - `GET /v1/appointments/{id}`;
 * - `POST /v1/appointments/{id}/cancel` `{reason?}` (an empty body is fine);
 * - `POST /v1/appointments/{id}/reschedule` `{starts_at}`.
 *
 * Both actions are one transaction each, answered with the outcome (no task
 * is queued: they change only the database, unlike a booking, which sends a
 * confirmation), write an `appointment_cancelled` / `appointment_rescheduled`
 * lead event that the live feed relays, and are idempotent: repeating one
 * answers `changed: false` and records nothing; an `Idempotency-Key` also
 * replays the first answer. Who: as for booking — services sa:minerva and
 * sa:api-gateway, users with role admin or operator; viewers may read.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import {
  cancelAppointment,
  getAppointment,
  rescheduleAppointment,
} from "../../shared/leads/appointments.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { AppointmentSchema } from "./appointments.ts";
import { orDatabaseUnavailable } from "./database_failure.ts";
import { problemResponses, ProblemSchema } from "./schemas.ts";

const IdParam = z.object({ id: z.uuid() });

const CancelBody = z.object({
  reason: z.string().trim().min(1).max(1000).refine((s) => !s.includes("\0"), {
    message: "must not contain NUL characters",
  }).optional().openapi({
    description: "Why; stored on the appointment and its appointment_cancelled event",
    example: "Owner is ill",
  }),
}).strict().openapi("CancelAppointmentRequest");

const RescheduleBody = z.object({
  starts_at: z.iso.datetime({ offset: true }).openapi({
    description: "The new start, ISO 8601 with offset; must be in the future (the length stays)",
    example: "2026-03-04T15:00:00Z",
  }),
}).strict().openapi("RescheduleAppointmentRequest");

const ChangeSchema = z.object({
  changed: z.boolean().openapi({
    description:
      "false when nothing changed: already cancelled, or already starting at `starts_at`",
  }),
  appointment: AppointmentSchema,
}).openapi("AppointmentChange");

const OptionalKey = z.object({
  "idempotency-key": z.string().min(1).max(255).optional().openapi({
    description: "Optional: replays this response to a retry (Stripe semantics)",
  }),
});

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});
const notFound = { 404: problem("`appointment-not-found`") };
const changed = (description: string) => ({
  200: { description, content: { "application/json": { schema: ChangeSchema } } },
});

const WRITERS = "Who: services sa:minerva and sa:api-gateway, users with role admin or operator.";

const getRoute = createRoute({
  method: "get",
  path: "/v1/appointments/{id}",
  operationId: "getAppointment",
  tags: ["appointments"],
  summary: "One appointment",
  description:
    "Who: services sa:minerva and sa:api-gateway, users with role admin, operator or viewer.",
  security: [{ bearer: [] }],
  request: { params: IdParam },
  responses: {
    200: {
      description: "The appointment",
      content: { "application/json": { schema: AppointmentSchema } },
    },
    ...problemResponses(400, 401, 403, 429, 503),
    ...notFound,
  },
});

const cancelRoute = createRoute({
  method: "post",
  path: "/v1/appointments/{id}/cancel",
  operationId: "cancelAppointment",
  tags: ["appointments"],
  summary: "Cancel an appointment (its day is free again)",
  description:
    `${WRITERS} Records \`appointment_cancelled\` {appointment_id, starts_at, reason?}; the lead's status is unchanged. Cancelling a cancelled appointment is \`changed: false\`. No email is sent.`,
  security: [{ bearer: [] }],
  request: {
    params: IdParam,
    headers: OptionalKey,
    body: { required: false, content: { "application/json": { schema: CancelBody } } },
  },
  responses: {
    ...changed("The appointment after the call"),
    ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
    ...notFound,
  },
});

const rescheduleRoute = createRoute({
  method: "post",
  path: "/v1/appointments/{id}/reschedule",
  operationId: "rescheduleAppointment",
  tags: ["appointments"],
  summary: "Move an appointment to another start (one per lead per day still holds)",
  description:
    `${WRITERS} The new day is evaluated in BOOKING_TIME_ZONE, leaving this appointment out; \`sequence\` goes up by one and \`appointment_rescheduled\` {appointment_id, from, to, sequence} is recorded. Moving to the current start is \`changed: false\`. No email is sent.`,
  security: [{ bearer: [] }],
  request: {
    params: IdParam,
    headers: OptionalKey,
    body: { required: true, content: { "application/json": { schema: RescheduleBody } } },
  },
  responses: {
    ...changed("The appointment after the call"),
    ...problemResponses(400, 401, 403, 413, 415, 429, 503),
    ...notFound,
    409: problem(
      "`appointment-cancelled`, `appointment-exists` (another booked appointment of the lead that day, named by `appointment_id`), `lead-not-interested`, or this Idempotency-Key is in progress",
    ),
    422: problem("`time-in-past`, or an Idempotency-Key reused with another request"),
  },
});

/** Routes of one appointment. */
export function appointmentActionRoutes(
  deps: Pick<Deps, "sql" | "now" | "config">,
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const source = (sub: string) => `api:${sub}`;

  const store = "The appointment store did not answer";

  app.openapi(getRoute, async (c) => {
    const id = c.req.valid("param").id;
    return c.json(await orDatabaseUnavailable(c, store, () => getAppointment(deps.sql, id)), 200);
  });

  app.openapi(cancelRoute, async (c) => {
    // No body at all is no reason (docs/api.md, "Request bodies and validation").
    const body = c.req.valid("json") ?? {};
    const id = c.req.valid("param").id;
    const out = await orDatabaseUnavailable(c, store, () =>
      cancelAppointment(deps.sql, id, {
        ...(body.reason === undefined ? {} : { reason: body.reason }),
        source: source(c.get("principal").sub),
      }));
    return c.json(out, 200);
  });

  app.openapi(rescheduleRoute, async (c) => {
    const id = c.req.valid("param").id;
    const startsAt = c.req.valid("json").starts_at;
    const out = await orDatabaseUnavailable(c, store, () =>
      rescheduleAppointment(deps.sql, id, {
        startsAt,
        timeZone: deps.config.booking.timeZone,
        now: deps.now(),
        source: source(c.get("principal").sub),
      }));
    return c.json(out, 200);
  });

  return app;
}
