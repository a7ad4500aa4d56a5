/**
 * `GET /v1/tasks` (tasks by queue state and type, newest first; admins and
 * operators) and `GET /v1/tasks/types` (the task-type catalog with each
 * type's payload JSON Schema; a non-admin sees the public types it may
 * enqueue).
 *
 * A listing shows no payloads, results or errors: those stay with the
 * enqueuing principal and admins (`GET /v1/tasks/{id}`). `enqueued_by` is
 * shown to admins only. Pages are read from the queue's own indexes in one
 * Redis call each (shared/queue/task_index.ts; docs/queue.md#listing-tasks).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { PRIORITIES } from "../../shared/redis/keys.ts";
import {
  LISTABLE_STATES,
  listTasks,
  type TaskCursor,
  type TaskSummary,
} from "../../shared/queue/task_index.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { TaskCatalog } from "../../shared/tasks/catalog.ts";
import type { AppEnv } from "../app_env.ts";
import type { Authorizer } from "../auth/policy.ts";
import type { Principal } from "../auth/principal.ts";
import { RequestValidationError, validationHook } from "../validation.ts";
import { problemResponses } from "./schemas.ts";

const TYPE_NAME = /^[a-z][a-z0-9_.-]{0,99}$/;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const TaskRow = z.object({
  id: z.uuid(),
  type: z.string(),
  state: z.enum(LISTABLE_STATES).openapi({ description: "The queue index it was listed from" }),
  status: z.enum(["pending", "running", "retrying", "succeeded", "dead"]),
  priority: z.enum(PRIORITIES),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  created_at: z.string(),
  updated_at: z.string(),
  run_at: z.string().nullable(),
  failed_at: z.string().nullable(),
  enqueued_by: z.string().nullable().openapi({
    description:
      "The enqueuing principal's sub; shown to admins only (null for others and system tasks)",
  }),
}).openapi("TaskListItem");

const TaskPage = z.object({
  data: z.array(TaskRow),
  next_cursor: z.string().nullable().openapi({
    description: "Pass as `cursor` for the next page; null on the last page",
  }),
  total: z.number().int().nullable().openapi({
    description: "Tasks in the listed state (of `priority` when given); null with a `type` " +
      "filter except for `dead`, which keeps a per-type index",
  }),
}).openapi("TaskListPage");

const listRoute = createRoute({
  method: "get",
  path: "/v1/tasks",
  operationId: "listTasks",
  tags: ["tasks"],
  summary: "Tasks by queue state, newest first (admin, operator)",
  security: [{ bearer: [] }],
  request: {
    query: z.object({
      state: z.enum(LISTABLE_STATES).openapi({
        description: "ready (claim order high, normal, low; newest queued first), delayed " +
          "(latest due first), running (latest lease expiry first), dead (latest failure " +
          "first). Succeeded tasks are not indexed and cannot be listed.",
      }),
      priority: z.enum(PRIORITIES).optional().openapi({ description: "Only with state=ready" }),
      type: z.string().regex(TYPE_NAME, "must be a task type name").optional().openapi({
        description: "Only this task type",
      }),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      cursor: z.string().max(500).optional().openapi({
        description: "`next_cursor` of the previous page (same state and priority)",
      }),
    }),
  },
  responses: {
    200: { description: "One page", content: { "application/json": { schema: TaskPage } } },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

const TaskTypeSchema = z.object({
  type: z.string(),
  public: z.boolean().openapi({ description: "Enqueueable through POST /v1/tasks" }),
  enqueueable: z.boolean().openapi({
    description: "Whether the caller may enqueue it through POST /v1/tasks",
  }),
  priority: z.enum(PRIORITIES),
  timeout_ms: z.number().int(),
  max_attempts: z.number().int(),
  payload_schema: z.record(z.string(), z.unknown()).openapi({
    description: "JSON Schema (draft 2020-12) of the payload",
  }),
}).openapi("TaskType");

const typesRoute = createRoute({
  method: "get",
  path: "/v1/tasks/types",
  operationId: "listTaskTypes",
  tags: ["tasks"],
  summary:
    "The task-type catalog: all types for admins, the public types the caller may enqueue for others",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "The task types, by name",
      content: { "application/json": { schema: z.object({ data: z.array(TaskTypeSchema) }) } },
    },
    ...problemResponses(401, 403, 429),
  },
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function rowView(t: TaskSummary, state: (typeof LISTABLE_STATES)[number], admin: boolean) {
  return {
    id: t.id,
    type: t.type,
    state,
    status: t.status,
    priority: t.priority,
    attempts: t.attempts,
    max_attempts: t.maxAttempts,
    created_at: iso(t.createdAt)!,
    updated_at: iso(t.updatedAt)!,
    run_at: iso(t.runAt),
    failed_at: iso(t.failedAt),
    enqueued_by: admin ? t.principal : null,
  };
}

/** The opaque `next_cursor`: base64url of `[state, priority, key, id, score]`. */
function encodeCursor(state: string, priority: string, c: TaskCursor): string {
  return Buffer.from(JSON.stringify([state, priority, c.key, c.id, c.score])).toString("base64url");
}

function decodeCursor(text: string, state: string, priority: string): TaskCursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    value = null;
  }
  if (Array.isArray(value) && value.length === 5) {
    const [s, p, key, id, score] = value;
    if (
      s === state && p === priority && Number.isSafeInteger(key) && key >= 1 &&
      key <= (state === "ready" && priority === "" ? PRIORITIES.length : 1) &&
      typeof id === "string" && ID.test(id) && Number.isSafeInteger(score) && score >= 0
    ) {
      return { key, id, score };
    }
  }
  throw new RequestValidationError([{
    field: "query.cursor",
    message: "not a cursor this API returned for this state and priority; start again without one",
  }]);
}

const isAdmin = (p: Principal) => p.roles.includes("admin");

/** Each catalog type's payload as JSON Schema, built once per catalog. */
function payloadSchemas(catalog: TaskCatalog): Map<string, Record<string, unknown>> {
  const out = new Map<string, Record<string, unknown>>();
  for (const [name, def] of Object.entries(catalog)) {
    // "input": what a caller sends (defaults optional); a refinement JSON Schema
    // cannot express is described as `{}` rather than failing the catalog.
    out.set(name, z.toJSONSchema(def.schema, { io: "input", unrepresentable: "any" }));
  }
  return out;
}

/** Routes of `GET /v1/tasks` and `GET /v1/tasks/types`; `decide` is the gateway's access policy. */
export function taskListingRoutes(queue: TaskQueue, decide: Authorizer): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const catalog = queue.catalog;
  const schemas = payloadSchemas(catalog);

  app.openapi(listRoute, async (c) => {
    const { state, priority, type, limit, cursor } = c.req.valid("query");
    if (priority !== undefined && state !== "ready") {
      throw new RequestValidationError([{
        field: "query.priority",
        message: "only with state=ready",
      }]);
    }
    const page = await listTasks(queue, {
      state,
      priority,
      type,
      limit,
      after: cursor === undefined ? undefined : decodeCursor(cursor, state, priority ?? ""),
    });
    const admin = isAdmin(c.get("principal"));
    return c.json({
      data: page.tasks.map((t) => rowView(t, state, admin)),
      next_cursor: page.next === null ? null : encodeCursor(state, priority ?? "", page.next),
      total: page.total,
    }, 200);
  });

  app.openapi(typesRoute, (c) => {
    const principal = c.get("principal");
    const admin = isAdmin(principal);
    const data = Object.keys(catalog).sort().flatMap((name) => {
      const def = catalog[name]!;
      const isPublic = def.public === true && def.permission !== undefined;
      const enqueueable = isPublic &&
        decide(principal, def.permission!.method, def.permission!.path).allowed;
      if (!admin && !enqueueable) return [];
      return [{
        type: name,
        public: isPublic,
        enqueueable,
        priority: def.priority,
        timeout_ms: def.timeoutMs,
        max_attempts: def.maxAttempts,
        payload_schema: schemas.get(name)!,
      }];
    });
    return c.json({ data }, 200);
  });

  return app;
}
