/**
 * Stored tasks across script versions (docs/queue.md, "Stored tasks across
 * versions"): a finished task's lease token is blanked, not deleted, and the
 * lease's expiry lives only in the leases set. These tests pin what that
 * must keep: a blank token fences nothing, tasks claimed by the previous
 * scripts (hashes with `lease_expires`) are acked by the current ones, and a
 * batch enqueue still dedupes and keeps FIFO order per priority.
 */
import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { testQueue } from "../../testing/queue.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { ack, claim, extendLeases, fail, release } from "./leases.ts";

Deno.test({
  name: "stored tasks across script versions",
  ...noSanitizers,
  async fn(t) {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();

    await t.step("an acked task's token is blank and fences every later call", async () => {
      const q = testQueue(redis);
      const { id } = await q.enqueue("echo", { n: 1 });
      const [task] = (await claim(q.ctx, { max: 1, leaseMs: 30_000, workerId: "w" })).tasks;
      assert.deepEqual(await ack(q.ctx, [{ id, leaseToken: task!.leaseToken, resultJson: "1" }]), [
        1,
      ]);
      const stored = await redis.hmget(q.ctx.keys.task(id), "lease_token", "lease_expires");
      assert.deepEqual(Object.values(stored ?? {}), ["", null]);
      const again = [{ id, leaseToken: task!.leaseToken }, { id, leaseToken: "" }];
      assert.deepEqual(await ack(q.ctx, again.map((e) => ({ ...e, resultJson: "2" }))), [-1, -1]);
      const failure = { error: "late", permanent: false, backoffMs: 10 };
      assert.deepEqual(await fail(q.ctx, again.map((e) => ({ ...e, ...failure }))), [-1, -1]);
      assert.deepEqual(await release(q.ctx, again), [-1, -1]);
      assert.deepEqual(await extendLeases(q.ctx, again, 30_000), [-1, -1]);
      const info = await q.getTask(id);
      assert.equal(info?.status, "succeeded");
      assert.equal(info?.result, 1);
      assert.equal((await q.stats()).succeeded, 1);
      assert.equal(await redis.zcard(q.ctx.keys.leases), 0);
    });

    await t.step("a task claimed by the previous claim script is acked by this one", async () => {
      const q = testQueue(redis);
      const { id } = await q.enqueue("echo", { n: 2 });
      // What the previous claim.lua left: the token AND the expiry in the hash.
      const token = "previous-version:1";
      const expires = Date.now() + 30_000;
      await redis.lpop(q.ctx.keys.ready("normal"));
      await redis.hset(q.ctx.keys.task(id), {
        status: "running",
        attempts: 1,
        lease_token: token,
        lease_expires: expires,
        started_at: Date.now(),
      });
      await redis.zadd(q.ctx.keys.leases, { score: expires, member: id });
      assert.deepEqual(await extendLeases(q.ctx, [{ id, leaseToken: token }], 30_000), [1]);
      assert.deepEqual(await ack(q.ctx, [{ id, leaseToken: token, resultJson: "null" }]), [1]);
      assert.equal((await q.getTask(id))?.status, "succeeded");
      assert.equal(await redis.zcard(q.ctx.keys.leases), 0);
    });

    await t.step(
      "one enqueue call dedupes within its batch and keeps FIFO per priority",
      async () => {
        const q = testQueue(redis);
        const out = await q.enqueueMany([
          { type: "echo", payload: { n: 1 } },
          { type: "echo", payload: { n: 2 }, options: { priority: "high" } },
          { type: "echo", payload: { n: 1 } },
          { type: "echo", payload: { n: 3 } },
          { type: "echo", payload: { n: 4 }, options: { priority: "high", delayMs: 60_000 } },
        ]);
        assert.deepEqual(out.map((r) => r.created), [true, true, false, true, true]);
        assert.equal(out[2]!.id, out[0]!.id);
        const { tasks } = await claim(q.ctx, { max: 10, leaseMs: 30_000, workerId: "w" });
        assert.deepEqual(tasks.map((x) => x.id), [out[1]!.id, out[0]!.id, out[3]!.id]);
        assert.equal(await redis.zcard(q.ctx.keys.delayed), 1);
        assert.equal((await q.stats()).enqueued, 4);
      },
    );
  },
});
