/**
 * Appointments: `POST /v1/appointments` queues a booking (a
 * `book_appointment` task, run by workers/tasks/book_appointment.ts) and
 * `GET /v1/appointments` lists booked meetings in a time range, in keyset
 * pages (edge/routes/list_page.ts).
 *
 * A booking is refused before it is queued when it starts in the past (422
 * `time-in-past`), names an unknown lead (404), or carries confirmation
 * variables the `meeting_confirmation` email could not render (422), names a
 * `not_interested` lead (409 `lead-not-interested`), or falls on a day on
 * which the lead already has a booked meeting (409 `appointment-exists`,
 * naming it). The one-per-lead-per-day rule counts calendar days in
 * BOOKING_TIME_ZONE (shared/leads/appointments.ts); the worker enforces it
 * again race-free (a UNIQUE constraint): a second booking that slips in
 * between completes as `duplicate_prevented`. Reading one appointment,
 * cancelling and rescheduling are edge/routes/appointment_actions.ts.
 *
 * Idempotency: the queue key is derived from the payload, so the same booking
 * request repeated within QUEUE_IDEMPOTENCY_WINDOW_MS returns the first task.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { keysetPage, microsTimestampSql } from "../../shared/db/keyset.ts";
import type { Deps } from "../../shared/deps.ts";
import { VARIABLE_EXAMPLES } from "../../shared/email/template_examples.ts";
import { renderTemplate } from "../../shared/email/templates.ts";
import { assertContactable } from "../../shared/leads/actions.ts";
import { getLead } from "../../shared/leads/repository.ts";
import {
  APPOINTMENT_COLUMNS,
  AppointmentExistsError,
  appointmentView,
  bookedOnDay,
  TimeInPastError,
} from "../../shared/leads/appointments.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { AppEnv } from "../app_env.ts";
import { RequestValidationError, validationHook } from "../validation.ts";
import { orDatabaseUnavailable } from "./database_failure.ts";
import { enqueueTask, queuedBody, queuedResponse } from "./queued.ts";
import {
  decodePageCursor,
  encodePageCursor,
  MICROS_TIMESTAMP,
  pageQuery,
  pageSchema,
} from "./list_page.ts";
import { problemResponses, ProblemSchema } from "./schemas.ts";

const DAY_MS = 86_400_000;
/** Default length of a listing from `from` when `to` is absent. */
const DEFAULT_RANGE_MS = 30 * DAY_MS;
/** Longest listing range. */
const MAX_RANGE_MS = 366 * DAY_MS;
const DEFAULT_LIMIT = 500;
const MAX_LIMIT = 2000;

// The same constraints as BookAppointmentPayload (shared/tasks/catalog.ts),
// which the queue checks again at enqueue; declared here for their OpenAPI
// metadata (see outreach.ts).
const BookBody = z.object({
  lead_id: z.uuid(),
  starts_at: z.iso.datetime({ offset: true }).openapi({
    description: "Start, ISO 8601 with offset; must be in the future",
    example: "2026-03-03T14:00:00Z",
  }),
  duration_min: z.number().int().min(5).max(480).openapi({ example: 30 }),
  attendee_email: z.email().max(254).openapi({ example: "owner@harbor.example" }),
  confirmation: z.record(z.string(), z.union([z.string().max(2000), z.number()])).default({})
    .openapi({
      description:
        "Variables of the meeting_confirmation email (sender_name, sender_title, time_zone, meeting_url, location, agenda); business_name, starts_at and duration_min are filled in",
      example: {
        sender_name: VARIABLE_EXAMPLES.sender_name!,
        meeting_url: VARIABLE_EXAMPLES.meeting_url!,
      },
    }),
}).strict().openapi("BookAppointmentRequest");

/** An appointment as every appointment route answers it (shared/leads/appointments.ts). */
export const AppointmentSchema = z.object({
  id: z.uuid(),
  lead_id: z.uuid(),
  lead_name: z.string(),
  starts_at: z.string(),
  duration_min: z.number().int(),
  attendee_email: z.string(),
  status: z.enum(["booked", "cancelled"]),
  day: z.string().openapi({
    description: "The start's calendar day in `time_zone`: the one-per-lead-per-day rule's key",
    example: "2026-03-03",
  }),
  time_zone: z.string().openapi({
    description: "The zone `day` was computed in (BOOKING_TIME_ZONE when booked or rescheduled)",
    example: "UTC",
  }),
  sequence: z.number().int().openapi({
    description: "The invite's iCalendar SEQUENCE: 0 when booked, +1 per reschedule",
  }),
  task_id: z.string().nullable().openapi({ description: "The book_appointment task" }),
  created_at: z.string(),
  updated_at: z.string(),
  cancelled_at: z.string().nullable(),
  cancel_reason: z.string().nullable(),
}).openapi("Appointment");

const AppointmentListSchema = pageSchema(AppointmentSchema, "AppointmentList");

const instant = z.iso.datetime({ offset: true });
const ListQuery = z.object({
  from: instant.optional().openapi({ description: "Inclusive start of the range; default now" }),
  to: instant.optional().openapi({
    description: "Exclusive end; default `from` + 30 days; at most 366 days after `from`",
  }),
  ...pageQuery({ defaultLimit: DEFAULT_LIMIT, maxLimit: MAX_LIMIT }),
});
/** The keyset of the listing's order: the last row's (starts_at, id). */
const AppointmentCursor = z.tuple([MICROS_TIMESTAMP, z.uuid()]);

const OptionalKey = z.object({
  "idempotency-key": z.string().min(1).max(255).optional().openapi({
    description: "Optional: replays this response to a retry (Stripe semantics)",
  }),
});

const problems = (status: number, description: string) => ({
  [status]: { description, content: { "application/problem+json": { schema: ProblemSchema } } },
});

const bookRoute = createRoute({
  method: "post",
  path: "/v1/appointments",
  operationId: "bookAppointment",
  tags: ["appointments"],
  summary: "Queue a meeting booking with a lead (one per lead per day in BOOKING_TIME_ZONE)",
  description:
    "Who: services sa:minerva and sa:api-gateway, users with role admin or operator. The one-per-day rule counts calendar days in BOOKING_TIME_ZONE (default UTC; leads store no time zone); a cancelled appointment does not count.",
  security: [{ bearer: [] }],
  request: {
    headers: OptionalKey,
    body: { required: true, content: { "application/json": { schema: BookBody } } },
  },
  responses: {
    ...queuedResponse("Queued as a `book_appointment` task"),
    ...problemResponses(400, 401, 403, 413, 415, 429, 503),
    ...problems(404, "`lead-not-found`"),
    ...problems(
      409,
      "`lead-not-interested`, `appointment-exists` (names `appointment_id`), or this Idempotency-Key is in progress",
    ),
    ...problems(
      422,
      "`time-in-past`, `missing-template-variables` or `invalid-template-variables` (confirmation), or an Idempotency-Key reused with another request",
    ),
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/v1/appointments",
  operationId: "listAppointments",
  tags: ["appointments"],
  summary: "Appointments starting in [from, to), earliest first",
  description:
    "Who: services sa:minerva and sa:api-gateway, users with role admin, operator or viewer. Cancelled ones are listed too (`status`).",
  security: [{ bearer: [] }],
  request: { query: ListQuery },
  responses: {
    200: {
      description: "The appointments",
      content: { "application/json": { schema: AppointmentListSchema } },
    },
    ...problemResponses(400, 401, 403, 429),
  },
});

type Cursor = { cursor_ts: string };

/** Routes of `/v1/appointments`. */
export function appointmentRoutes(
  deps: Pick<Deps, "sql" | "now" | "config">,
  queue: TaskQueue,
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const booking = deps.config.booking;

  app.openapi(bookRoute, async (c) => {
    const body = c.req.valid("json");
    const now = deps.now();
    if (Date.parse(body.starts_at) <= now) throw new TimeInPastError(body.starts_at, now);
    const lead = await orDatabaseUnavailable(
      c,
      "The lead store did not answer",
      () => getLead(deps.sql, body.lead_id),
    );
    assertContactable(lead, "booked");
    // The worker's one-per-day rule (a UNIQUE constraint on the day), asked up front.
    const slot = { leadId: lead.id, startsAt: body.starts_at, timeZone: booking.timeZone };
    const existing = await orDatabaseUnavailable(
      c,
      "The appointment store did not answer",
      () => bookedOnDay(deps.sql, slot),
    );
    if (existing !== null) throw new AppointmentExistsError(lead.id, existing, slot);
    // The confirmation email the worker queues after booking, with the same
    // merge (workers/tasks/book_appointment.ts): refuse now what it could not send.
    renderTemplate("meeting_confirmation", {
      sender_name: "Pleasant Cove",
      ...body.confirmation,
      business_name: lead.name,
      starts_at: body.starts_at,
      duration_min: body.duration_min,
    }, { unsubscribeUrl: "https://unsubscribe.invalid/v1/unsubscribe?token=validation" });

    const result = await enqueueTask(queue, {
      type: "book_appointment",
      principal: c.get("principal").sub,
      payload: { ...body, lead_id: lead.id },
    });
    return c.json(queuedBody(c, result), 202);
  });

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const from = q.from === undefined ? deps.now() : Date.parse(q.from);
    const to = q.to === undefined ? from + DEFAULT_RANGE_MS : Date.parse(q.to);
    if (from > to) {
      throw new RequestValidationError([{
        field: "query.to",
        message: `must not be before from (${new Date(from).toISOString()})`,
      }]);
    }
    if (to - from > MAX_RANGE_MS) {
      throw new RequestValidationError([{
        field: "query.to",
        message: "must be at most 366 days after from",
      }]);
    }
    const limit = q.limit;
    const after = q.cursor === undefined ? null : decodePageCursor(q.cursor, AppointmentCursor);
    const { rows } = await orDatabaseUnavailable(
      c,
      "The appointment store did not answer",
      () =>
        deps.sql.query<Parameters<typeof appointmentView>[0] & Cursor>(
          `SELECT ${APPOINTMENT_COLUMNS}, ${microsTimestampSql("a.starts_at")} AS cursor_ts
         FROM appointments a JOIN businesses b ON b.id = a.business_id
        WHERE a.starts_at >= to_timestamp($1::float8 / 1000)
          AND a.starts_at < to_timestamp($2::float8 / 1000)
          AND ($4::timestamptz IS NULL OR (a.starts_at, a.id) > ($4::timestamptz, $5::uuid))
        ORDER BY a.starts_at, a.id
        LIMIT $3`,
          // Epoch ms, not ISO text: years beyond 9999 or before 1 AD print as text
          // Postgres cannot read back.
          [from, to, limit + 1, after?.[0] ?? null, after?.[1] ?? null],
        ),
    );
    const { page, last } = keysetPage(rows, limit);
    const data = page.map(({ cursor_ts: _, ...r }) => appointmentView(r));
    const next_cursor = last ? encodePageCursor([last.cursor_ts, last.id]) : null;
    return c.json({ data, next_cursor }, 200);
  });

  return app;
}
