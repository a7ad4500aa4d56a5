import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { expireDead, getDead, listDead, pageDead } from "./dlq.ts";
import { startDlqExpiry } from "./dlq_expiry.ts";
import { claim, fail } from "./leases.ts";
import type { TaskQueue } from "./queue.ts";
import { testQueue } from "../../testing/queue.ts";

const DAY = 86_400_000;

/** Dead-letters `n` echo tasks (permanent failures); returns their ids. */
async function deadTasks(q: TaskQueue, n: number): Promise<string[]> {
  const ids = (await q.enqueueMany(
    Array.from({ length: n }, (_, i) => ({ type: "echo", payload: { n: i } })),
  )).map((r) => r.id);
  const { tasks } = await claim(q.ctx, { max: n, leaseMs: 30_000, workerId: "w" });
  await fail(
    q.ctx,
    tasks.map((t) => ({
      id: t.id,
      leaseToken: t.leaseToken,
      error: "Error: boom",
      permanent: true,
      backoffMs: 0,
    })),
  );
  return ids;
}

Deno.test("DLQ retention: listings hide expired entries and a schedule removes them", async (t) => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();

  await t.step("listings and lookups filter by age at the given clock", async () => {
    const q = testQueue(deps.redis);
    const ids = await deadTasks(q, 3);
    const soon = Date.now() + 6 * DAY;
    const later = Date.now() + 8 * DAY;
    assert.equal((await listDead(q, { now: soon })).total, 3);
    assert.equal((await pageDead(q, { now: soon })).tasks.length, 3);
    assert.ok(await getDead(q, ids[0]!, soon));

    const listed = await listDead(q, { now: later });
    assert.deepEqual([listed.tasks.length, listed.total], [0, 0]);
    const paged = await pageDead(q, { now: later, type: "echo" });
    assert.deepEqual([paged.tasks.length, paged.total], [0, 0]);
    assert.equal(await getDead(q, ids[0]!, later), null);
  });

  await t.step(
    "expireDead removes only entries past the retention, with their hashes",
    async () => {
      const q = testQueue(deps.redis);
      const ids = await deadTasks(q, 3);
      assert.equal(await expireDead(q, Date.now() + 6 * DAY), 0);
      assert.equal(await deps.redis.zcard(q.ctx.keys.dlq), 3);

      assert.equal(await expireDead(q, Date.now() + 8 * DAY), 3);
      assert.equal(await deps.redis.zcard(q.ctx.keys.dlq), 0);
      assert.equal(await deps.redis.zcard(q.ctx.keys.dlqByType("echo")), 0);
      for (const id of ids) assert.equal(await q.getTask(id), null);
      assert.equal(Number(await deps.redis.hget(q.ctx.keys.stats, "dlq_expired")), 3);
    },
  );

  await t.step("the sweeper expires entries on its schedule, with no new task dying", async () => {
    const q = testQueue(deps.redis);
    await deadTasks(q, 2);
    const sweeper = startDlqExpiry(q, { everyMs: 60_000, now: () => Date.now() + 8 * DAY });
    try {
      await sweeper.firstSweep;
      assert.equal(await deps.redis.zcard(q.ctx.keys.dlq), 0);
    } finally {
      await sweeper.stop();
    }
    assert.throws(() => startDlqExpiry(q, { everyMs: 0 }), RangeError);
  });
});
