/**
 * `GET /v1/slo`: the SLO status the console's overview shows (error rate, p95
 * latency, booking success rate), read from Prometheus by edge/slo/. Who may
 * read it: the policy's `status` group (admin, operator, viewer), like the
 * breaker states: health, no data. Always 200: when Prometheus is not
 * configured or cannot answer, the status is `unknown` with a `reason`.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app_env.ts";
import type { SloSource } from "../slo/slo_status.ts";
import { validationHook } from "../validation.ts";
import { problemResponses } from "./schemas.ts";

const Reading = z.object({
  name: z.enum(["error_rate", "p95_latency", "booking_success_rate"]),
  title: z.string(),
  record: z.string().openapi({ description: "The recording rule (deploy/prometheus/rules.yml)" }),
  unit: z.enum(["ratio", "seconds"]),
  comparison: z.enum(["below", "above"]).openapi({
    description: "below: met while value ≤ threshold; above: met while value ≥ threshold",
  }),
  threshold: z.number(),
  value: z.number().nullable().openapi({ description: "null: no value (no traffic) or not read" }),
  status: z.enum(["ok", "breach", "no_data", "unknown"]),
}).openapi("SloObjective");

const Report = z.object({
  status: z.enum(["ok", "breach", "unknown"]).openapi({
    description: "breach: some objective is missed; ok: every measured one is met; unknown: " +
      "nothing could be measured (see reason)",
  }),
  reason: z.enum(["not-configured", "target-refused", "unreachable", "bad-response", "no-data"])
    .nullable(),
  detail: z.string().nullable(),
  checked_at: z.string().openapi({ description: "When Prometheus was asked (cached for 10 s)" }),
  objectives: z.array(Reading),
}).openapi("SloStatus");

const getRoute = createRoute({
  method: "get",
  path: "/v1/slo",
  operationId: "getSloStatus",
  tags: ["operations"],
  summary: "SLO status: error rate, p95 latency, booking success (admin, operator, viewer)",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "The status; `unknown` with a reason when Prometheus cannot tell",
      content: { "application/json": { schema: Report } },
    },
    ...problemResponses(401, 403, 429),
  },
});

/** Routes of `/v1/slo`. */
export function sloRoutes(source: SloSource): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(getRoute, async (c) => c.json(await source.read(), 200));
  return app;
}
