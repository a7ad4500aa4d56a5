/**
 * Test support for queue suites: a queue in its own namespace (so tests share
 * one Redis without seeing each other) and a small catalog of test types.
 *
 * @module
 */
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { task, type TaskCatalog } from "../tasks/catalog.ts";
import { createQueue, type QueueSettings, type TaskQueue } from "./queue.ts";

/** Task types used by queue tests. */
export const TEST_CATALOG = {
  echo: task(z.object({ n: z.number().int(), text: z.string().optional() }).strict(), {
    timeoutMs: 2_000,
    backoff: { baseMs: 50, factor: 2, maxMs: 1_000, jitter: 0 },
  }),
  loose: task(z.object({ data: z.any() }), { maxAttempts: 2 }),
  slow: task(z.object({ ms: z.number().int() }), { timeoutMs: 200, maxAttempts: 1 }),
} satisfies TaskCatalog;

/** A queue on `redis` in a fresh namespace. */
export function testQueue(
  redis: Redis,
  settings: Partial<QueueSettings> = {},
  catalog: TaskCatalog = TEST_CATALOG,
): TaskQueue {
  return createQueue(redis, catalog, {
    namespace: `t${crypto.randomUUID().slice(0, 8)}`,
    ...settings,
  });
}

/** Keys of the queue's namespace (to prove that nothing was written). */
export async function namespaceKeys(q: TaskQueue): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await q.ctx.redis.scan(cursor, {
      match: `${q.ctx.keys.prefix}*`,
      count: 1000,
    });
    cursor = String(next);
    keys.push(...batch);
  } while (cursor !== "0");
  return keys.sort();
}
