/**
 * Helpers of the breaker call-site suites (workers/breaker_sites*_test.ts).
 *
 * @module
 */
import { waitUntil } from "../shared/breakers/test_support.ts";
import type { TaskInfo, TaskQueue } from "../shared/queue/queue.ts";

/** A loopback port nobody listens on: bound, read, released. */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Waits until every task ran at least once and recorded an error, and returns them. */
export async function failedOnce(q: TaskQueue, ids: string[]): Promise<TaskInfo[]> {
  const read = async () => (await Promise.all(ids.map((id) => q.getTask(id)))) as TaskInfo[];
  await waitUntil(async () => (await read()).every((t) => t.attempts >= 1 && t.lastError), {
    timeoutMs: 30_000,
    everyMs: 50,
    what: `${ids.length} tasks to fail once`,
  });
  return await read();
}
