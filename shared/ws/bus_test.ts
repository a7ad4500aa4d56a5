import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createLogger } from "../log.ts";
import { FeedBus } from "./bus.ts";
import type { FeedMessage } from "./history.ts";
import { createFeedPublisher } from "./publisher.ts";
import { mutableSubscriptions } from "../../testing/mutable_subscriptions.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { compareOffsets, type Topic } from "./topics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The SDK's SSE streams are torn down asynchronously (the aborted fetch's body
// settles a tick later), and the stack's deps hold a Neon Pool.
const opts = noSanitizers;

Deno.test({
  name: "FeedBus",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const logs: string[] = [];
    const log = createLogger({ level: "debug", write: (l) => logs.push(l) });

    function bus(namespace: string, id: string, r = redis) {
      const got: FeedMessage[] = [];
      const gaps: Topic[] = [];
      const b = new FeedBus({
        redis: r,
        instanceId: id,
        namespace,
        heartbeatMs: 50,
        timeoutMs: 1000,
        log: log.child({ instance: id }),
        onMessage: (m) => got.push(m),
        onGap: (topic) => gaps.push(topic),
      });
      return { b, got, gaps };
    }

    await t.step("two instances receive every message once, in offset order", async () => {
      const namespace = testNamespace();
      const a = bus(namespace, "A");
      const c = bus(namespace, "C");
      try {
        await Promise.all([a.b.start(), c.b.start()]);
        assert.equal(a.b.healthy, true);
        const pa = createFeedPublisher({ redis, instanceId: "A", namespace });
        const pc = createFeedPublisher({ redis, instanceId: "C", namespace });
        const sent = await Promise.all(
          Array.from({ length: 40 }, (_, n) => (n % 2 ? pa : pc).publish("broadcast", { n })),
        );
        // Concurrent publishes: Redis decides the order, and every instance sees that order.
        const byOffset = sent.map((s, n) => ({ offset: s.offset, n }))
          .sort((x, y) => compareOffsets(x.offset, y.offset));
        const offsets = byOffset.map((x) => x.offset);
        for (const x of [a, c]) {
          await waitUntil(() => x.got.length >= 40, { what: "40 messages" });
          assert.deepEqual(x.got.map((m) => m.offset), offsets);
          assert.deepEqual(x.got.map((m) => JSON.parse(m.data).n), byOffset.map((x) => x.n));
        }
        assert.equal(a.b.lastOffset("broadcast"), offsets.at(-1));
        // A healthy stream echoes every heartbeat: never reopened.
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(a.b.metrics.resubscribes, 0);
        assert.equal(c.b.healthy, true);
        assert.equal(a.b.lastOffset("tasks"), "0-0");
      } finally {
        await Promise.all([a.b.stop(), c.b.stop()]);
      }
    });

    await t.step(
      "a stream that goes silent is found by the heartbeat, reopened, and the gap filled from history",
      async () => {
        const namespace = testNamespace();
        const mutable = mutableSubscriptions(redis);
        const a = bus(namespace, "A", mutable.redis);
        const publisher = createFeedPublisher({ redis, instanceId: "P", namespace });
        try {
          await a.b.start();
          const before = await publisher.publish("tasks", { n: 0 }, { key: "t0" });
          await waitUntil(() => a.got.length === 1);
          mutable.silenceStreams();
          const lost = [];
          for (let n = 1; n <= 20; n++) {
            lost.push((await publisher.publish(n % 2 ? "tasks" : "leads", { n })).offset);
          }
          await waitUntil(() => a.b.metrics.resubscribes >= 1, { what: "a resubscribe" });
          for (let n = 21; n <= 30; n++) await publisher.publish("tasks", { n });
          await waitUntil(() => a.got.length >= 31, {
            what: "31 messages",
            detail: () => `${a.got.length}`,
          });
          const ns = a.got.map((m) => JSON.parse(m.data).n);
          assert.deepEqual(
            [...ns].sort((x, y) => x - y),
            Array.from({ length: 31 }, (_, n) => n),
          );
          for (const topic of ["tasks", "leads"] as const) {
            const mine = a.got.filter((m) => m.topic === topic).map((m) => m.offset);
            assert.deepEqual(mine, [...mine].sort(compareOffsets), `${topic} in order`);
          }
          assert.equal(a.got[0]!.offset, before.offset);
          assert.ok(a.b.metrics.recovered >= 1, JSON.stringify(a.b.metrics));
          assert.deepEqual(a.gaps, []);
          assert.ok(mutable.subscriptions >= 2);
        } finally {
          await a.b.stop();
        }
      },
    );

    await t.step("a gap older than the history is reported once per topic", async () => {
      const namespace = testNamespace();
      const mutable = mutableSubscriptions(redis);
      const a = bus(namespace, "A", mutable.redis);
      const publisher = createFeedPublisher({
        redis,
        instanceId: "P",
        namespace,
        historyMaxLen: 3,
      });
      try {
        await a.b.start();
        await publisher.publish("dlq", { n: 0 });
        await waitUntil(() => a.got.length === 1);
        mutable.silenceStreams();
        for (let n = 1; n <= 10; n++) await publisher.publish("dlq", { n });
        await waitUntil(() => a.gaps.length >= 1, { what: "the gap" });
        await waitUntil(() => a.got.length === 4);
        assert.deepEqual(a.gaps, ["dlq"]);
        assert.deepEqual(a.got.map((m) => JSON.parse(m.data).n), [0, 8, 9, 10]);
      } finally {
        await a.b.stop();
      }
    });
  },
});
