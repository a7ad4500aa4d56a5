import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { liveFeedKeys } from "../redis/keys.ts";
import { readHistory } from "../ws/history.ts";
import { bindFeedScripts } from "../ws/scripts.ts";
import { replayDead } from "./dlq.ts";
import { ack, claim, fail, release } from "./leases.ts";
import type { TaskQueue } from "./queue.ts";
import { testQueue } from "../../testing/queue.ts";
import type { Redis } from "@upstash/redis";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The stack holds a Neon Pool (deps), whose socket ops outlive each test.
const opts = noSanitizers;

interface StatusEvent {
  id: string;
  status: string;
  type: string;
  attempts: number;
  max_attempts?: number;
  expired?: boolean;
  reason?: string;
  worker?: string;
  refused?: boolean;
  replayed?: boolean;
  released?: boolean;
}

/** Every `tasks` message of the queue's namespace, in offset order. */
async function taskEvents(redis: Redis, q: TaskQueue): Promise<StatusEvent[]> {
  const ctx = { scripts: bindFeedScripts(redis), keys: liveFeedKeys(q.ctx.settings.namespace) };
  const read = await readHistory(ctx, "tasks", "0-0");
  assert.equal(read.complete, true);
  return read.messages.map((m) => {
    assert.equal(m.topic, "tasks");
    const data = JSON.parse(m.data) as StatusEvent;
    assert.equal(m.key, data.id, "the message key is the task id (tasks:<id>)");
    return data;
  });
}

function statuses(events: StatusEvent[], id: string): string[] {
  return events.filter((e) => e.id === id).map((e) => `${e.status}@${e.attempts}`);
}

Deno.test({
  name: "task status changes are published on the live feed's tasks topic by the queue's scripts",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const lease = { leaseMs: 30_000, workerId: "w-feed" };

    await t.step("enqueue → running → retrying → running → succeeded, in order", async () => {
      const q = testQueue(redis);
      const { id } = await q.enqueue("echo", { n: 1 });
      let [task] = (await claim(q.ctx, { max: 1, ...lease })).tasks;
      assert.equal(task?.id, id);
      await fail(q.ctx, [{
        id,
        leaseToken: task!.leaseToken,
        error: "smtp 451",
        permanent: false,
        backoffMs: 0,
      }]);
      [task] = (await claim(q.ctx, { max: 1, ...lease })).tasks;
      assert.equal(task?.id, id);
      await ack(q.ctx, [{ id, leaseToken: task!.leaseToken, resultJson: '{"secret":1}' }]);

      const events = await taskEvents(redis, q);
      assert.deepEqual(statuses(events, id), [
        "pending@0",
        "running@1",
        "retrying@1",
        "running@2",
        "succeeded@2",
      ]);
      const [pending, running, retrying] = events;
      assert.equal(pending!.type, "echo");
      assert.equal(pending!.max_attempts, 3);
      assert.equal(running!.worker, "w-feed");
      assert.equal(retrying!.status, "retrying");
      // Every reader of tasks follows this topic: outcomes are the enqueuer's and admins' only.
      assert.ok(
        events.every((e) => !("result" in e) && !("payload" in e) && !("error" in e)),
        "results, payloads and error texts stay out of the feed",
      );
    });

    await t.step("a duplicate enqueue publishes nothing", async () => {
      const q = testQueue(redis);
      await q.enqueue("echo", { n: 2 }, { idempotencyKey: "once" });
      await q.enqueue("echo", { n: 2 }, { idempotencyKey: "once" });
      assert.equal((await taskEvents(redis, q)).length, 1);
    });

    await t.step("dead-lettered, replayed, refused and released tasks", async () => {
      const q = testQueue(redis);
      const dead = await q.enqueue("echo", { n: 3 });
      const parked = await q.enqueue("echo", { n: 4 });
      const [a, b] = (await claim(q.ctx, { max: 2, ...lease })).tasks;
      await fail(q.ctx, [
        { id: dead.id, leaseToken: a!.leaseToken, error: "bad", permanent: true, backoffMs: 0 },
        {
          id: parked.id,
          leaseToken: b!.leaseToken,
          error: "breaker open",
          permanent: false,
          backoffMs: 0,
          refused: true,
        },
      ]);
      assert.deepEqual(await replayDead(q, [dead.id]), [dead.id]);
      const again = (await claim(q.ctx, { max: 2, ...lease })).tasks;
      assert.equal(again.length, 2);
      await release(q.ctx, again.map((x) => ({ id: x.id, leaseToken: x.leaseToken })));

      const events = await taskEvents(redis, q);
      assert.deepEqual(statuses(events, dead.id), [
        "pending@0",
        "running@1",
        "dead@1",
        "pending@0",
        "running@1",
        "pending@0",
      ]);
      assert.deepEqual(statuses(events, parked.id), [
        "pending@0",
        "running@1",
        "retrying@0",
        "running@1",
        "pending@0",
      ]);
      const deadEvent = events.find((e) => e.status === "dead")!;
      assert.equal("reason" in deadEvent, false, "the dead-letter reason stays out of the feed");
      assert.equal(events.find((e) => e.status === "retrying")!.refused, true);
      assert.equal(events.filter((e) => e.replayed).length, 1);
      assert.equal(events.filter((e) => e.released).length, 2);
    });

    await t.step(
      "an expired lease is published as pending, then dead on the last attempt",
      async () => {
        const q = testQueue(redis);
        const { id } = await q.enqueue("slow", { ms: 1 }); // maxAttempts 1
        const other = await q.enqueue("echo", { n: 5 });
        await claim(q.ctx, { max: 2, leaseMs: 1, workerId: "w-lost" });
        await new Promise((r) => setTimeout(r, 5));
        await claim(q.ctx, { max: 0, ...lease });
        const events = await taskEvents(redis, q);
        assert.deepEqual(statuses(events, id), ["pending@0", "running@1", "dead@1"]);
        assert.deepEqual(statuses(events, other.id), ["pending@0", "running@1", "pending@1"]);
        const recovered = events.find((e) =>
          e.id === other.id && e.status === "pending" && e.attempts
        )!;
        assert.equal(recovered.expired, true);
        assert.equal("error" in recovered, false);
        const lost = events.find((e) => e.id === id && e.status === "dead")!;
        assert.equal("reason" in lost, false);
      },
    );

    await t.step("error texts never reach the feed, however long", async () => {
      const q = testQueue(redis);
      const { id } = await q.enqueue("echo", { n: 6 });
      const [task] = (await claim(q.ctx, { max: 1, ...lease })).tasks;
      await fail(q.ctx, [{
        id,
        leaseToken: task!.leaseToken,
        error: "x".repeat(5000),
        permanent: false,
        backoffMs: 0,
      }]);
      const retrying = (await taskEvents(redis, q)).find((e) => e.status === "retrying")!;
      assert.equal("error" in retrying, false);
    });

    await t.step("taskFeed: null publishes nothing", async () => {
      const q = testQueue(redis, { taskFeed: null });
      const { id } = await q.enqueue("echo", { n: 7 });
      const [task] = (await claim(q.ctx, { max: 1, ...lease })).tasks;
      await ack(q.ctx, [{ id, leaseToken: task!.leaseToken, resultJson: "null" }]);
      assert.deepEqual(await taskEvents(redis, q), []);
    });

    await t.step("the history is capped at historyMaxLen", async () => {
      const q = testQueue(redis, {
        taskFeed: { origin: "test", historyMaxLen: 5, historyMaxAgeMs: 60_000 },
      });
      await q.enqueueMany(
        Array.from({ length: 12 }, (_, n) => ({ type: "echo", payload: { n } })),
      );
      const ctx = { scripts: bindFeedScripts(redis), keys: liveFeedKeys(q.ctx.settings.namespace) };
      const read = await readHistory(ctx, "tasks", "0-0");
      assert.equal(read.messages.length, 5);
      assert.equal(read.complete, false, "a reader from the start missed trimmed entries");
    });
  },
});
