/**
 * Queue depth for humans and consoles (admin and operator, see
 * edge/auth/policy.ts): `GET /v1/queue` answers ready tasks per priority,
 * delayed, running and dead counts, DLQ size per type and the queue's
 * lifetime counters. Read in one pipelined Redis request whatever the depth
 * (shared/metrics/queue_depth.ts), so polling it is cheap.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { DependencyUnavailableError } from "../../shared/errors.ts";
import { type QueueDepth, readQueueDepth } from "../../shared/metrics/queue_depth.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { problemResponses } from "./schemas.ts";

const count = z.number().int().min(0);

const QueueSchema = z.object({
  ready: z.object({ high: count, normal: count, low: count }),
  delayed: count.openapi({ description: "Waiting for their run time (scheduled, retry backoff)" }),
  running: count.openapi({ description: "Claimed by a worker, lease held" }),
  dead: count.openapi({ description: "In the dead-letter queue" }),
  dead_by_type: z.record(z.string(), count).openapi({
    description: "Dead-letter entries per task type (every catalog type)",
  }),
  counters: z.record(z.string(), z.number()).openapi({
    description: "Lifetime counters kept in Redis (enqueued, succeeded, retried, dead, …)",
  }),
}).openapi("QueueDepth");

const getRoute = createRoute({
  method: "get",
  path: "/v1/queue",
  operationId: "getQueueDepth",
  tags: ["operations"],
  summary: "Queue depth by state and priority, DLQ size per type (admin, operator)",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "The queue's depth",
      content: { "application/json": { schema: QueueSchema } },
    },
    ...problemResponses(401, 403, 429, 503),
  },
});

function view(depth: QueueDepth, counters: Record<string, number>) {
  return {
    ready: depth.ready,
    delayed: depth.delayed,
    running: depth.running,
    dead: depth.dead,
    dead_by_type: depth.deadByType,
    counters,
  };
}

/** Routes of `/v1/queue`. */
export function queueRoutes(queue: TaskQueue): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(getRoute, async (c) => {
    try {
      const [depth, counters] = await Promise.all([readQueueDepth(queue), queue.stats()]);
      return c.json(view(depth, counters), 200);
    } catch (err) {
      throw new DependencyUnavailableError("Cannot read the queue's depth from Redis", {
        cause: err,
      });
    }
  });
  return app;
}
