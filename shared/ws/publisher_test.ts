import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { liveFeedKeys } from "../redis/keys.ts";
import { readHistory } from "./history.ts";
import { createFeedPublisher } from "./publisher.ts";
import { bindFeedScripts } from "./scripts.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The stack's deps hold a Neon Pool whose sockets close after the test.
const opts = noSanitizers;

Deno.test({
  name: "publish() and readHistory()",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const setup = (options: { historyMaxLen?: number } = {}) => {
      const namespace = testNamespace();
      const publisher = createFeedPublisher({ redis, instanceId: "i-1", namespace, ...options });
      const ctx = { scripts: bindFeedScripts(redis), keys: liveFeedKeys(namespace) };
      return { publisher, ctx };
    };

    await t.step(
      "messages come back from history in order, with key, target and origin",
      async () => {
        const { publisher, ctx } = setup();
        const a = await publisher.publish("tasks", { n: 1, s: "a,b\nc" }, { key: "t1" });
        const b = await publisher.publish("tasks", [], { target: { user: "u1" } });
        const c = await publisher.publish("tasks", { n: 3 });
        assert.equal(a.duplicate, false);
        const read = await readHistory(ctx, "tasks", "0-0");
        assert.equal(read.complete, true);
        assert.equal(read.tail, c.offset);
        assert.deepEqual(read.messages.map((m) => m.offset), [a.offset, b.offset, c.offset]);
        assert.deepEqual(JSON.parse(read.messages[0]!.data), { n: 1, s: "a,b\nc" });
        assert.equal(read.messages[0]!.key, "t1");
        assert.equal(read.messages[1]!.data, "[]");
        assert.deepEqual(read.messages[1]!.target, { user: "u1" });
        assert.equal(read.messages[2]!.origin, "i-1");
        const after = await readHistory(ctx, "tasks", a.offset);
        assert.deepEqual(after.messages.map((m) => m.offset), [b.offset, c.offset]);
        const tailOnly = await readHistory(ctx, "tasks", null);
        assert.deepEqual([tailOnly.complete, tailOnly.tail, tailOnly.messages], [
          true,
          c.offset,
          [],
        ]);
      },
    );

    await t.step(
      "an absent key or target is left out of the entry; entries that carry them empty read the same",
      async () => {
        const { publisher, ctx } = setup();
        const history = ctx.keys.history("tasks");
        // How the previous version stored a message without key and target.
        const old = await redis.xadd(history, "*", { d: '{"n":1}', o: "i-0", k: "", t: "" });
        const now = await publisher.publish("tasks", { n: 2 });
        // Raw reply (automaticDeserialization off): [[id, [field, value, …]]].
        const raw = await redis.xrange(history, now.offset, now.offset) as unknown as [
          string,
          string[],
        ][];
        assert.deepEqual(raw[0]![1].filter((_, i) => i % 2 === 0), ["d", "o"]);
        const read = await readHistory(ctx, "tasks", "0-0");
        assert.deepEqual(read.messages.map((m) => [m.offset, m.key, m.target]), [
          [old, null, null],
          [now.offset, null, null],
        ]);
      },
    );

    await t.step("an offset older than the trimmed history is reported incomplete", async () => {
      const { publisher, ctx } = setup({ historyMaxLen: 3 });
      const offsets = [];
      for (let n = 0; n < 6; n++) offsets.push((await publisher.publish("leads", { n })).offset);
      const old = await readHistory(ctx, "leads", offsets[1]!);
      assert.equal(old.complete, false);
      // Entries still there are returned anyway (the bus delivers them).
      assert.deepEqual(old.messages.map((m) => m.offset), offsets.slice(3));
      const recent = await readHistory(ctx, "leads", offsets[2]!);
      assert.equal(recent.complete, true);
      assert.deepEqual(recent.messages.map((m) => m.offset), offsets.slice(3));
    });

    await t.step(
      "a missing stream or a foreign offset is incomplete; 0-0 on a new topic is not",
      async () => {
        const { publisher, ctx } = setup();
        assert.deepEqual(await readHistory(ctx, "dlq", "0-0"), {
          complete: true,
          tail: "0-0",
          messages: [],
        });
        assert.equal((await readHistory(ctx, "dlq", "1700000000000-0")).complete, false);
        const first = await publisher.publish("dlq", { n: 1 });
        // An offset from before this stream existed (e.g. Redis lost its data).
        assert.equal((await readHistory(ctx, "dlq", "1700000000000-0")).complete, false);
        const fresh = await readHistory(ctx, "dlq", "0-0");
        assert.equal(fresh.complete, true);
        assert.deepEqual(fresh.messages.map((m) => m.offset), [first.offset]);
        // Newer than anything published here: from another history.
        assert.equal((await readHistory(ctx, "dlq", "9999999999999-0")).complete, false);
      },
    );

    await t.step("pages through more entries than one script call returns", async () => {
      const { publisher, ctx } = setup();
      const sent = await Promise.all(
        Array.from({ length: 25 }, (_, n) => publisher.publish("broadcast", { n })),
      );
      const read = await readHistory(ctx, "broadcast", "0-0", { pageSize: 4 });
      assert.deepEqual(read.messages.map((m) => m.offset), sent.map((s) => s.offset));
      assert.deepEqual(read.messages.map((m) => JSON.parse(m.data).n), sent.map((_, n) => n));
    });

    await t.step("a dedupe id publishes once and returns the first offset", async () => {
      const { publisher, ctx } = setup();
      const first = await publisher.publish("breakers", { x: 1 }, { dedupeId: "t:places:3" });
      const again = await publisher.publish("breakers", { x: 1 }, { dedupeId: "t:places:3" });
      assert.deepEqual(again, { offset: first.offset, duplicate: true });
      assert.equal((await readHistory(ctx, "breakers", "0-0")).messages.length, 1);
    });

    await t.step("invalid input is refused before Redis", async () => {
      const { publisher } = setup();
      await assert.rejects(publisher.publish("nope" as "tasks", {}), TypeError);
      await assert.rejects(publisher.publish("tasks", undefined), TypeError);
      await assert.rejects(publisher.publish("tasks", "x".repeat(70_000)), RangeError);
      await assert.rejects(publisher.publish("tasks", {}, { key: "a b" }), TypeError);
      await assert.rejects(publisher.publish("tasks", {}, { target: {} }), TypeError);
    });

    await t.step("the history is trimmed once it is 1% over its cap, back to the cap", async () => {
      const { publisher, ctx } = setup({ historyMaxLen: 200 });
      const item = (n: number) => ({ data: { n } });
      await publisher.publishMany("leads", Array.from({ length: 202 }, (_, n) => item(n)));
      let read = await readHistory(ctx, "leads", "0-0");
      assert.equal(read.messages.length, 202, "2 over (1%): not trimmed yet");
      assert.equal(read.complete, true);
      await publisher.publish("leads", item(202));
      read = await readHistory(ctx, "leads", "0-0");
      assert.equal(read.messages.length, 200, "3 over: trimmed to the cap");
      assert.equal(JSON.parse(read.messages[0]!.data).n, 3);
      assert.equal(read.complete, false);
    });

    await t.step("publishMany() writes a batch in order, in one call, or nothing", async () => {
      const { publisher, ctx } = setup({ historyMaxLen: 4 });
      assert.deepEqual(await publisher.publishMany("leads", []), []);
      const offsets = await publisher.publishMany("leads", [
        { data: { n: 1 }, key: "l1" },
        { data: { n: 2 }, target: { user: "u1" } },
        { data: { n: 3 } },
      ]);
      let read = await readHistory(ctx, "leads", "0-0");
      assert.deepEqual(read.messages.map((m) => m.offset), offsets);
      assert.deepEqual(read.messages.map((m) => JSON.parse(m.data).n), [1, 2, 3]);
      assert.deepEqual(read.messages.map((m) => m.key), ["l1", null, null]);
      assert.deepEqual(read.messages[1]!.target, { user: "u1" });
      assert.equal(read.complete, true);
      // One bad item: nothing of the batch is written.
      for (
        const bad of [{ data: undefined }, { data: {}, key: "a b" }, { data: "x".repeat(70_000) }]
      ) {
        await assert.rejects(publisher.publishMany("leads", [{ data: { n: 4 } }, bad]));
      }
      assert.equal((await readHistory(ctx, "leads", "0-0")).messages.length, 3);
      // The cap holds after a batch (trimmed once, after the appends).
      const more = await publisher.publishMany(
        "leads",
        [4, 5, 6].map((n) => ({ data: { n } })),
      );
      read = await readHistory(ctx, "leads", offsets[0]!);
      assert.equal(read.complete, false, "entries after the first offset were trimmed");
      assert.deepEqual(
        (await readHistory(ctx, "leads", offsets[2]!)).messages.map((m) => m.offset),
        more,
      );
    });
  },
});
