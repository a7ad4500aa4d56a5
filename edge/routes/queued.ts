/**
 * The 202 hand-off shared by the routes that turn a request into ONE catalog
 * task (outreach emails, appointments, scrape jobs, lead imports): the
 * response schema, the body with `Location`, and the enqueue call that maps
 * the queue's payload limit to a 413 the client can act on.
 *
 * @module
 */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../app_env.ts";
import { AppError } from "../../shared/errors.ts";
import type { EnqueueOptions, EnqueueResult, TaskQueue } from "../../shared/queue/queue.ts";

/** What a 202 hand-off answers. */
export const QueuedTaskSchema = z.object({
  task_id: z.uuid(),
  status: z.literal("queued"),
  status_url: z.string().openapi({ example: "/v1/tasks/5b0c3f9e-7d1c-4a8e-9d55-0f3c2a1b9e77" }),
  created: z.boolean().openapi({
    description: "false when an identical request already queued this task (the first task's id)",
  }),
}).openapi("QueuedTask");

/** The OpenAPI 202 response of a hand-off route. */
export function queuedResponse(description: string) {
  return {
    202: { description, content: { "application/json": { schema: QueuedTaskSchema } } },
  };
}

/** One task to enqueue. */
export interface QueuedItem {
  type: string;
  payload: unknown;
  /** The caller's `sub`: recorded on the task, which only it and admins may read the outcome of. */
  principal: string;
  options?: Omit<EnqueueOptions, "principal">;
}

/**
 * Enqueues `item`. A payload above the queue's limit (`QUEUE_MAX_PAYLOAD_BYTES`)
 * is the caller's oversized request, so it becomes 413 `payload-too-large`
 * naming the limit, like the gateway's body limit. Other queue errors are
 * AppErrors already (422 for a payload the catalog refuses).
 */
export async function enqueueTask(queue: TaskQueue, item: QueuedItem): Promise<EnqueueResult> {
  try {
    return await queue.enqueue(item.type, item.payload, {
      ...item.options,
      principal: item.principal,
    });
  } catch (err) {
    if ((err as Error | undefined)?.name !== "PayloadTooLargeError") throw err;
    const limit = queue.settings.maxPayloadBytes;
    const bytes = (err as AppError).details?.bytes;
    throw new AppError("payload-too-large", 413, "Request too large to queue", {
      cause: err,
      details: {
        detail: `The ${item.type} task would be ${
          typeof bytes === "number" ? `${bytes} bytes` : "larger than the limit"
        }; the queue accepts at most ${limit} bytes per task`,
        limit,
      },
    });
  }
}

/** The 202 body for `result`; sets `Location` to the task's status URL. */
export function queuedBody(c: Context, result: EnqueueResult): z.infer<typeof QueuedTaskSchema> {
  const statusUrl = `/v1/tasks/${result.id}`;
  c.header("Location", statusUrl);
  // The idempotency replay follows this task; it never trusts a body's task_id.
  (c as Context<AppEnv>).set("idempotencyTaskId", result.id);
  return {
    task_id: result.id,
    status: "queued",
    status_url: statusUrl,
    created: result.created,
  };
}
