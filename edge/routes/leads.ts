/**
 * Leads: `GET /v1/leads` (filters, keyset pages), `POST /v1/leads`,
 * `GET /v1/leads/:id` (with its recent events) and `PATCH /v1/leads/:id`
 * (status changes go through the outreach state machine).
 *
 * Lead JSON uses the column names of `businesses`; timestamps are ISO 8601.
 * Events are recorded with source `api:<principal>`.
 *
 * With a breaker registry every query goes through the `database` breaker:
 *
 * - reads keep their last good answer (`guardedRead`): while the breaker
 *   refuses, that answer marked degraded, or 503 `downstream-unavailable`
 *   with `Retry-After`. Answers do not depend on the caller, so the cache
 *   identity is the path and the validated query;
 * - writes the breaker refuses are queued (`queuedWrite`: 202) as
 *   `apply_lead_write` tasks, applied by a worker once it closes
 *   (workers/tasks/lead_write.ts); one task per Idempotency-Key (scoped by
 *   principal), else per request id and body;
 * - a failing query (connection, timeout, server error) is 503
 *   `dependency-unavailable` with `Retry-After`, not a 500. Refusals of the
 *   domain (validation, 404, 409 `lead-exists` / `illegal-transition`) pass
 *   through unchanged and count as successes: the database answered.
 *
 * Writes get no call timeout (only a probe is capped at the breaker's lease):
 * a transaction left running could still commit after a 503, and the
 * client's retry would apply it twice. Reads use the policy's `timeout_ms`.
 * A read's 404 counts as a success only through the policy's
 * `exclude_client_errors` (the `database` default): guardedRead classifies
 * what the read throws.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Breaker } from "../../shared/breakers/breaker.ts";
import { BreakerOpenError } from "../../shared/breakers/errors.ts";
import type { BreakerRegistry } from "../../shared/breakers/registry.ts";
import type { Deps } from "../../shared/deps.ts";
import { sha256Hex } from "../../shared/hash.ts";
import { decodeCursor } from "../../shared/leads/cursor.ts";
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
import { canonicalJson } from "../../shared/queue/canonical_json.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { ApplyLeadWritePayload } from "../../shared/tasks/catalog.ts";
import type { AppEnv } from "../app.ts";
import { guardedRead, queuedWrite } from "../degraded/fallbacks.ts";
import type { ResponseCache } from "../degraded/response_cache.ts";
import { RequestValidationError, validationHook } from "../validation.ts";
import { degradedSchema, problemResponses, ProblemSchema } from "./schemas.ts";
import { databaseFailed, isDatabaseFailure } from "./database_failure.ts";

// Postgres text cannot hold NUL; refusing it here keeps it a 400, not a 500.
/**
 * A `real` column: PostgreSQL rejects values that underflow single precision
 * (e.g. 5e-324) with an error, so inputs are rounded to 4 decimals first
 * (more than `real` keeps in this range anyway).
 */
function realColumn(min: number, max: number) {
  return z.number().min(min).max(max).transform((v) => Math.round(v * 1e4) / 1e4).nullable()
    .optional();
}

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
    ...queued,
    ...problemResponses(400, 401, 403, 413, 415, 422, 429, 503),
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
    ...queued,
    ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429, 503),
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

type LeadWrite = z.input<typeof ApplyLeadWritePayload>;
type Ctx = Context<AppEnv>;

/** The breaker and the fallbacks' collaborators, when the routes are guarded. */
interface Guard {
  breaker: Breaker;
  queue: TaskQueue;
  cache: ResponseCache;
  now: () => number;
}

/** A read: through guardedRead when guarded, else straight; failures become 503. */
async function read(
  c: Ctx,
  g: Guard | null,
  identity: string[],
  fn: () => Promise<unknown>,
): Promise<Response> {
  try {
    if (g === null) return c.json(await fn(), 200);
    return await guardedRead(c, { breaker: g.breaker, cache: g.cache, now: g.now, identity }, fn);
  } catch (err) {
    return databaseFailed(c, err, "The lead store did not answer");
  }
}

/** The queue key of a refused write: one task per client key, else per request. */
async function queueKey(c: Ctx, payload: LeadWrite): Promise<string> {
  const principal = c.get("principal").sub;
  const clientKey = c.req.header("idempotency-key");
  const scope = payload.op === "create" ? "create" : `update:${payload.lead_id}`;
  if (clientKey !== undefined) {
    return `lead_write:key:${await sha256Hex(JSON.stringify([principal, scope, clientKey]))}`;
  }
  // The body is part of it: a client-supplied X-Request-Id may be reused for another write.
  const request = JSON.stringify([principal, c.get("requestId"), canonicalJson(payload)]);
  return `lead_write:req:${await sha256Hex(request)}`;
}

/**
 * A write: through the breaker when guarded (queued while it refuses), else
 * straight; failures become 503. Domain refusals leave the breaker call as
 * values, so they never count as failures whatever the policy says.
 */
async function write<T>(
  c: Ctx,
  g: Guard | null,
  fn: () => Promise<T>,
  payload: LeadWrite,
): Promise<T | Response> {
  const call = async (): Promise<{ value: T } | { refusal: unknown }> => {
    try {
      return { value: await fn() };
    } catch (err) {
      if (isDatabaseFailure(err)) throw err;
      return { refusal: err };
    }
  };
  let out;
  try {
    out = g === null ? await call() : await g.breaker.call(call, { signal: c.req.raw.signal });
  } catch (err) {
    if (g !== null && err instanceof BreakerOpenError) {
      c.get("log")?.info("lead write queued", { breaker: err.breaker, state: err.state });
      return await queuedWrite(c, err, {
        queue: g.queue,
        type: "apply_lead_write",
        payload,
        idempotencyKey: await queueKey(c, payload),
      });
    }
    return databaseFailed(c, err, "The lead store did not answer");
  }
  if ("refusal" in out) throw out.refusal;
  return out.value;
}

/** Collaborators of {@linkcode leadRoutes}. */
export interface LeadRouteOptions {
  /**
   * Guards every query with its `database` breaker; needs `queue` and
   * `cache`. @default none: queries run unguarded
   */
  breakers?: BreakerRegistry;
  /** Where refused writes are queued. */
  queue?: TaskQueue;
  /** Last good answers of the reads. */
  cache?: ResponseCache;
}

/** Routes of `/v1/leads`. */
export function leadRoutes(
  deps: Pick<Deps, "sql" | "now">,
  options: LeadRouteOptions = {},
): OpenAPIHono<AppEnv> {
  const { breakers, queue, cache } = options;
  let guard: Guard | null = null;
  if (breakers) {
    if (!queue || !cache) {
      throw new TypeError("leadRoutes: a breaker registry needs a queue and a response cache");
    }
    // Throws now, at startup, when no database policy is configured.
    guard = { breaker: breakers.get("database"), queue, cache, now: deps.now };
  }
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const actor = (sub: string) => `api:${sub}`;

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    if (q.cursor !== undefined) {
      // Checked before the query: a bad cursor is the caller's, whatever the database's state.
      try {
        decodeCursor(q.cursor);
      } catch (err) {
        if (!(err instanceof InvalidCursorError)) throw err;
        throw new RequestValidationError([{ field: "query.cursor", message: err.message }]);
      }
    }
    const res = await read(c, guard, [c.req.path, canonicalJson(q)], async () => {
      const page = await listLeads(deps.sql, {
        status: q.status?.split(",") as OutreachStatus[] | undefined,
        min_score: q.min_score,
        city: q.city,
        category: q.category,
        q: q.q,
        cursor: q.cursor,
        limit: q.limit,
      });
      return { data: page.data.map(leadView), next_cursor: page.next_cursor };
    });
    // Built by c.json/c.body (or a fallback) after validation; the route types only see c.json.
    return res as never;
  });

  app.openapi(createLeadRoute, async (c) => {
    const { last_contacted, ...body } = c.req.valid("json");
    const input = { ...body, source: body.source ?? "api" };
    const source = actor(c.get("principal").sub);
    const lead = await write(
      c,
      guard,
      () => createLead(deps.sql, { ...input, last_contacted: toDate(last_contacted) }, source),
      { op: "create", input: { ...input, last_contacted }, source },
    );
    if (lead instanceof Response) return lead as never;
    c.header("Location", `/v1/leads/${lead.id}`);
    return c.json(leadView(lead), 201);
  });

  app.openapi(getLeadRoute, async (c) => {
    const id = c.req.valid("param").id;
    const res = await read(c, guard, [c.req.path, ""], async () => {
      const { recent_events, ...lead } = await getLead(deps.sql, id);
      return { ...leadView(lead), recent_events: recent_events.map(eventView) };
    });
    return res as never;
  });

  app.openapi(patchLeadRoute, async (c) => {
    const { last_contacted, ...body } = c.req.valid("json");
    const id = c.req.valid("param").id;
    const patch: LeadPatch = { ...body, last_contacted: toDate(last_contacted) };
    const source = actor(c.get("principal").sub);
    const lead = await write(c, guard, () => updateLead(deps.sql, id, patch, source), {
      op: "update",
      lead_id: id,
      patch: { ...body, last_contacted },
      source,
    });
    if (lead instanceof Response) return lead as never;
    return c.json(leadView(lead), 200);
  });

  return app;
}
