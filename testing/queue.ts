/**
 * Queue fixtures: a queue in its own namespace (so tests share one Redis
 * without seeing each other), a small catalog of test types, and helpers that
 * read or drop a namespace and wait for tasks.
 *
 * @module
 */
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { task, type TaskCatalog } from "../shared/tasks/catalog.ts";
import {
  createQueue,
  type QueueSettings,
  type TaskInfo,
  type TaskQueue,
} from "../shared/queue/queue.ts";
import { testNamespace } from "./namespace.ts";
import type { TcpScriptTransport } from "../shared/redis/tcp_scripts.ts";
import { waitForValue, type WaitOptions } from "./wait.ts";

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
  tcp?: TcpScriptTransport,
): TaskQueue {
  return createQueue(redis, catalog, {
    namespace: testNamespace(),
    ...settings,
  }, tcp);
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

/** Deletes every key of the queue's namespace. */
export async function dropNamespace(queue: TaskQueue): Promise<void> {
  const redis = queue.ctx.redis;
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, {
      match: `${queue.ctx.keys.prefix}*`,
      count: 1000,
    });
    cursor = String(next);
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}

/** `getTask` for many ids, 500 at a time (each batch is one auto-pipelined request). */
export async function getTasks(queue: TaskQueue, ids: string[]): Promise<(TaskInfo | null)[]> {
  const out: (TaskInfo | null)[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    out.push(...await Promise.all(ids.slice(i, i + 500).map((id) => queue.getTask(id))));
  }
  return out;
}

/**
 * Waits until every task in `ids` exists and satisfies `done`, and returns
 * them; the timeout error lists each task's status and last error.
 */
export function waitForTasks(
  q: TaskQueue,
  ids: string[],
  done: (t: TaskInfo) => boolean,
  options: WaitOptions = {},
): Promise<TaskInfo[]> {
  let last: (TaskInfo | null)[] = [];
  return waitForValue(async () => {
    last = await getTasks(q, ids);
    return last.every((t) => t && done(t)) ? last as TaskInfo[] : undefined;
  }, {
    what: `${ids.length} tasks`,
    detail: () => JSON.stringify(last.map((t) => [t?.status, t?.lastError])),
    ...options,
  });
}

/** Waits until every task ran at least once and recorded an error, and returns them. */
export function failedOnce(q: TaskQueue, ids: string[]): Promise<TaskInfo[]> {
  return waitForTasks(q, ids, (t) => t.attempts >= 1 && !!t.lastError, {
    timeoutMs: 30_000,
    everyMs: 50,
    what: `${ids.length} tasks to fail once`,
  });
}
