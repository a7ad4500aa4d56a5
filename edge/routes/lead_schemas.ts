/**
 * The OpenAPI contract of `/v1/leads` (handlers: edge/routes/leads.ts): the
 * zod schemas of a lead, its events, a page and the request bodies, and the
 * four route definitions built from them.
 *
 * Lead JSON uses the column names of `businesses`; timestamps are ISO 8601.
 *
 * @module
 */
import { createRoute, z } from "@hono/zod-openapi";
import { MAX_PAGE_SIZE } from "../../shared/leads/repository.ts";
import { LEAD_SORTS } from "../../shared/leads/cursor.ts";
import { OUTREACH_STATUSES } from "../../shared/leads/status.ts";
import { degradedSchema, problemResponses, ProblemSchema } from "./schemas.ts";

/**
 * A `real` column: PostgreSQL rejects values that underflow single precision
 * (e.g. 5e-324) with an error, so inputs are rounded to 4 decimals first
 * (more than `real` keeps in this range anyway).
 */
function realColumn(min: number, max: number) {
  return z.number().min(min).max(max).transform((v) => Math.round(v * 1e4) / 1e4).nullable()
    .optional();
}

// Postgres text cannot hold NUL; refusing it here keeps it a 400, not a 500.
const text = (max: number) =>
  z.string().max(max).refine((s) => !s.includes("\0"), "must not contain NUL characters");
const optionalText = (max: number) => text(max).nullable().optional();
const Status = z.enum(OUTREACH_STATUSES);

export const LeadSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  category: z.string().nullable(),
  city: z.string().nullable(),
  rating: z.number().nullable(),
  reviews: z.number().int(),
  has_website: z.boolean(),
  phone: z.string().nullable(),
  phone_valid: z.boolean().nullable(),
  email: z.string().nullable(),
  email_confidence_score: z.number().nullable(),
  outreach_status: Status,
  last_contacted: z.string().nullable(),
  response_time_hours: z.number().nullable(),
  lead_score: z.number().nullable(),
  source: z.string(),
  external_id: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
}).openapi("Lead");

export const LeadEventSchema = z.object({
  id: z.uuid(),
  time: z.string(),
  lead_id: z.uuid(),
  event_type: z.string().openapi({ example: "status_changed" }),
  event_data: z.record(z.string(), z.unknown()),
  source: z.string().openapi({ example: "api:sa:minerva" }),
}).openapi("LeadEvent");

const ScoreDetailsSchema = z.object({
  source: z.enum(["model", "heuristic", "manual"]).nullable().openapi({
    description:
      "`model`: the calibrated probability × 100 from the champion of the lead's population; `heuristic`: that population had no champion when it was scored; `manual`: set by a caller; null: never scored",
  }),
  model_version: z.number().int().nullable().openapi({
    description: "The model that produced `lead_score`",
  }),
  model_population: z.enum(["pre_reply", "replied"]).nullable().openapi({
    description:
      "The population that model serves: `pre_reply` (leads without a recorded reply, scored from what is known before one) or `replied`; null without a model",
  }),
  top_factors: z.array(z.object({
    feature: z.string(),
    value: z.number().openapi({ description: "The feature's value (missing values filled)" }),
    points: z.number().openapi({ description: "How far it moved the score, in points (+ raises)" }),
  })),
}).openapi("LeadScoreDetails");

const LeadDetailSchema = LeadSchema.extend({
  score_details: ScoreDetailsSchema.nullable(),
  recent_events: z.array(LeadEventSchema),
}).openapi("LeadDetail");

const LeadPageSchema = z.object({
  data: z.array(LeadSchema),
  next_cursor: z.string().nullable().openapi({ description: "null on the last page" }),
}).openapi("LeadPage");

const QueuedWriteSchema = z.object({
  status: z.literal("queued"),
  message: z.string().openapi({ example: "Request queued for processing" }),
  retry_after: z.number().int().openapi({ description: "Seconds until the breaker's next probe" }),
  task_id: z.uuid(),
  status_url: z.string(),
  breaker: z.string().openapi({ example: "database" }),
}).openapi("QueuedLeadWrite");

const queued = {
  202: {
    description:
      "The database breaker refused the write: queued as an `apply_lead_write` task, applied once it closes",
    content: { "application/json": { schema: QueuedWriteSchema } },
  },
};

/** Fields both POST and PATCH accept. */
const fields = {
  category: optionalText(200),
  city: optionalText(200),
  rating: z.number().min(0).max(5).nullable().optional().openapi({
    description: "Stored with one decimal",
  }),
  reviews: z.number().int().min(0).max(2_147_483_647).optional(),
  has_website: z.boolean().optional(),
  phone: optionalText(50),
  phone_valid: z.boolean().nullable().optional(),
  email: z.email().max(320).nullable().optional(),
  email_confidence_score: realColumn(0, 1),
  lead_score: realColumn(0, 100),
  last_contacted: z.iso.datetime({ offset: true }).nullable().optional(),
  response_time_hours: realColumn(0, 1_000_000),
};

const CreateLeadBody = z.object({
  name: text(500).trim().min(1).openapi({ example: "Cove Bakery" }),
  ...fields,
  source: text(100).min(1).optional().openapi({
    description: 'Where the lead came from; unique together with external_id. Default "api"',
    example: "places",
  }),
  external_id: text(200).min(1).nullable().optional(),
}).strict().openapi("CreateLeadRequest");

const PatchLeadBody = z.object({
  name: text(500).trim().min(1).optional(),
  ...fields,
  outreach_status: Status.optional().openapi({
    description:
      "new → contacted → responded → meeting_scheduled → client, one step at a time; any → not_interested",
  }),
}).strict().refine((b) => Object.keys(b).length > 0, {
  message: "at least one field is required",
  // Only for a valid body: an unknown key is already reported as such.
  when: (payload) => payload.issues.length === 0,
}).openapi("PatchLeadRequest");

const flag = (description: string) =>
  z.enum(["true", "false"]).transform((v) => v === "true").optional().openapi({ description });
const instant = (description: string) =>
  z.iso.datetime({ offset: true }).optional().openapi({
    description: `${description}; ISO 8601 with an offset`,
    example: "2026-03-01T00:00:00Z",
  });

const ListQuery = z.object({
  status: z.string().regex(
    new RegExp(`^(${OUTREACH_STATUSES.join("|")})(,(${OUTREACH_STATUSES.join("|")}))*$`),
    `one or more of ${OUTREACH_STATUSES.join(", ")}, comma-separated`,
  ).optional().openapi({ example: "new,contacted" }),
  // Compared with a `real` column: rounded like realColumn() so that a
  // subnormal (5e-324, found by tests/fuzz_test.ts) is a number, not a 500.
  min_score: z.coerce.number().min(0).max(100).transform((v) => Math.round(v * 1e4) / 1e4)
    .optional(),
  city: text(200).optional().openapi({ description: "Case-insensitive exact match" }),
  category: text(200).optional().openapi({ description: "Case-insensitive exact match" }),
  source: text(100).optional().openapi({ description: "Exact match", example: "places" }),
  has_website: flag("`true` or `false`"),
  has_email: flag("`true`: leads with an email address; `false`: without"),
  created_after: instant("Created at or after this instant (inclusive)"),
  created_before: instant("Created before this instant (exclusive)"),
  updated_after: instant("Last changed at or after this instant (inclusive)"),
  updated_before: instant("Last changed before this instant (exclusive)"),
  q: text(200).optional().openapi({
    description: "Substring of the name, case- and accent-insensitive (`cafe` finds “Café”)",
  }),
  sort: z.enum(LEAD_SORTS).optional().openapi({
    description:
      "Sort key (default `created_at`); ties are broken by id. `lead_score` sorts leads never scored below every score",
  }),
  order: z.enum(["asc", "desc"]).optional().openapi({ description: "Default `desc`" }),
  cursor: z.string().max(500).optional().openapi({
    description: "`next_cursor` of the previous page, with the same sort, order and filters",
  }),
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_SIZE).optional().openapi({
    description: `Page size (default 50, max ${MAX_PAGE_SIZE})`,
  }),
});

const IdParam = z.object({ id: z.uuid() });
const OptionalKey = z.object({
  "idempotency-key": z.string().min(1).max(255).optional().openapi({
    description: "Optional: makes retries safe (Stripe semantics)",
  }),
});

/** 409 means more than an Idempotency-Key conflict here. */
const conflict = (description: string) => ({
  409: { description, content: { "application/problem+json": { schema: ProblemSchema } } },
});

/** `GET /v1/leads`. */
export const listRoute = createRoute({
  method: "get",
  path: "/v1/leads",
  operationId: "listLeads",
  tags: ["leads"],
  summary: "List leads: filters, accent-insensitive search, sort (default newest first)",
  security: [{ bearer: [] }],
  request: { query: ListQuery },
  responses: {
    200: {
      description: "One page; while the database is unavailable, the last good one (degraded)",
      content: {
        "application/json": {
          schema: z.union([
            LeadPageSchema,
            degradedSchema(LeadPageSchema, "DegradedLeadPage", "Database temporarily unavailable"),
          ]),
        },
      },
    },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

/** `POST /v1/leads`. */
export const createLeadRoute = createRoute({
  method: "post",
  path: "/v1/leads",
  operationId: "createLead",
  tags: ["leads"],
  summary: "Create a lead",
  security: [{ bearer: [] }],
  request: {
    headers: OptionalKey,
    body: { required: true, content: { "application/json": { schema: CreateLeadBody } } },
  },
  responses: {
    201: { description: "Created", content: { "application/json": { schema: LeadSchema } } },
    ...queued,
    ...problemResponses(400, 401, 403, 413, 415, 422, 429, 503),
    ...conflict(
      "`lead-exists` (same source and external_id; names `lead_id`), or this Idempotency-Key is in progress",
    ),
  },
});

/** `GET /v1/leads/{id}`. */
export const getLeadRoute = createRoute({
  method: "get",
  path: "/v1/leads/{id}",
  operationId: "getLead",
  tags: ["leads"],
  summary: "A lead with its 20 most recent events",
  security: [{ bearer: [] }],
  request: { params: IdParam },
  responses: {
    200: {
      description: "The lead; while the database is unavailable, the last good answer (degraded)",
      content: {
        "application/json": {
          schema: z.union([
            LeadDetailSchema,
            degradedSchema(LeadDetailSchema, "DegradedLead", "Database temporarily unavailable"),
          ]),
        },
      },
    },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});

/** `PATCH /v1/leads/{id}`. */
export const patchLeadRoute = createRoute({
  method: "patch",
  path: "/v1/leads/{id}",
  operationId: "updateLead",
  tags: ["leads"],
  summary: "Update a lead; a status change follows the outreach state machine",
  security: [{ bearer: [] }],
  request: {
    params: IdParam,
    headers: OptionalKey,
    body: { required: true, content: { "application/json": { schema: PatchLeadBody } } },
  },
  responses: {
    200: { description: "The lead", content: { "application/json": { schema: LeadSchema } } },
    ...queued,
    ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429, 503),
    ...conflict(
      "`illegal-transition` (lists the `allowed` next states), or this Idempotency-Key is in progress",
    ),
  },
});
