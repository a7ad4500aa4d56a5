/**
 * `GET /v1/me`: the principal as the gateway sees it (debugging aid for
 * clients and the simplest route through the whole middleware chain).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { problemResponses } from "./schemas.ts";

const PrincipalSchema = z.object({
  sub: z.string().openapi({ example: "sa:minerva" }),
  kind: z.enum(["user", "service"]),
  roles: z.array(z.enum(["admin", "operator", "viewer"])),
}).openapi("Principal");

const meRoute = createRoute({
  method: "get",
  path: "/v1/me",
  operationId: "getMe",
  tags: ["gateway"],
  summary: "The authenticated principal",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "The caller",
      content: { "application/json": { schema: PrincipalSchema } },
    },
    ...problemResponses(401, 403, 429),
  },
});

/** Routes of `/v1/me`. */
export function meRoutes(): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(meRoute, (c) => {
    const p = c.get("principal");
    return c.json({ sub: p.sub, kind: p.kind, roles: p.roles }, 200);
  });
  return app;
}
