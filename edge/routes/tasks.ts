/**
 * `POST /v1/tasks` (enqueue a catalog task; Idempotency-Key required) and
 * `GET /v1/tasks/:id`.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { PRIORITIES } from "../../shared/redis/keys.ts";
import { TaskValidationError, UnknownTaskTypeError } from "../../shared/queue/errors.ts";
import type { TaskInfo, TaskQueue } from "../../shared/queue/queue.ts";
import { AppError } from "../../shared/errors.ts";
import type { AppEnv } from "../app.ts";
import { RequestValidationError, validationHook } from "../validation.ts";
import { problemResponses } from "./schemas.ts";

const EnqueueBody = z.object({
  type: z.string().min(1).max(100).openapi({ example: "noop" }),
  payload: z.record(z.string(), z.unknown()).openapi({ example: { echo: "hello" } }),
  priority: z.enum(PRIORITIES).optional(),
  delay_ms: z.number().int().min(0).max(30 * 86_400_000).optional(),
  run_at: z.iso.datetime({ offset: true }).optional(),
  max_attempts: z.number().int().min(1).max(100).optional(),
  timeout_ms: z.number().int().min(1).max(3_600_000).optional(),
}).strict().openapi("EnqueueTaskRequest");

/** The fields of a task as the API shows it (also the base of the DLQ views). */
export const TASK_FIELDS = {
  id: z.uuid(),
  type: z.string(),
  status: z.enum(["pending", "running", "retrying", "succeeded", "dead"]),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  created_at: z.string(),
  updated_at: z.string(),
  run_at: z.string().nullable(),
  finished_at: z.string().nullable(),
  failed_at: z.string().nullable(),
  last_error: z.string().nullable(),
  dlq_reason: z.string().nullable(),
  result: z.unknown(),
};

const TaskSchema = z.object(TASK_FIELDS).openapi("Task");

const Accepted = z.object({
  task_id: z.uuid(),
  status: z.string(),
  status_url: z.string(),
  created: z.boolean().openapi({
    description: "false when an identical request already created it",
  }),
}).openapi("TaskAccepted");

const IdempotencyHeader = z.object({
  "idempotency-key": z.string().min(1).max(255).openapi({
    description: "Required: makes retries safe (Stripe semantics)",
    example: "0f1e6a3c-retry-safe",
  }),
});

const enqueueRoute = createRoute({
  method: "post",
  path: "/v1/tasks",
  tags: ["tasks"],
  summary: "Enqueue a task",
  security: [{ bearer: [] }],
  request: {
    headers: IdempotencyHeader,
    body: { required: true, content: { "application/json": { schema: EnqueueBody } } },
  },
  responses: {
    202: { description: "Queued", content: { "application/json": { schema: Accepted } } },
    ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/v1/tasks/{id}",
  tags: ["tasks"],
  summary: "A task's status",
  security: [{ bearer: [] }],
  request: { params: z.object({ id: z.uuid() }) },
  responses: {
    200: { description: "The task", content: { "application/json": { schema: TaskSchema } } },
    ...problemResponses(400, 401, 403, 404, 429),
  },
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The public view of a task. */
export function taskView(t: TaskInfo) {
  return {
    id: t.id,
    type: t.type,
    status: t.status,
    attempts: t.attempts,
    max_attempts: t.maxAttempts,
    created_at: iso(t.createdAt)!,
    updated_at: iso(t.updatedAt)!,
    run_at: iso(t.runAt),
    finished_at: iso(t.finishedAt),
    failed_at: iso(t.failedAt),
    last_error: t.lastError,
    dlq_reason: t.dlqReason,
    result: t.result,
  };
}

/** Routes of `/v1/tasks`. */
export function taskRoutes(queue: TaskQueue): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(enqueueRoute, async (c) => {
    const body = c.req.valid("json");
    const key = c.req.valid("header")["idempotency-key"];
    const principal = c.get("principal");
    let result;
    try {
      result = await queue.enqueue(body.type, body.payload, {
        priority: body.priority,
        delayMs: body.delay_ms,
        runAt: body.run_at === undefined ? undefined : Date.parse(body.run_at),
        maxAttempts: body.max_attempts,
        timeoutMs: body.timeout_ms,
        // The HTTP key defines the task's identity, scoped by caller, so two
        // clients cannot collide and one client's retries map to one task.
        idempotencyKey: `http:${principal.sub}:${key}`.slice(0, 200).replace(/[^\x21-\x7e]/g, "_"),
      });
    } catch (err) {
      if (err instanceof UnknownTaskTypeError) {
        throw new RequestValidationError([{ field: "body.type", message: err.message }]);
      }
      if (err instanceof TaskValidationError) {
        throw new RequestValidationError(
          err.fields.map((f) => ({
            field: ["body.payload", f.path].filter(Boolean).join("."),
            message: f.message,
          })),
        );
      }
      throw err;
    }
    const statusUrl = `/v1/tasks/${result.id}`;
    c.header("Location", statusUrl);
    return c.json({
      task_id: result.id,
      status: "queued",
      status_url: statusUrl,
      created: result.created,
    }, 202);
  });

  app.openapi(getRoute, async (c) => {
    const task = await queue.getTask(c.req.valid("param").id);
    if (!task) throw new AppError("task-not-found", 404, "No such task");
    return c.json(taskView(task), 200);
  });

  return app;
}
