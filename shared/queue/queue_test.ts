import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { TaskValidationError, UnknownTaskTypeError } from "./errors.ts";
import { namespaceKeys, testQueue } from "../../testing/queue.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The stack holds a Neon Pool (deps), whose socket ops outlive each test.
const opts = noSanitizers;

Deno.test({
  name: "enqueue()",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();

    await t.step(
      "a repeated idempotency key returns the first task and writes nothing",
      async () => {
        const q = testQueue(redis);
        const first = await q.enqueue("echo", { n: 1 }, { idempotencyKey: "order-42" });
        assert.equal(first.created, true);
        const keysAfterFirst = await namespaceKeys(q);
        const second = await q.enqueue("echo", { n: 2 }, { idempotencyKey: "order-42" });
        assert.deepEqual(second, { id: first.id, created: false });
        assert.deepEqual(await namespaceKeys(q), keysAfterFirst);
        assert.equal((await q.stats()).enqueued, 1);
        const info = await q.getTask(first.id);
        assert.deepEqual(info?.payload, { n: 1 });
        assert.equal(info?.status, "pending");
      },
    );

    await t.step("50 concurrent enqueues with one key create exactly one task", async () => {
      const q = testQueue(redis);
      const results = await Promise.all(
        Array.from(
          { length: 50 },
          (_, i) => q.enqueue("echo", { n: i }, { idempotencyKey: "same" }),
        ),
      );
      const ids = new Set(results.map((r) => r.id));
      assert.equal(ids.size, 1);
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal((await q.stats()).enqueued, 1);
      const taskKeys = (await namespaceKeys(q)).filter((k) => k.includes(":task:"));
      assert.equal(taskKeys.length, 1);
    });

    await t.step(
      "derived keys: equal payloads (any key order) dedupe, different ones do not",
      async () => {
        const q = testQueue(redis);
        const a = await q.enqueue("loose", { data: { x: 1, y: [1, { b: 2, a: 1 }] } });
        const b = await q.enqueue("loose", { data: { y: [1, { a: 1, b: 2 }], x: 1 } });
        const c = await q.enqueue("loose", { data: { x: 2 } });
        assert.equal(b.id, a.id);
        assert.equal(b.created, false);
        assert.notEqual(c.id, a.id);
        assert.match((await q.getTask(a.id))!.idempotencyKey, /^sha256:[0-9a-f]{64}$/);
      },
    );

    await t.step("the idempotency window ends", async () => {
      const q = testQueue(redis, { idempotencyWindowMs: 100 });
      const a = await q.enqueue("echo", { n: 1 });
      await new Promise((r) => setTimeout(r, 150));
      const b = await q.enqueue("echo", { n: 1 });
      assert.equal(b.created, true);
      assert.notEqual(b.id, a.id);
    });

    await t.step("enqueueMany() writes a batch in one call with the same guarantees", async () => {
      const q = testQueue(redis);
      const res = await q.enqueueMany([
        { type: "echo", payload: { n: 1 } },
        { type: "echo", payload: { n: 2 } },
        { type: "echo", payload: { n: 1 } },
        { type: "echo", payload: { n: 3 }, options: { idempotencyKey: "k" } },
        { type: "echo", payload: { n: 4 }, options: { idempotencyKey: "k" } },
      ]);
      assert.deepEqual(res.map((r) => r.created), [true, true, false, true, false]);
      assert.equal(res[2]!.id, res[0]!.id);
      assert.equal(res[4]!.id, res[3]!.id);
      assert.equal((await q.stats()).enqueued, 3);
    });

    await t.step("bad input is a typed error and writes nothing", async () => {
      const q = testQueue(redis, { maxPayloadBytes: 64 });
      await assert.rejects(q.enqueue("nope", {}), (e: Error) => {
        assert.ok(e instanceof UnknownTaskTypeError);
        assert.equal(e.code, "unknown-task-type");
        return true;
      });
      await assert.rejects(q.enqueue("echo", { n: "one", extra: true }), (e: Error) => {
        assert.ok(e instanceof TaskValidationError);
        assert.deepEqual(e.fields.map((f) => f.path).sort(), ["", "n"]);
        return true;
      });
      await assert.rejects(q.enqueue("loose", { data: "x".repeat(100) }), {
        code: "task-payload-too-large",
      });
      await assert.rejects(q.enqueue("loose", { data: { big: 10n } }), (e: Error) => {
        assert.ok(e instanceof TaskValidationError);
        assert.deepEqual(e.fields, [{ path: "data.big", message: "a BigInt is not valid JSON" }]);
        return true;
      });
      await assert.rejects(
        q.enqueue("loose", { data: new Map() }),
        /data: a Map is not plain JSON data/,
      );
      await assert.rejects(
        q.enqueue("echo", { n: 1 }, { priority: "urgent" as "high" }),
        /priority: must be one of/,
      );
      await assert.rejects(
        q.enqueue("echo", { n: 1 }, { delayMs: -5 }),
        /delayMs: must be an integer/,
      );
      await assert.rejects(
        q.enqueue("echo", { n: 1 }, { idempotencyKey: "has space" }),
        /idempotencyKey/,
      );
      // All or nothing: one bad item fails the whole batch before any write.
      await assert.rejects(
        q.enqueueMany([{ type: "echo", payload: { n: 1 } }, { type: "echo", payload: {} }]),
      );
      assert.deepEqual(await namespaceKeys(q), []);
    });

    await t.step("getTask() returns null for an unknown id", async () => {
      assert.equal(await testQueue(redis).getTask("no-such-id"), null);
    });
  },
});
