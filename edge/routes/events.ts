/**
 * `POST /v1/events`: a batch of 1 to 1,000 lead events reported by clients
 * (mail provider webhooks relayed by sa:api-gateway, Minerva, operators),
 * stored through `ingestEvents()` (shared/analytics/ingest.ts).
 *
 * The answer is always 200 for a well-formed batch and says per event what
 * happened: `stored`, `duplicates` (the client event id was stored before, or
 * earlier in the batch) and `rejected` with every reason. A body that is not
 * `{"events": [...]}` with 1..1,000 entries is 400 `invalid-request`; a bad
 * event never fails the batch.
 *
 * With a breaker registry the ingest goes through the `database` breaker.
 * While it refuses, the answer is 503 `downstream-unavailable` with
 * `Retry-After`; the batch is NOT queued: the per-event answer needs the
 * database, and resending is safe because ids are deduplicated (a resent
 * batch reports its stored events as duplicates). A failing database is 503
 * `dependency-unavailable`, never a 500.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Breaker } from "../../shared/breakers/breaker.ts";
import { BreakerOpenError } from "../../shared/breakers/errors.ts";
import type { BreakerRegistry } from "../../shared/breakers/registry.ts";
import type { Deps } from "../../shared/deps.ts";
import {
  INGEST_EVENT_TYPES,
  ingestEvents,
  MAX_EVENT_DATA_BYTES,
  MAX_INGEST_BATCH,
  MAX_SOURCE_LENGTH,
} from "../../shared/analytics/ingest.ts";
import type { AppEnv } from "../app_env.ts";
import { retryAfterSeconds } from "../degraded/fallbacks.ts";
import { problem } from "../problem.ts";
import { validationHook } from "../validation.ts";
import { databaseFailed } from "./database_failure.ts";
import { problemResponses } from "./schemas.ts";

// Documentation only: events are validated one by one by ingestEvents(), so
// that a bad event is reported in `rejected` instead of failing the batch.
const IngestEventDoc = z.unknown().openapi("IngestEvent", {
  type: "object",
  required: ["id", "time", "lead_id", "event_type"],
  properties: {
    id: {
      type: "string",
      format: "uuid",
      description: "Client event id; resent events are stored once",
    },
    time: {
      type: "string",
      format: "date-time",
      description: "ISO 8601 with offset; at most 5 minutes in the future",
    },
    lead_id: { type: "string", format: "uuid", description: "An existing lead" },
    event_type: { type: "string", enum: [...INGEST_EVENT_TYPES] },
    event_data: {
      type: "object",
      additionalProperties: true,
      description: `JSON object, at most ${MAX_EVENT_DATA_BYTES} bytes`,
    },
    source: {
      type: "string",
      maxLength: MAX_SOURCE_LENGTH,
      description: "Stored as `api:<principal>:<source>`; must not contain `:`",
    },
  },
  additionalProperties: false,
});

const IngestBody = z.object({
  events: z.array(IngestEventDoc).min(1).max(MAX_INGEST_BATCH).openapi({
    description: `1 to ${MAX_INGEST_BATCH} events`,
  }),
}).strict().openapi("IngestRequest");

const Ingested = z.object({ index: z.number().int(), id: z.uuid() });

const IngestResultSchema = z.object({
  stored: z.array(Ingested),
  duplicates: z.array(Ingested).openapi({
    description: "Ids stored before (or earlier in this batch): ignored",
  }),
  rejected: z.array(z.object({
    index: z.number().int(),
    id: z.uuid().optional().openapi({ description: "When the id was a uuid" }),
    reasons: z.array(z.string()).openapi({
      example: ["lead_id: no lead has this id"],
    }),
  })),
}).openapi("IngestResult");

const ingestRoute = createRoute({
  method: "post",
  path: "/v1/events",
  operationId: "ingestEvents",
  tags: ["analytics"],
  summary: "Record a batch of lead events; answers per event",
  security: [{ bearer: [] }],
  request: {
    body: { required: true, content: { "application/json": { schema: IngestBody } } },
  },
  responses: {
    200: {
      description: "What happened to each event (indexes into the batch)",
      content: { "application/json": { schema: IngestResultSchema } },
    },
    ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
  },
});

/** 503 while the breaker refuses: nothing was stored, resend the whole batch later. */
function refused(c: Context, err: BreakerOpenError): Response {
  const retryAfter = retryAfterSeconds(err);
  return problem(c, {
    code: "downstream-unavailable",
    status: 503,
    title: "Database temporarily unavailable",
    detail:
      `The ${err.breaker} circuit breaker is ${err.state}: no event was stored; resend the batch after Retry-After`,
    breaker: err.breaker,
    retry_after: retryAfter,
  }, { "Retry-After": String(retryAfter) });
}

/** Collaborators of {@linkcode eventRoutes}. */
export interface EventRouteOptions {
  /** Guards the ingest with its `database` breaker. @default none: unguarded */
  breakers?: BreakerRegistry;
}

/** The route of `POST /v1/events`. */
export function eventRoutes(
  deps: Pick<Deps, "sql" | "now" | "metrics">,
  options: EventRouteOptions = {},
): OpenAPIHono<AppEnv> {
  // Throws now, at startup, when no database policy is configured.
  const breaker: Breaker | null = options.breakers?.get("database") ?? null;
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(ingestRoute, async (c) => {
    const { events } = c.req.valid("json");
    const source = `api:${c.get("principal").sub}`;
    const ingest = () =>
      ingestEvents(deps.sql, events, {
        now: deps.now(),
        source,
        metrics: deps.metrics,
      });
    try {
      // No call timeout: a timed-out batch could still commit; its resend is
      // then answered with duplicates, which is right but confusing.
      const result = breaker === null
        ? await ingest()
        : await breaker.call(ingest, { signal: c.req.raw.signal });
      return c.json(result, 200);
    } catch (err) {
      if (breaker !== null && err instanceof BreakerOpenError) return refused(c, err) as never;
      return databaseFailed(c, err, "The event store did not answer") as never;
    }
  });

  return app;
}
