/**
 * `POST /v1/tasks` (enqueue a PUBLIC catalog task the caller's policy allows;
 * Idempotency-Key required) and `GET /v1/tasks/:id`; the listing and the
 * type catalog (`GET /v1/tasks`, `GET /v1/tasks/types`) are in task_listing.ts.
 *
 * Internal task types (`forward_request.*`, `apply_lead_write`, the analytics
 * maintenance, the outreach tasks…) are refused with 422
 * `task-type-not-public`: they are enqueued only by the code that owns them,
 * after that code's own checks (docs/security.md). A task's `result`,
 * `last_error` and `dlq_reason` are shown only to the principal that enqueued
 * it and to admins; others see its status.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { PRIORITIES } from "../../shared/redis/keys.ts";
import { publicTaskTypes, TASK_CATALOG, validateCatalog } from "../../shared/tasks/catalog.ts";
import { TaskValidationError, UnknownTaskTypeError } from "../../shared/queue/errors.ts";
import {
  enqueueCall,
  type PreparedTask,
  prepareTask,
  type TaskInfo,
  type TaskQueue,
} from "../../shared/queue/queue.ts";
import type { Context } from "hono";
import { AppError } from "../../shared/errors.ts";
import type { AppEnv } from "../app_env.ts";
import type { Authorizer } from "../auth/policy.ts";
import type { Principal } from "../auth/principal.ts";
import { RequestValidationError, validationHook } from "../validation.ts";
import { problemResponses } from "./schemas.ts";
import { taskListingRoutes } from "./task_listing.ts";

const EnqueueBody = z.object({
  // Checked against the queue's catalog by the handler (422 for an internal
  // type, 403 for one the caller's policy denies); the document lists only
  // the public types.
  type: z.string().min(1).max(100).openapi({
    example: "noop",
    enum: publicTaskTypes(TASK_CATALOG),
  }),
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
  operationId: "enqueueTask",
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
  operationId: "getTask",
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

/** Whether `principal` may see what `t` produced (its result and errors). */
export function seesTaskOutcome(t: Pick<TaskInfo, "principal">, principal: Principal): boolean {
  return principal.roles.includes("admin") ||
    (t.principal !== null && t.principal === principal.sub);
}

/** The view of a task for `principal`: outcome fields are null unless it may see them. */
export function taskViewFor(t: TaskInfo, principal: Principal) {
  const view = taskView(t);
  if (seesTaskOutcome(t, principal)) return view;
  return { ...view, last_error: null, dlq_reason: null, result: null };
}

/** The full view of a task (admins' views, e.g. the DLQ). */
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

/**
 * Refuses what the generic route must not enqueue: an unknown or internal
 * type (422), or a public type whose permission the policy denies the
 * caller (403).
 */
function checkEnqueueable(
  queue: TaskQueue,
  decide: Authorizer,
  type: string,
  principal: Principal,
): void {
  const catalog = queue.catalog;
  const def = Object.hasOwn(catalog, type) ? catalog[type] : undefined;
  if (def === undefined) throw new UnknownTaskTypeError(type, publicTaskTypes(catalog));
  if (def.public !== true || def.permission === undefined) {
    throw new AppError("task-type-not-public", 422, "Task type cannot be enqueued here", {
      details: {
        detail: `"${type}" is an internal task type; POST /v1/tasks accepts ${
          publicTaskTypes(catalog).join(", ")
        }`,
      },
    });
  }
  const { method, path } = def.permission;
  if (!decide(principal, method, path).allowed) {
    throw new AppError("task-type-forbidden", 403, "Forbidden", {
      details: { detail: `The caller may not enqueue "${type}" (it needs ${method} ${path})` },
    });
  }
}

/** The queue's typed refusals as the API's 400 listing each field. */
function asRequestError(err: unknown): unknown {
  if (err instanceof UnknownTaskTypeError) {
    return new RequestValidationError([{ field: "body.type", message: err.message }]);
  }
  if (err instanceof TaskValidationError) {
    return new RequestValidationError(
      err.fields.map((f) => ({
        field: ["body.payload", f.path].filter(Boolean).join("."),
        message: f.message,
      })),
    );
  }
  return err;
}

/** The 202 of a queued task: its status URL (also `Location`) and the JSON body. */
function acceptedAnswer(taskId: string, created: boolean): { location: string; body: string } {
  const location = `/v1/tasks/${taskId}`;
  return {
    location,
    body: JSON.stringify({ task_id: taskId, status: "queued", status_url: location, created }),
  };
}

function answer(c: Context<AppEnv>, a: { location: string; body: string }) {
  return c.body(a.body, 202, { "Content-Type": "application/json", Location: a.location });
}

/** The 202 of a queued task, named for the idempotency middleware (a replay reports its state). */
function accepted(c: Context<AppEnv>, taskId: string, created: boolean) {
  c.set("idempotencyTaskId", taskId);
  return answer(c, acceptedAnswer(taskId, created));
}

/** Routes of `/v1/tasks`; `decide` is the gateway's access policy. */
export function taskRoutes(queue: TaskQueue, decide: Authorizer): OpenAPIHono<AppEnv> {
  validateCatalog(queue.catalog);
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(enqueueRoute, async (c) => {
    const body = c.req.valid("json");
    const key = c.req.valid("header")["idempotency-key"];
    const principal = c.get("principal");
    const item = {
      type: body.type,
      payload: body.payload,
      options: {
        priority: body.priority,
        delayMs: body.delay_ms,
        runAt: body.run_at === undefined ? undefined : Date.parse(body.run_at),
        maxAttempts: body.max_attempts,
        timeoutMs: body.timeout_ms,
        // The HTTP key defines the task's identity, scoped by caller, so two
        // clients cannot collide and one client's retries map to one task.
        idempotencyKey: `http:${principal.sub}:${key}`.slice(0, 200).replace(/[^\x21-\x7e]/g, "_"),
        principal: principal.sub,
      },
    };
    const record = c.get("idempotencyRecord");
    let task: PreparedTask;
    try {
      checkEnqueueable(queue, decide, body.type, principal);
      task = await prepareTask(queue.ctx, item);
    } catch (err) {
      throw asRequestError(err);
    }
    if (record === undefined) {
      // Without the middleware's record (an app that mounts no Idempotency-Key stage).
      const [result] = await queue.enqueueMany([item]);
      return accepted(c, result!.id, result!.created) as never;
    }
    // The claim, the enqueue and the stored 202 are one script (enqueue_keyed.lua).
    const first = acceptedAnswer(task.id, true);
    const out = await record.enqueue(enqueueCall(queue.ctx, [task]), {
      status: 202,
      headers: [["content-type", "application/json"], ["location", first.location]],
      body: new TextEncoder().encode(first.body),
    });
    if (out.kind === "stored") return answer(c, first) as never;
    // The queue's key named an older task: the middleware stores this answer as usual.
    if (out.kind === "claimed") return accepted(c, out.taskId, false) as never;
    return await record.answer(out) as never;
  });

  // Before `/v1/tasks/{id}`: `/v1/tasks/types` is not a task id.
  app.route("/", taskListingRoutes(queue, decide));

  app.openapi(getRoute, async (c) => {
    const task = await queue.getTask(c.req.valid("param").id);
    if (!task) throw new AppError("task-not-found", 404, "No such task");
    return c.json(taskViewFor(task, c.get("principal")), 200);
  });

  return app;
}
