/**
 * Queue depth in ONE Redis round trip whatever the depth: LLEN of each ready
 * list, ZCARD of the delayed, lease and dead-letter sets, and ZCARD of the
 * per-type DLQ index of every catalog type, sent as one pipeline. The number
 * of commands grows with the catalog (a fixed list), never with the queue.
 *
 * @module
 */
import { PRIORITIES, type Priority } from "../redis/keys.ts";
import type { TaskQueue } from "../queue/queue.ts";
import type { Metrics } from "./metrics.ts";

/** The queue's size by state, as `GET /v1/queue` returns it. */
export interface QueueDepth {
  ready: Record<Priority, number>;
  /** Waiting for their run time (scheduled tasks and retries in backoff). */
  delayed: number;
  /** Claimed and leased by a worker. */
  running: number;
  /** In the dead-letter queue. */
  dead: number;
  /** Dead-letter entries per task type (every catalog type, zeros included). */
  deadByType: Record<string, number>;
}

/** Reads {@linkcode QueueDepth} with one pipelined request. */
export async function readQueueDepth(queue: TaskQueue): Promise<QueueDepth> {
  const { redis, keys, catalog } = queue.ctx;
  const types = Object.keys(catalog).sort();
  const p = redis.pipeline();
  for (const priority of PRIORITIES) p.llen(keys.ready(priority));
  p.zcard(keys.delayed).zcard(keys.leases).zcard(keys.dlq);
  for (const type of types) p.zcard(keys.dlqByType(type));
  const out = (await p.exec()).map(Number);
  const ready = Object.fromEntries(PRIORITIES.map((pr, i) => [pr, out[i] ?? 0])) as Record<
    Priority,
    number
  >;
  const n = PRIORITIES.length;
  return {
    ready,
    delayed: out[n] ?? 0,
    running: out[n + 1] ?? 0,
    dead: out[n + 2] ?? 0,
    deadByType: Object.fromEntries(types.map((t, i) => [t, out[n + 3 + i] ?? 0])),
  };
}

/**
 * Fills `task_queue_size` and `task_dlq_size` at every scrape. A Redis failure
 * leaves the previous values, counts `store_errors_total{store="redis",
 * component="queue_depth"}` and keeps the scrape alive.
 */
export function collectQueueDepth(metrics: Metrics, queue: TaskQueue): void {
  metrics.collectors.push(async () => {
    let depth: QueueDepth;
    try {
      depth = await readQueueDepth(queue);
    } catch (err) {
      metrics.storeErrors.inc({ store: "redis", component: "queue_depth" });
      throw err;
    }
    for (const priority of PRIORITIES) {
      metrics.queueSize.set({ priority, state: "ready" }, depth.ready[priority]);
    }
    metrics.queueSize.set({ state: "delayed" }, depth.delayed);
    metrics.queueSize.set({ state: "running" }, depth.running);
    metrics.queueSize.set({ state: "dead" }, depth.dead);
    for (const [type, size] of Object.entries(depth.deadByType)) {
      metrics.dlqSize.set({ type }, size);
    }
  });
}
