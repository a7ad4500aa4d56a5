import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { claim } from "./leases.ts";
import { listTasks, type TaskCursor, TYPE_FILTER_BUDGET } from "./task_index.ts";
import { namespaceKeys, testQueue } from "../../testing/queue.ts";
import type { TaskQueue } from "./queue.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

const opts = noSanitizers;

/** Every id of a listing, following its cursors `limit` at a time. */
async function walk(
  q: TaskQueue,
  options: Omit<Parameters<typeof listTasks>[1], "after">,
  start?: TaskCursor,
): Promise<string[]> {
  const ids: string[] = [];
  let after = start;
  do {
    const page = await listTasks(q, { ...options, after });
    ids.push(...page.tasks.map((t) => t.id));
    after = page.next ?? undefined;
  } while (after !== undefined);
  return ids;
}

Deno.test({
  name:
    "listTasks pages a batch of equal scores (one claim's leases) without repeats or gaps, and writes nothing",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const q = testQueue(redis);
    const ids = [];
    for (let n = 0; n < 7; n++) ids.push((await q.enqueue("echo", { n })).id);
    // One claim: all seven leases share one expiry, i.e. one score.
    await claim(q.ctx, { max: 7, leaseMs: 60_000, workerId: "w" });
    const before = await namespaceKeys(q);
    const whole = await listTasks(q, { state: "running", limit: 100 });
    assert.equal(whole.tasks.length, 7);
    assert.equal(whole.total, 7);
    assert.equal(whole.next, null);
    const paged = await walk(q, { state: "running", limit: 2 });
    assert.deepEqual(paged, whole.tasks.map((t) => t.id));
    assert.deepEqual(new Set(paged), new Set(ids));
    assert.deepEqual(await namespaceKeys(q), before, "a read changes nothing");
  },
});

Deno.test({
  name:
    "listTasks resumes at the cursor's score when its entry left the set, skipping what was already listed",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const q = testQueue(redis);
    for (let n = 0; n < 6; n++) await q.enqueue("echo", { n });
    await claim(q.ctx, { max: 6, leaseMs: 60_000, workerId: "w" });
    const all = (await listTasks(q, { state: "running", limit: 100 })).tasks.map((t) => t.id);
    const first = await listTasks(q, { state: "running", limit: 2 });
    assert.deepEqual(first.tasks.map((t) => t.id), all.slice(0, 2));
    // The cursor's own entry leaves the leases (acked, say) before the next page.
    await redis.zrem(q.ctx.keys.leases, first.next!.id);
    const rest = await walk(q, { state: "running", limit: 2 }, first.next!);
    assert.deepEqual(rest, all.slice(2));
  },
});

Deno.test({
  name:
    "listTasks with a type filter inspects a bounded window per page and still reaches every match",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const q = testQueue(redis);
    const wanted = (await q.enqueue("loose", { data: "old" })).id;
    // More other-type entries than one page may inspect, newer than the match.
    await q.enqueueMany(
      Array.from({ length: TYPE_FILTER_BUDGET + 5 }, (_, n) => ({ type: "echo", payload: { n } })),
    );
    const newest = (await q.enqueue("loose", { data: "new" })).id;
    const first = await listTasks(q, { state: "ready", type: "loose", limit: 10 });
    assert.deepEqual(first.tasks.map((t) => t.id), [newest]);
    assert.equal(first.total, null);
    assert.ok(first.next, "the budget ran out before the list did");
    const second = await listTasks(q, {
      state: "ready",
      type: "loose",
      limit: 10,
      after: first.next,
    });
    assert.deepEqual(second.tasks.map((t) => t.id), [wanted]);
    assert.equal(second.next, null);
  },
});
