/**
 * The analytics read API over shared/analytics/:
 *
 * - `GET /v1/analytics/capabilities`: the database's tier and which features
 *   are native and which the application emulates;
 * - `GET /v1/analytics/lead-metrics?from&to&bucket=1h|1d&event_type`: events
 *   and unique leads per bucket and type, from the rollups plus the not yet
 *   aggregated tail, so the numbers are current;
 * - `GET /v1/analytics/funnel?from&to`: the outreach funnel of the leads first
 *   contacted in the range;
 * - `GET /v1/analytics/bookings?from&to`: the appointment booking success rate.
 *
 * `from` and `to` are ISO 8601 instants with offset, `[from, to)`. A
 * malformed instant, `from` not before `to`, or a range longer than the
 * bucket allows (366 days at 1h, 3,660 days at 1d and for funnel and
 * bookings) is 400 `invalid-range`, checked before any query.
 *
 * With a breaker registry every query goes through the `analytics` breaker
 * with `guardedRead`: while it refuses, the last good answer for the same
 * path and query (200 `{"status":"degraded","message":"Analytics temporarily
 * unavailable","cached_data":…}`), or 503 `downstream-unavailable` with
 * `Retry-After`. Answers do not depend on the caller, so the cache identity
 * is the path and the validated query. A failing database is 503
 * `dependency-unavailable`, never a 500.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Breaker } from "../../shared/breakers/breaker.ts";
import type { BreakerRegistry } from "../../shared/breakers/registry.ts";
import type { Deps } from "../../shared/deps.ts";
import {
  bookings,
  checkRange,
  funnel,
  FUNNEL_STAGES,
  InvalidAnalyticsRangeError,
  leadMetrics,
  MAX_RANGE_MS,
} from "../../shared/analytics/queries.ts";
import { readTier } from "../../shared/analytics/tier.ts";
import { EVENT_TYPE_PATTERN } from "../../shared/leads/events.ts";
import { canonicalJson } from "../../shared/queue/canonical_json.ts";
import type { AppEnv } from "../app_env.ts";
import { guardedRead } from "../degraded/fallbacks.ts";
import type { ResponseCache } from "../degraded/response_cache.ts";
import { validationHook } from "../validation.ts";
import { databaseFailed } from "./database_failure.ts";
import { degradedSchema, problemResponses, ProblemSchema } from "./schemas.ts";

const instant = (which: string) =>
  z.string().max(64).openapi({
    format: "date-time",
    description: `${which}, ISO 8601 with offset (a malformed value is 400 \`invalid-range\`)`,
    example: which === "from" ? "2026-03-01T00:00:00Z" : "2026-03-08T00:00:00Z",
  });

const RangeQuery = z.object({ from: instant("from"), to: instant("to") });

const MetricsQuery = RangeQuery.extend({
  bucket: z.enum(["1h", "1d"]).default("1h").openapi({
    description: "Bucket width; 1h ranges up to 366 days, 1d up to 3,660",
  }),
  event_type: z.string().regex(EVENT_TYPE_PATTERN, "must be a lower snake_case event type")
    .optional().openapi({ description: "Only this event type", example: "email_opened" }),
});

const CapabilitiesSchema = z.object({
  tier: z.union([z.literal(1), z.literal(2), z.literal(3)]).openapi({
    description: "1 TimescaleDB with TSL features, 2 TimescaleDB Apache-only (Neon), 3 PostgreSQL",
  }),
  name: z.string().openapi({ example: "postgresql" }),
  detected_at: z.string(),
  details: z.record(z.string(), z.unknown()),
  native: z.record(z.string(), z.string()).openapi({
    description: "Feature → the database object that provides it",
  }),
  emulated: z.record(z.string(), z.string()).openapi({
    description: "Feature → how the application provides it",
  }),
}).openapi("AnalyticsCapabilities");

const MetricsSchema = z.object({
  from: z.string(),
  to: z.string(),
  bucket: z.enum(["1h", "1d"]),
  event_type: z.string().nullable(),
  data: z.array(z.object({
    bucket: z.string().openapi({ description: "Bucket start (UTC)" }),
    event_type: z.string(),
    event_count: z.number().int(),
    unique_leads: z.number().int(),
  })).openapi({
    description:
      "Every bucket overlapping [from, to) that has events (whole buckets), by bucket then type",
  }),
}).openapi("LeadMetrics");

const FunnelSchema = z.object({
  from: z.string(),
  to: z.string(),
  stages: z.array(z.object({
    stage: z.enum(FUNNEL_STAGES),
    leads: z.number().int(),
    rate_from_previous: z.number().nullable(),
    rate_from_first: z.number().nullable(),
  })),
}).openapi("Funnel");

const BookingsSchema = z.object({
  from: z.string(),
  to: z.string(),
  booked: z.number().int(),
  leads: z.number().int(),
  cancelled: z.number().int(),
  kept: z.number().int(),
  success_rate: z.number().nullable().openapi({
    description: "kept / booked; null without bookings",
  }),
}).openapi("Bookings");

function readRoute<Q extends z.ZodObject, S extends z.ZodType>(
  operationId: string,
  path: string,
  summary: string,
  query: Q,
  schema: S,
  name: string,
) {
  return createRoute({
    method: "get",
    path,
    operationId,
    tags: ["analytics"],
    summary,
    security: [{ bearer: [] }],
    request: { query },
    responses: {
      200: {
        description: "The answer; while analytics is unavailable, the last good one (degraded)",
        content: {
          "application/json": {
            schema: z.union([
              schema,
              degradedSchema(schema, name, "Analytics temporarily unavailable"),
            ]),
          },
        },
      },
      400: {
        description: "`invalid-range` (malformed instant, from not before to, range too long) " +
          "or `invalid-request`",
        content: { "application/problem+json": { schema: ProblemSchema } },
      },
      ...problemResponses(401, 403, 429, 503),
    },
  });
}

const capabilitiesRoute = readRoute(
  "getAnalyticsCapabilities",
  "/v1/analytics/capabilities",
  "The analytics tier and its native and emulated features",
  z.object({}),
  CapabilitiesSchema,
  "DegradedAnalyticsCapabilities",
);
const metricsRoute = readRoute(
  "getLeadMetrics",
  "/v1/analytics/lead-metrics",
  "Lead events and unique leads per bucket and event type",
  MetricsQuery,
  MetricsSchema,
  "DegradedLeadMetrics",
);
const funnelRoute = readRoute(
  "getFunnel",
  "/v1/analytics/funnel",
  "Outreach funnel: contacted → responded → meeting_scheduled → client",
  RangeQuery,
  FunnelSchema,
  "DegradedFunnel",
);
const bookingsRoute = readRoute(
  "getBookings",
  "/v1/analytics/bookings",
  "Appointment booking success rate",
  RangeQuery,
  BookingsSchema,
  "DegradedBookings",
);

const IsoInstant = z.iso.datetime({ offset: true });

/** `[from, to)` checked for `maxMs`, as Dates; 400 `invalid-range` otherwise. */
function range(q: { from: string; to: string }, maxMs: number): { from: Date; to: Date } {
  for (const which of ["from", "to"] as const) {
    if (!IsoInstant.safeParse(q[which]).success) {
      throw new InvalidAnalyticsRangeError(
        `${which} must be an ISO 8601 date-time with offset, got ${JSON.stringify(q[which])}`,
      );
    }
  }
  const r = checkRange(new Date(q.from), new Date(q.to), maxMs);
  return { from: new Date(r.from), to: new Date(r.to) };
}

/** The breaker and the fallback's collaborators, when the routes are guarded. */
interface Guard {
  breaker: Breaker;
  cache: ResponseCache;
  now: () => number;
}

/** A read: through guardedRead when guarded, else straight; failures become 503. */
async function read(
  c: Context,
  g: Guard | null,
  identity: string[],
  fn: () => Promise<unknown>,
): Promise<Response> {
  try {
    if (g === null) return c.json(await fn(), 200);
    return await guardedRead(c, { breaker: g.breaker, cache: g.cache, now: g.now, identity }, fn);
  } catch (err) {
    return databaseFailed(c, err, "The analytics store did not answer");
  }
}

/** Collaborators of {@linkcode analyticsRoutes}. */
export interface AnalyticsRouteOptions {
  /**
   * Guards every query with its `analytics` breaker (unguarded, with a
   * warning, when the registry has none); needs `cache`. @default none: unguarded
   */
  breakers?: BreakerRegistry;
  /** Last good answers of the reads. */
  cache?: ResponseCache;
}

/** Routes of `/v1/analytics/*`. */
export function analyticsRoutes(
  deps: Pick<Deps, "sql" | "now" | "log">,
  options: AnalyticsRouteOptions = {},
): OpenAPIHono<AppEnv> {
  const { breakers, cache } = options;
  let guard: Guard | null = null;
  if (breakers) {
    if (!cache) throw new TypeError("analyticsRoutes: a breaker registry needs a response cache");
    // The configuration always has an analytics policy (defaults are merged
    // in); only a registry built by hand for other breakers lacks it.
    let breaker: Breaker | null = null;
    try {
      breaker = breakers.get("analytics");
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      deps.log.warn("analytics routes are not guarded: the registry has no analytics breaker");
    }
    if (breaker) guard = { breaker, cache, now: deps.now };
  }
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(capabilitiesRoute, async (c) => {
    const res = await read(c, guard, [c.req.path, ""], () => readTier(deps.sql));
    // Built by c.json/c.body (or a fallback) after validation; the route types only see c.json.
    return res as never;
  });

  app.openapi(metricsRoute, async (c) => {
    const q = c.req.valid("query");
    const { from, to } = range(q, MAX_RANGE_MS[q.bucket]);
    const res = await read(c, guard, [c.req.path, canonicalJson(q)], async () => ({
      from: from.toISOString(),
      to: to.toISOString(),
      bucket: q.bucket,
      event_type: q.event_type ?? null,
      data: await leadMetrics(deps.sql, { from, to, bucket: q.bucket, eventType: q.event_type }),
    }));
    return res as never;
  });

  app.openapi(funnelRoute, async (c) => {
    const q = c.req.valid("query");
    const r = range(q, MAX_RANGE_MS["1d"]);
    const res = await read(c, guard, [c.req.path, canonicalJson(q)], () => funnel(deps.sql, r));
    return res as never;
  });

  app.openapi(bookingsRoute, async (c) => {
    const q = c.req.valid("query");
    const r = range(q, MAX_RANGE_MS["1d"]);
    const res = await read(c, guard, [c.req.path, canonicalJson(q)], () => bookings(deps.sql, r));
    return res as never;
  });

  return app;
}
