/**
 * Leads: `GET /v1/leads` (filters, keyset pages), `POST /v1/leads`,
 * `GET /v1/leads/:id` (with its recent events) and `PATCH /v1/leads/:id`
 * (status changes go through the outreach state machine).
 *
 * Lead JSON uses the column names of `businesses`; timestamps are ISO 8601.
 * Events are recorded with source `api:<principal>`.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import { InvalidCursorError } from "../../shared/leads/errors.ts";
import type { LeadEvent } from "../../shared/leads/events.ts";
import type { Lead, LeadPatch } from "../../shared/leads/lead.ts";
import {
  createLead,
  getLead,
  listLeads,
  MAX_PAGE_SIZE,
  updateLead,
} from "../../shared/leads/repository.ts";
import { OUTREACH_STATUSES, type OutreachStatus } from "../../shared/leads/status.ts";
import type { AppEnv } from "../app.ts";
import { RequestValidationError, validationHook } from "../validation.ts";
import { problemResponses, ProblemSchema } from "./schemas.ts";

// Postgres text cannot hold NUL; refusing it here keeps it a 400, not a 500.
const text = (max: number) =>
  z.string().max(max).refine((s) => !s.includes("\0"), "must not contain NUL characters");
const optionalText = (max: number) => text(max).nullable().optional();
const Status = z.enum(OUTREACH_STATUSES);

const LeadSchema = z.object({
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

const LeadEventSchema = z.object({
  id: z.uuid(),
  time: z.string(),
  lead_id: z.uuid(),
  event_type: z.string().openapi({ example: "status_changed" }),
  event_data: z.record(z.string(), z.unknown()),
  source: z.string().openapi({ example: "api:sa:minerva" }),
}).openapi("LeadEvent");

const LeadDetailSchema = LeadSchema.extend({ recent_events: z.array(LeadEventSchema) })
  .openapi("LeadDetail");

const LeadPageSchema = z.object({
  data: z.array(LeadSchema),
  next_cursor: z.string().nullable().openapi({ description: "null on the last page" }),
}).openapi("LeadPage");

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
  email_confidence_score: z.number().min(0).max(1).nullable().optional(),
  lead_score: z.number().min(0).max(100).nullable().optional(),
  last_contacted: z.iso.datetime({ offset: true }).nullable().optional(),
  response_time_hours: z.number().min(0).max(1_000_000).nullable().optional(),
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

const ListQuery = z.object({
  status: z.string().regex(
    new RegExp(`^(${OUTREACH_STATUSES.join("|")})(,(${OUTREACH_STATUSES.join("|")}))*$`),
    `one or more of ${OUTREACH_STATUSES.join(", ")}, comma-separated`,
  ).optional().openapi({ example: "new,contacted" }),
  min_score: z.coerce.number().min(0).max(100).optional(),
  city: text(200).optional().openapi({ description: "Case-insensitive exact match" }),
  category: text(200).optional().openapi({ description: "Case-insensitive exact match" }),
  q: text(200).optional().openapi({ description: "Case-insensitive substring of the name" }),
  cursor: z.string().max(500).optional().openapi({ description: "next_cursor of the last page" }),
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

const listRoute = createRoute({
  method: "get",
  path: "/v1/leads",
  tags: ["leads"],
  summary: "List leads, newest first",
  security: [{ bearer: [] }],
  request: { query: ListQuery },
  responses: {
    200: { description: "One page", content: { "application/json": { schema: LeadPageSchema } } },
    ...problemResponses(400, 401, 403, 429),
  },
});

const createLeadRoute = createRoute({
  method: "post",
  path: "/v1/leads",
  tags: ["leads"],
  summary: "Create a lead",
  security: [{ bearer: [] }],
  request: {
    headers: OptionalKey,
    body: { required: true, content: { "application/json": { schema: CreateLeadBody } } },
  },
  responses: {
    201: { description: "Created", content: { "application/json": { schema: LeadSchema } } },
    ...problemResponses(400, 401, 403, 413, 415, 422, 429),
    ...conflict(
      "`lead-exists` (same source and external_id; names `lead_id`), or this Idempotency-Key is in progress",
    ),
  },
});

const getLeadRoute = createRoute({
  method: "get",
  path: "/v1/leads/{id}",
  tags: ["leads"],
  summary: "A lead with its 20 most recent events",
  security: [{ bearer: [] }],
  request: { params: IdParam },
  responses: {
    200: { description: "The lead", content: { "application/json": { schema: LeadDetailSchema } } },
    ...problemResponses(400, 401, 403, 404, 429),
  },
});

const patchLeadRoute = createRoute({
  method: "patch",
  path: "/v1/leads/{id}",
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
    ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429),
    ...conflict(
      "`illegal-transition` (lists the `allowed` next states), or this Idempotency-Key is in progress",
    ),
  },
});

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

/** The public JSON of a lead. */
export function leadView(lead: Lead) {
  return {
    ...lead,
    last_contacted: iso(lead.last_contacted),
    created_at: lead.created_at.toISOString(),
    updated_at: lead.updated_at.toISOString(),
  };
}

function eventView(e: LeadEvent) {
  return { ...e, time: e.time.toISOString() };
}

const toDate = (s: string | null | undefined) =>
  s === undefined ? undefined : s === null ? null : new Date(s);

/** Routes of `/v1/leads`. */
export function leadRoutes(deps: Pick<Deps, "sql">): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const actor = (sub: string) => `api:${sub}`;

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    let page;
    try {
      page = await listLeads(deps.sql, {
        status: q.status?.split(",") as OutreachStatus[] | undefined,
        min_score: q.min_score,
        city: q.city,
        category: q.category,
        q: q.q,
        cursor: q.cursor,
        limit: q.limit,
      });
    } catch (err) {
      if (err instanceof InvalidCursorError) {
        throw new RequestValidationError([{ field: "query.cursor", message: err.message }]);
      }
      throw err;
    }
    return c.json({ data: page.data.map(leadView), next_cursor: page.next_cursor }, 200);
  });

  app.openapi(createLeadRoute, async (c) => {
    const { last_contacted, source, ...body } = c.req.valid("json");
    const lead = await createLead(deps.sql, {
      ...body,
      source: source ?? "api",
      last_contacted: toDate(last_contacted),
    }, actor(c.get("principal").sub));
    c.header("Location", `/v1/leads/${lead.id}`);
    return c.json(leadView(lead), 201);
  });

  app.openapi(getLeadRoute, async (c) => {
    const { recent_events, ...lead } = await getLead(deps.sql, c.req.valid("param").id);
    return c.json({ ...leadView(lead), recent_events: recent_events.map(eventView) }, 200);
  });

  app.openapi(patchLeadRoute, async (c) => {
    const { last_contacted, ...body } = c.req.valid("json");
    const patch: LeadPatch = { ...body, last_contacted: toDate(last_contacted) };
    const lead = await updateLead(
      deps.sql,
      c.req.valid("param").id,
      patch,
      actor(c.get("principal").sub),
    );
    return c.json(leadView(lead), 200);
  });

  return app;
}
