/**
 * Dead-letter queue operations (admin only, see edge/auth/policy.ts):
 * `GET /v1/dlq` (cursor-paged, newest first), `GET|DELETE /v1/dlq/{id}`,
 * `POST /v1/dlq/{id}/replay` and `POST /v1/dlq/replay?type=`.
 *
 * The POSTs take no body, but the gateway's JSON rule still wants
 * `Content-Type: application/json` on them; an `Idempotency-Key` is optional.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { AppError } from "../../shared/errors.ts";
import {
  countDead,
  type DeadCursor,
  getDead,
  pageDead,
  purgeDead,
  replayDead,
  replayDeadByType,
} from "../../shared/queue/dlq.ts";
import { UnknownTaskTypeError } from "../../shared/queue/errors.ts";
import type { TaskInfo, TaskQueue } from "../../shared/queue/queue.ts";
import type { AppEnv } from "../app_env.ts";
import { RequestValidationError, validationHook } from "../validation.ts";
import { problemResponses } from "./schemas.ts";
import { TASK_FIELDS, taskView } from "./tasks.ts";

/** Replayed per second by `POST /v1/dlq/replay`: the CLI's default, gentle on a recovering downstream. */
const REPLAY_PER_SECOND = 100;

const TYPE_NAME = /^[a-z][a-z0-9_]{0,99}$/;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const DeadTaskSchema = z.object(TASK_FIELDS).openapi("DeadTask");

const DeadTaskDetailSchema = z.object({
  ...TASK_FIELDS,
  payload: z.unknown(),
  priority: z.string(),
  replays: z.number().int().openapi({ description: "Times it was replayed before" }),
}).openapi("DeadTaskDetail");

const DeadPageSchema = z.object({
  data: z.array(DeadTaskSchema),
  next_cursor: z.string().nullable().openapi({
    description: "Pass as `cursor` for the next page; null on the last page",
  }),
  total: z.number().int().openapi({ description: "Dead tasks listed (of `type` when given)" }),
}).openapi("DeadTaskPage");

const Replayed = z.object({
  task_id: z.uuid(),
  status: z.literal("pending"),
  status_url: z.string(),
}).openapi("DeadTaskReplayed");

const ReplayedByType = z.object({
  type: z.string(),
  replayed: z.number().int(),
  remaining: z.number().int().openapi({
    description: "Dead tasks of this type still in the queue; call again while above 0",
  }),
}).openapi("DeadTasksReplayed");

const IdParam = z.object({ id: z.uuid() });
const TypeName = z.string().regex(TYPE_NAME, "must be a snake_case task type");

const listRoute = createRoute({
  method: "get",
  path: "/v1/dlq",
  operationId: "listDeadTasks",
  tags: ["operations"],
  summary: "Dead tasks, newest first (admin)",
  security: [{ bearer: [] }],
  request: {
    query: z.object({
      type: TypeName.optional().openapi({ description: "Only this task type" }),
      limit: z.coerce.number().int().min(1).max(500).default(50),
      cursor: z.string().max(500).optional().openapi({
        description: "`next_cursor` of the previous page",
      }),
    }),
  },
  responses: {
    200: { description: "One page", content: { "application/json": { schema: DeadPageSchema } } },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

const showRoute = createRoute({
  method: "get",
  path: "/v1/dlq/{id}",
  operationId: "getDeadTask",
  tags: ["operations"],
  summary: "One dead task with its payload (admin)",
  security: [{ bearer: [] }],
  request: { params: IdParam },
  responses: {
    200: {
      description: "The dead task",
      content: { "application/json": { schema: DeadTaskDetailSchema } },
    },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});

const replayOneRoute = createRoute({
  method: "post",
  path: "/v1/dlq/{id}/replay",
  operationId: "replayDeadTask",
  tags: ["operations"],
  summary: "Queue a dead task again: same id and idempotency key, attempts reset (admin)",
  security: [{ bearer: [] }],
  request: { params: IdParam },
  responses: {
    202: { description: "Queued again", content: { "application/json": { schema: Replayed } } },
    ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429, 503),
  },
});

const replayTypeRoute = createRoute({
  method: "post",
  path: "/v1/dlq/replay",
  operationId: "replayDeadTasks",
  tags: ["operations"],
  summary:
    `Queue dead tasks of a type again, oldest first, ${REPLAY_PER_SECOND} per second (admin)`,
  security: [{ bearer: [] }],
  request: {
    query: z.object({
      type: TypeName.openapi({ description: "A task type of the catalog" }),
      max: z.coerce.number().int().min(1).max(1000).default(200).openapi({
        description: "Replay at most this many in this call",
      }),
    }),
  },
  responses: {
    200: {
      description: "How many were queued again",
      content: { "application/json": { schema: ReplayedByType } },
    },
    ...problemResponses(400, 401, 403, 409, 415, 422, 429, 503),
  },
});

const purgeRoute = createRoute({
  method: "delete",
  path: "/v1/dlq/{id}",
  operationId: "purgeDeadTask",
  tags: ["operations"],
  summary: "Delete a dead task for good (admin)",
  security: [{ bearer: [] }],
  request: { params: IdParam },
  responses: {
    204: { description: "Deleted" },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});

/** The opaque `next_cursor`: base64url of `[score, ties, id]`. */
function encodeCursor(c: DeadCursor): string {
  return Buffer.from(JSON.stringify([c.score, c.ties, c.id])).toString("base64url");
}

function decodeCursor(text: string): DeadCursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    value = null;
  }
  if (Array.isArray(value) && value.length === 3) {
    const [score, ties, id] = value;
    if (
      Number.isSafeInteger(score) && score >= 0 && Number.isSafeInteger(ties) && ties >= 1 &&
      ties <= 100_000 && typeof id === "string" && ID.test(id)
    ) {
      return { score, ties, id };
    }
  }
  throw new RequestValidationError([{
    field: "query.cursor",
    message: "not a cursor this API returned; start again without one",
  }]);
}

function notDead(id: string): AppError {
  return new AppError("dead-task-not-found", 404, "No such task in the dead-letter queue", {
    details: { detail: `Task "${id}" is not in the dead-letter queue` },
  });
}

function detailView(t: TaskInfo) {
  return { ...taskView(t), payload: t.payload, priority: t.priority, replays: t.replays };
}

/** Routes of `/v1/dlq`. */
export function dlqRoutes(queue: TaskQueue): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(listRoute, async (c) => {
    const { type, limit, cursor } = c.req.valid("query");
    const page = await pageDead(queue, {
      type,
      limit,
      after: cursor === undefined ? undefined : decodeCursor(cursor),
    });
    return c.json({
      data: page.tasks.map(taskView),
      next_cursor: page.next === null ? null : encodeCursor(page.next),
      total: page.total,
    }, 200);
  });

  app.openapi(showRoute, async (c) => {
    const { id } = c.req.valid("param");
    const task = await getDead(queue, id);
    if (!task) throw notDead(id);
    return c.json(detailView(task), 200);
  });

  app.openapi(replayOneRoute, async (c) => {
    const { id } = c.req.valid("param");
    if ((await replayDead(queue, [id])).length === 0) throw notDead(id);
    c.get("log").warn("dead task replayed by operator", { task_id: id });
    const statusUrl = `/v1/tasks/${id}`;
    c.header("Location", statusUrl);
    c.set("idempotencyTaskId", id);
    return c.json({ task_id: id, status: "pending" as const, status_url: statusUrl }, 202);
  });

  app.openapi(replayTypeRoute, async (c) => {
    const { type, max } = c.req.valid("query");
    if (!Object.hasOwn(queue.catalog, type)) {
      const err = new UnknownTaskTypeError(type, Object.keys(queue.catalog));
      throw new RequestValidationError([{ field: "query.type", message: err.message }]);
    }
    const replayed = await replayDeadByType(queue, type, {
      perSecond: REPLAY_PER_SECOND,
      max,
      signal: c.req.raw.signal,
    });
    const remaining = await countDead(queue, type);
    c.get("log").warn("dead tasks replayed by operator", { task_type: type, replayed, remaining });
    return c.json({ type, replayed, remaining }, 200);
  });

  app.openapi(purgeRoute, async (c) => {
    const { id } = c.req.valid("param");
    if ((await purgeDead(queue, [id])).length === 0) throw notDead(id);
    c.get("log").warn("dead task purged by operator", { task_id: id });
    return c.body(null, 204);
  });

  return app;
}
