import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { backoffDelay, DEFAULT_BACKOFF } from "../tasks/catalog.ts";
import {
  countDead,
  listDead,
  purgeAllDead,
  purgeDead,
  replayDead,
  replayDeadByType,
} from "./dlq.ts";
import { ack, claim, extendLeases, fail, release } from "./leases.ts";
import type { TaskQueue } from "./queue.ts";
import { testQueue } from "../../testing/queue.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The stack holds a Neon Pool (deps), whose socket ops outlive each test.
const opts = noSanitizers;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function claimer(q: TaskQueue, workerId = "w1", leaseMs = 30_000) {
  return (max: number) => claim(q.ctx, { max, leaseMs, workerId });
}

Deno.test("backoffDelay() doubles from 2 s by default, within the jitter band, capped", () => {
  const mid = () => 0.5;
  assert.deepEqual([1, 2, 3, 4].map((a) => backoffDelay(DEFAULT_BACKOFF, a, mid)), [
    2000,
    4000,
    8000,
    16000,
  ]);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 1, () => 0), 1600);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 1, () => 0.999999), 2400);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 40, mid), 3_600_000);
});

Deno.test({
  name: "claim, ack, fail, leases and the DLQ",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();

    await t.step("claims in strict priority order, FIFO within a priority", async () => {
      const q = testQueue(redis);
      const low = await q.enqueue("echo", { n: 1 }, { priority: "low" });
      const n1 = await q.enqueue("echo", { n: 2 });
      const high = await q.enqueue("echo", { n: 3 }, { priority: "high" });
      const n2 = await q.enqueue("echo", { n: 4 });
      const { tasks } = await claimer(q)(3);
      assert.deepEqual(tasks.map((x) => x.id), [high.id, n1.id, n2.id]);
      assert.deepEqual((await claimer(q)(10)).tasks.map((x) => x.id), [low.id]);
      assert.equal((await q.getTask(high.id))?.status, "running");
      assert.equal(tasks[0]!.attempt, 1);
      assert.notEqual(tasks[0]!.leaseToken, tasks[1]!.leaseToken);
    });

    await t.step("a delayed task is promoted at its due time, not before", async () => {
      const q = testQueue(redis);
      const { id } = await q.enqueue("echo", { n: 1 }, { delayMs: 300 });
      const early = await claimer(q)(5);
      assert.deepEqual(early.tasks, []);
      assert.ok(early.nextDueAt !== null);
      const info = await q.getTask(id);
      assert.equal(info!.runAt! - info!.createdAt, 300);
      await sleep(320);
      assert.deepEqual((await claimer(q)(5)).tasks.map((x) => x.id), [id]);
      const runAt = Date.now() + 60_000;
      const later = await q.enqueue("echo", { n: 2 }, { runAt: new Date(runAt) });
      assert.equal((await q.getTask(later.id))!.runAt, runAt);
    });

    await t.step("ack completes, keeps the result and lets the task expire", async () => {
      const q = testQueue(redis, { keepFinishedMs: 60_000 });
      const { id } = await q.enqueue("echo", { n: 1 });
      const [task] = (await claimer(q)(1)).tasks;
      assert.deepEqual(
        await ack(q.ctx, [{ id, leaseToken: task!.leaseToken, resultJson: '{"ok":true}' }]),
        [1],
      );
      const info = await q.getTask(id);
      assert.equal(info?.status, "succeeded");
      assert.deepEqual(info?.result, { ok: true });
      const ttl = await redis.pttl(q.ctx.keys.task(id));
      assert.ok(ttl > 50_000 && ttl <= 60_000, `pttl ${ttl}`);
      assert.equal(await redis.zcard(q.ctx.keys.leases), 0);
    });

    await t.step("a retriable failure waits its backoff in the delayed set", async () => {
      const q = testQueue(redis);
      const { id } = await q.enqueue("echo", { n: 1 });
      const [task] = (await claimer(q)(1)).tasks;
      const codes = await fail(q.ctx, [{
        id,
        leaseToken: task!.leaseToken,
        error: "Error: boom",
        permanent: false,
        backoffMs: 200,
      }]);
      assert.deepEqual(codes, [1]);
      const info = await q.getTask(id);
      assert.equal(info?.status, "retrying");
      assert.equal(info?.lastError, "Error: boom");
      assert.equal(info!.runAt! - (await redis.zscore(q.ctx.keys.delayed, id))!, 0);
      assert.deepEqual((await claimer(q)(1)).tasks, []);
      await sleep(220);
      const [again] = (await claimer(q)(1)).tasks;
      assert.equal(again?.id, id);
      assert.equal(again?.attempt, 2);
    });

    await t.step("a breaker refusal gives the attempt back and never dead-letters", async () => {
      const q = testQueue(redis);
      const { id } = await q.enqueue("echo", { n: 1 }, { maxAttempts: 1 });
      for (let round = 0; round < 3; round++) {
        const [task] = (await claimer(q)(1)).tasks;
        assert.equal(task?.id, id);
        assert.equal(task?.attempt, 1, "refusals do not count as attempts");
        const codes = await fail(q.ctx, [{
          id,
          leaseToken: task!.leaseToken,
          error: 'BreakerOpenError: Circuit breaker "email" is half_open',
          permanent: false,
          backoffMs: 20,
          refused: true,
        }]);
        assert.deepEqual(codes, [1], "retried, although max_attempts is 1");
        assert.equal((await q.getTask(id))?.status, "retrying");
        await sleep(30);
      }
      assert.equal((await q.getTask(id))?.attempts, 0);
      assert.equal(Number((await q.stats()).refused), 3);
    });

    await t.step("a permanent error goes to the DLQ at once and raises an alert", async () => {
      const q = testQueue(redis);
      const alerts: unknown[] = [];
      const sub = redis.subscribe(q.ctx.keys.dlqChannel);
      const subscribed = new Promise((r) => sub.on("subscribe", r));
      sub.on("message", (m) => alerts.push(m.message));
      await subscribed;
      const { id } = await q.enqueue("echo", { n: 1 });
      const [task] = (await claimer(q)(1)).tasks;
      assert.deepEqual(
        await fail(q.ctx, [{
          id,
          leaseToken: task!.leaseToken,
          error: "PermanentTaskError: bad address",
          permanent: true,
          backoffMs: 0,
        }]),
        [2],
      );
      const info = await q.getTask(id);
      assert.equal(info?.status, "dead");
      assert.equal(info?.dlqReason, "Permanent error: PermanentTaskError: bad address");
      assert.equal(info?.attempts, 1);
      for (let i = 0; i < 50 && alerts.length === 0; i++) await sleep(10);
      await sub.unsubscribe();
      const alert = (typeof alerts[0] === "string" ? JSON.parse(alerts[0]) : alerts[0]) as Record<
        string,
        unknown
      >;
      assert.equal(alert.event, "dead");
      assert.equal(alert.id, id);
      assert.equal(alert.type, "echo");
      assert.equal((await q.stats()).dead, 1);
    });

    await t.step(
      "exhausted attempts go to the DLQ with failed_at, error and dlq_reason",
      async () => {
        const q = testQueue(redis);
        const { id } = await q.enqueue("echo", { n: 1 }, { maxAttempts: 2 });
        for (let attempt = 1; attempt <= 2; attempt++) {
          const [task] = (await claimer(q)(1)).tasks;
          assert.equal(task?.attempt, attempt);
          await fail(q.ctx, [{
            id,
            leaseToken: task!.leaseToken,
            error: `Error: try ${attempt}`,
            permanent: false,
            backoffMs: 0,
          }]);
        }
        const info = await q.getTask(id);
        assert.equal(info?.status, "dead");
        assert.equal(info?.dlqReason, "Max retries (2) exceeded");
        assert.equal(info?.lastError, "Error: try 2");
        assert.ok(info!.failedAt! > 0);
        const ttl = await redis.pttl(q.ctx.keys.task(id));
        assert.ok(ttl > 7 * 86_400_000, `dead tasks outlive the retention window: pttl ${ttl}`);
      },
    );

    await t.step("the DLQ lists by type newest first; replay and purge", async () => {
      const q = testQueue(redis);
      const ids: string[] = [];
      for (
        const [type, payload] of [["echo", { n: 1 }], ["loose", { data: 1 }], ["echo", {
          n: 2,
        }]] as const
      ) {
        const { id } = await q.enqueue(type, payload);
        const [task] = (await claimer(q)(1)).tasks;
        await fail(q.ctx, [{
          id,
          leaseToken: task!.leaseToken,
          error: "E",
          permanent: true,
          backoffMs: 0,
        }]);
        ids.push(id);
        await sleep(3);
      }
      const echoes = await listDead(q, { type: "echo" });
      assert.deepEqual(echoes.tasks.map((x) => x.id), [ids[2], ids[0]]);
      assert.equal(echoes.total, 2);
      const page = await listDead(q, { limit: 2 });
      assert.deepEqual(page.tasks.map((x) => x.id), [ids[2], ids[1]]);
      assert.equal(page.nextOffset, 2);

      const idemBefore = (await q.getTask(ids[0]!))!.idempotencyKey;
      assert.deepEqual(await replayDead(q, [ids[0]!, "not-dead"]), [ids[0]]);
      const replayed = await q.getTask(ids[0]!);
      assert.equal(replayed?.status, "pending");
      assert.equal(replayed?.attempts, 0);
      assert.equal(replayed?.replays, 1);
      assert.equal(replayed?.idempotencyKey, idemBefore);
      assert.equal(await redis.pttl(q.ctx.keys.task(ids[0]!)), -1);
      const dup = await q.enqueue("echo", { n: 1 });
      assert.deepEqual(dup, { id: ids[0], created: false }, "the replayed task keeps its key");
      assert.deepEqual((await claimer(q)(5)).tasks.map((x) => x.id), [ids[0]]);

      assert.deepEqual(await purgeDead(q, [ids[1]!]), [ids[1]]);
      assert.equal(await q.getTask(ids[1]!), null);
      assert.equal(await purgeAllDead(q), 1);
      assert.equal((await listDead(q)).total, 0);
    });

    await t.step("replay of a whole type is rate-limited", async () => {
      const q = testQueue(redis);
      for (let n = 0; n < 6; n++) {
        const { id } = await q.enqueue("echo", { n });
        const [task] = (await claimer(q)(1)).tasks;
        await fail(q.ctx, [{
          id,
          leaseToken: task!.leaseToken,
          error: "E",
          permanent: true,
          backoffMs: 0,
        }]);
      }
      assert.equal(await countDead(q, "echo"), 6);
      assert.equal(await countDead(q, "noop"), 0, "counted per type");
      const waits: number[] = [];
      const count = await replayDeadByType(q, "echo", {
        perSecond: 20,
        sleep: (ms) => {
          waits.push(ms);
          return Promise.resolve();
        },
      });
      assert.equal(count, 6);
      assert.equal(waits.length, 3, "batches of 2 (perSecond / 10)");
      assert.ok(waits.every((w) => w > 50 && w <= 100), `waits ${waits}`);
      assert.equal((await listDead(q, { type: "echo" })).total, 0);
      assert.equal(await countDead(q, "echo"), 0);
    });

    await t.step(
      "replay of a type replays only what was dead at the start: a task dying again is replayed once",
      async () => {
        const q = testQueue(redis);
        const kill = async (id: string) => {
          const [task] = (await claimer(q)(1)).tasks;
          assert.equal(task?.id, id);
          await fail(q.ctx, [{
            id,
            leaseToken: task!.leaseToken,
            error: "E",
            permanent: true,
            backoffMs: 0,
          }]);
        };
        const { id } = await q.enqueue("echo", { n: 1 });
        await kill(id);
        // The replayed task dies again before the next batch (a permanently failing task).
        const count = await replayDeadByType(q, "echo", {
          perSecond: 1, // a second's budget per task, so sleep() runs between batches
          max: 10,
          sleep: () => kill(id),
        });
        assert.equal(count, 1);
        assert.equal((await q.getTask(id))?.replays, 1);
        assert.equal((await listDead(q, { type: "echo" })).total, 1, "dead again, left there");
      },
    );

    await t.step(
      "at the DLQ cap the oldest entries are evicted with an alert, never silently",
      async () => {
        const q = testQueue(redis, { dlqCap: 2 });
        const ids: string[] = [];
        const codes: number[] = [];
        for (let n = 0; n < 3; n++) {
          const { id } = await q.enqueue("echo", { n });
          const [task] = (await claimer(q)(1)).tasks;
          codes.push(
            ...await fail(q.ctx, [{
              id,
              leaseToken: task!.leaseToken,
              error: "E",
              permanent: true,
              backoffMs: 0,
            }]),
          );
          ids.push(id);
          await sleep(2);
        }
        assert.deepEqual(codes, [2, 2, 3]);
        assert.deepEqual((await listDead(q)).tasks.map((x) => x.id), [ids[2], ids[1]]);
        assert.equal((await q.stats()).dlq_evicted, 1);
      },
    );

    await t.step(
      "an expired lease is taken back; the stale holder cannot ack or fail",
      async () => {
        const q = testQueue(redis);
        const { id } = await q.enqueue("echo", { n: 1 });
        const [a] = (await claimer(q, "A", 100)(1)).tasks;
        assert.deepEqual((await claimer(q, "B", 100)(1)).tasks, []);
        await sleep(130);
        const res = await claimer(q, "B", 30_000)(1);
        assert.equal(res.recovered, 1);
        const [b] = res.tasks;
        assert.equal(b?.id, id);
        assert.equal(b?.attempt, 2);
        assert.notEqual(b?.leaseToken, a?.leaseToken);
        assert.deepEqual(await ack(q.ctx, [{ id, leaseToken: a!.leaseToken, resultJson: "1" }]), [
          -1,
        ]);
        assert.deepEqual(
          await fail(q.ctx, [{
            id,
            leaseToken: a!.leaseToken,
            error: "x",
            permanent: true,
            backoffMs: 0,
          }]),
          [-1],
        );
        assert.deepEqual(await extendLeases(q.ctx, [{ id, leaseToken: a!.leaseToken }], 1000), [
          -1,
        ]);
        assert.equal((await q.getTask(id))?.status, "running");
        assert.deepEqual(await ack(q.ctx, [{ id, leaseToken: b!.leaseToken, resultJson: "2" }]), [
          1,
        ]);
        assert.equal((await q.getTask(id))?.result, 2);
      },
    );

    await t.step("a lost lease on the last attempt dead-letters the task", async () => {
      const q = testQueue(redis);
      const { id } = await q.enqueue("echo", { n: 1 }, { maxAttempts: 1 });
      await claimer(q, "A", 50)(1);
      await sleep(80);
      const res = await claimer(q, "B")(1);
      assert.equal(res.dead, 1);
      const info = await q.getTask(id);
      assert.equal(info?.status, "dead");
      assert.match(
        info!.dlqReason!,
        /^Max retries \(1\) exceeded: Lease expired on attempt 1 of 1/,
      );
    });

    await t.step("a heartbeat keeps a long task's lease", async () => {
      const q = testQueue(redis);
      const { id } = await q.enqueue("echo", { n: 1 });
      const [task] = (await claimer(q, "A", 150)(1)).tasks;
      for (let i = 0; i < 5; i++) {
        await sleep(60);
        assert.deepEqual(await extendLeases(q.ctx, [{ id, leaseToken: task!.leaseToken }], 150), [
          1,
        ]);
        assert.deepEqual((await claimer(q, "B", 150)(1)).tasks, [], "no one else got it");
      }
      assert.deepEqual(
        await ack(q.ctx, [{ id, leaseToken: task!.leaseToken, resultJson: "null" }]),
        [1],
      );
    });

    await t.step("release hands tasks back to the front at once, attempt not counted", async () => {
      const q = testQueue(redis);
      const first = await q.enqueue("echo", { n: 1 });
      const second = await q.enqueue("echo", { n: 2 });
      const [task] = (await claimer(q, "A")(1)).tasks;
      assert.equal(task?.id, first.id);
      assert.deepEqual(await release(q.ctx, [{ id: first.id, leaseToken: task!.leaseToken }]), [1]);
      const again = (await claimer(q, "B")(2)).tasks;
      assert.deepEqual(again.map((x) => x.id), [first.id, second.id]);
      assert.equal(again[0]!.attempt, 1);
    });
  },
});
