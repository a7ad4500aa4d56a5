/**
 * `DELETE /v1/leads/{id}`: erases a lead on an erasure request (admins; the
 * `erasure` group of edge/auth/policy.ts). Its personal data leaves every
 * table in one transaction (shared/leads/erasure.ts; docs/security.md "Data
 * erasure"). 204 when erased; the lead then no longer exists, so a second
 * DELETE is 404 `lead-not-found`, like any read of it. Never queued while the
 * database breaker refuses (503 with Retry-After): an erasure is not
 * reported done before it is.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import { eraseLead } from "../../shared/leads/erasure.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { type Guard, runWrite } from "./lead_guard.ts";
import { problemResponses } from "./schemas.ts";

const eraseRoute = createRoute({
  method: "delete",
  path: "/v1/leads/{id}",
  operationId: "eraseLead",
  tags: ["leads"],
  summary: "Erase a lead and its personal data (erasure requests; admins)",
  description:
    "Who: users with role admin. Deletes the lead, its history, its email ledger rows and appointments; strips its events' payloads to non-identifying keys; keeps (or adds) its addresses on the suppression list so the person is never mailed again; records `lead_erased`. A second DELETE is 404 (the lead no longer exists).",
  security: [{ bearer: [] }],
  request: { params: z.object({ id: z.uuid() }) },
  responses: {
    204: { description: "Erased" },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});

/** The erasure route; `guard` as for leadRoutes (edge/routes/leads.ts). */
export function leadErasureRoutes(
  deps: Pick<Deps, "sql">,
  guard: Guard | null,
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(eraseRoute, async (c) => {
    const id = c.req.valid("param").id;
    const source = `api:${c.get("principal").sub}`;
    const out = await runWrite(c, { guard, payload: null }, () => eraseLead(deps.sql, id, source));
    if (out instanceof Response) return out as never;
    return c.body(null, 204);
  });
  return app;
}
