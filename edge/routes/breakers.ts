/**
 * Breaker operations (admin only, see edge/auth/policy.ts):
 * `GET /v1/breakers`, `POST /v1/breakers/{name}/reset|force-open|disable`.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { BreakerRegistry } from "../../shared/breakers/registry.ts";
import type { BreakerSnapshot } from "../../shared/breakers/types.ts";
import { AppError } from "../../shared/errors.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { problemResponses } from "./schemas.ts";

const BreakerSchema = z.object({
  name: z.string(),
  state: z.enum(["closed", "open", "half_open", "forced_open", "disabled"]),
  source: z.enum(["redis", "local"]),
  consecutive_failures: z.number().int(),
  trips: z.number().int(),
  open_remaining_ms: z.number().nullable(),
  probe_remaining_ms: z.number().nullable(),
  reason: z.string().nullable(),
  by: z.string().nullable(),
}).openapi("Breaker");

const Name = z.object({ name: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/) });

function view(s: BreakerSnapshot) {
  return {
    name: s.name,
    state: s.state,
    source: s.source,
    consecutive_failures: s.consecutiveFailures,
    trips: s.trips,
    open_remaining_ms: s.openRemainingMs,
    probe_remaining_ms: s.probeRemainingMs,
    reason: s.reason,
    by: s.by,
  };
}

const listRoute = createRoute({
  method: "get",
  path: "/v1/breakers",
  operationId: "listBreakers",
  tags: ["operations"],
  summary: "Every circuit breaker with its state (admin)",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "The breakers",
      content: { "application/json": { schema: z.object({ breakers: z.array(BreakerSchema) }) } },
    },
    ...problemResponses(401, 403, 429, 503),
  },
});

function operation(action: "reset" | "force-open" | "disable", summary: string) {
  return createRoute({
    method: "post",
    path: `/v1/breakers/{name}/${action}`,
    // Stable names, not derived from the path segment: clients generate method names from them.
    operationId:
      ({ reset: "resetBreaker", "force-open": "forceOpenBreaker", disable: "disableBreaker" })[
        action
      ],
    tags: ["operations"],
    summary,
    security: [{ bearer: [] }],
    request: { params: Name },
    responses: {
      200: {
        description: "The breaker after the change",
        content: { "application/json": { schema: BreakerSchema } },
      },
      ...problemResponses(400, 401, 403, 404, 429, 503),
    },
  });
}

/** Routes of `/v1/breakers`. */
export function breakerRoutes(registry: BreakerRegistry): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(listRoute, async (c) => c.json({ breakers: (await registry.list()).map(view) }, 200));

  const known = (name: string) => {
    try {
      registry.get(name);
    } catch {
      throw new AppError("breaker-not-found", 404, `No breaker named "${name}"`);
    }
  };
  const ops = [
    ["reset", "Close a breaker and clear its counters (admin)", (n: string) => registry.reset(n)],
    ["force-open", "Refuse every call until a reset (admin)", (n: string) => registry.forceOpen(n)],
    ["disable", "Let every call through until a reset (admin)", (n: string) => registry.disable(n)],
  ] as const;
  for (const [action, summary, run] of ops) {
    app.openapi(operation(action, summary), async (c) => {
      const { name } = c.req.valid("param");
      known(name);
      c.get("log").warn("breaker changed by operator", { breaker: name, action });
      return c.json(view(await run(name)), 200);
    });
  }
  return app;
}
