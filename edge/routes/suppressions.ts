/**
 * Suppression list management (shared/email/suppressions.ts), admins only —
 * reads too: the list is a list of people's addresses, and the people who
 * send email learn what they need from the `422 recipient-suppressed` of
 * `POST /v1/outreach/emails`. The routes live under `/v1/admin/`, the
 * policy's admin group (edge/auth/policy.ts):
 *
 * - `GET /v1/admin/suppressions` — the list, newest first (`address` finds one);
 * - `POST /v1/admin/suppressions` `{address, reason}` — add (201; 200 when
 *   the address is already on the list, unchanged);
 * - `POST /v1/admin/suppressions/remove` `{address, reason}` — remove (404
 *   `suppression-not-found` when it is not on the list). Addresses travel in
 *   bodies, not paths, so they stay out of access logs and traces;
 * - `GET /v1/admin/suppressions/changes` — the audit log: every add and
 *   remove an admin made, with who, when and why (kept after a removal).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import { AppError } from "../../shared/errors.ts";
import {
  addSuppression,
  listSuppressionChanges,
  listSuppressions,
  removeSuppression,
} from "../../shared/email/suppressions.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import {
  decodePageCursor,
  encodePageCursor,
  MICROS_TIMESTAMP,
  pageQuery,
  pageSchema,
} from "./list_page.ts";
import { orDatabaseUnavailable } from "./database_failure.ts";
import { problemResponses, ProblemSchema } from "./schemas.ts";

const WHO = "Who: users with role admin.";
const STORE = "The suppression list did not answer";

const address = z.string().trim().toLowerCase().pipe(z.email().max(254)).openapi({
  description: "Email address (compared case-insensitively)",
  example: "owner@harbor.example",
});
const reason = z.string().trim().min(1).max(1000).refine((s) => !s.includes("\0"), {
  message: "must not contain NUL characters",
});

const SuppressionSchema = z.object({
  address: z.string(),
  reason: z.string().openapi({
    description: "`unsubscribed` for the recipient's own link; an admin's reason otherwise",
  }),
  added_by: z.string().nullable().openapi({
    description: "`api:<principal>` for an admin; null for the recipient's own unsubscribe",
  }),
  created_at: z.string(),
}).openapi("Suppression");

const ChangeSchema = z.object({
  id: z.uuid(),
  address: z.string(),
  action: z.enum(["added", "removed"]),
  reason: z.string(),
  actor: z.string().openapi({ example: "api:u-admin" }),
  at: z.string(),
}).openapi("SuppressionChange");

const EditBody = z.object({
  address,
  reason: reason.openapi({ example: "Asked by phone not to be emailed" }),
}).strict().openapi("SuppressionEdit");

const ListQuery = z.object({
  address: address.optional(),
  ...pageQuery({ defaultLimit: 100, maxLimit: 500 }),
});
const SuppressionCursor = z.tuple([MICROS_TIMESTAMP, z.string().min(1).max(254)]);
const ChangeCursor = z.tuple([MICROS_TIMESTAMP, z.uuid()]);

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});
const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

const listRoute = createRoute({
  method: "get",
  path: "/v1/admin/suppressions",
  operationId: "listSuppressions",
  tags: ["outreach"],
  summary: "The suppression list, newest first",
  description: WHO,
  security: [{ bearer: [] }],
  request: { query: ListQuery },
  responses: {
    200: json(pageSchema(SuppressionSchema, "SuppressionList"), "A page of suppressed addresses"),
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

const addRoute = createRoute({
  method: "post",
  path: "/v1/admin/suppressions",
  operationId: "addSuppression",
  tags: ["outreach"],
  summary: "Put an address on the suppression list (no email is sent to it)",
  description:
    `${WHO} Recorded in the audit log (\`GET /v1/admin/suppressions/changes\`) with who and why.`,
  security: [{ bearer: [] }],
  request: { body: { required: true, content: { "application/json": { schema: EditBody } } } },
  responses: {
    201: json(SuppressionSchema, "Added"),
    200: json(SuppressionSchema, "Already on the list: unchanged, nothing recorded"),
    ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
  },
});

const removeRoute = createRoute({
  method: "post",
  path: "/v1/admin/suppressions/remove",
  operationId: "removeSuppression",
  tags: ["outreach"],
  summary: "Take an address off the suppression list (email may reach it again)",
  description:
    `${WHO} The reason is required and recorded in the audit log with who and when; the log entry outlives the suppression.`,
  security: [{ bearer: [] }],
  request: { body: { required: true, content: { "application/json": { schema: EditBody } } } },
  responses: {
    200: json(
      z.object({ removed: SuppressionSchema, change: ChangeSchema }).openapi("SuppressionRemoval"),
      "Removed; `change` is the audit entry",
    ),
    ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
    404: problem("`suppression-not-found`: the address is not on the list"),
  },
});

const changesRoute = createRoute({
  method: "get",
  path: "/v1/admin/suppressions/changes",
  operationId: "listSuppressionChanges",
  tags: ["outreach"],
  summary: "The suppression list's audit log: every add and remove by an admin, newest first",
  description: WHO,
  security: [{ bearer: [] }],
  request: { query: ListQuery },
  responses: {
    200: json(pageSchema(ChangeSchema, "SuppressionChangeList"), "A page of changes"),
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

/** Routes of `/v1/admin/suppressions`. */
export function suppressionRoutes(deps: Pick<Deps, "sql">): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const actor = (sub: string) => `api:${sub}`;

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await orDatabaseUnavailable(c, STORE, () =>
      listSuppressions(deps.sql, {
        ...(q.address === undefined ? {} : { address: q.address }),
        ...(q.cursor === undefined ? {} : { after: decodePageCursor(q.cursor, SuppressionCursor) }),
        limit: q.limit,
      }));
    return c.json({ data: page.rows, next_cursor: page.next && encodePageCursor(page.next) }, 200);
  });

  app.openapi(changesRoute, async (c) => {
    const q = c.req.valid("query");
    const page = await orDatabaseUnavailable(c, STORE, () =>
      listSuppressionChanges(deps.sql, {
        ...(q.address === undefined ? {} : { address: q.address }),
        ...(q.cursor === undefined ? {} : { after: decodePageCursor(q.cursor, ChangeCursor) }),
        limit: q.limit,
      }));
    return c.json({ data: page.rows, next_cursor: page.next && encodePageCursor(page.next) }, 200);
  });

  app.openapi(addRoute, async (c) => {
    const body = c.req.valid("json");
    const out = await orDatabaseUnavailable(c, STORE, () =>
      addSuppression(deps.sql, {
        ...body,
        actor: actor(c.get("principal").sub),
      }));
    if (out.added) {
      c.get("log")?.info("suppression added", { actor: actor(c.get("principal").sub) });
      return c.json(out.suppression, 201);
    }
    return c.json(out.suppression, 200);
  });

  app.openapi(removeRoute, async (c) => {
    const body = c.req.valid("json");
    const out = await orDatabaseUnavailable(c, STORE, () =>
      removeSuppression(deps.sql, {
        ...body,
        actor: actor(c.get("principal").sub),
      }));
    if (out === null) {
      throw new AppError(
        "suppression-not-found",
        404,
        "The address is not on the suppression list",
        {
          details: { detail: "Nothing was removed: the address is not on the suppression list" },
        },
      );
    }
    c.get("log")?.info("suppression removed", {
      actor: out.change.actor,
      change_id: out.change.id,
    });
    return c.json(out, 200);
  });

  return app;
}
