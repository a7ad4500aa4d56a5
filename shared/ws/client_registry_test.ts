import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createClientRegistry } from "./client_registry.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The stack's deps hold a Neon Pool whose sockets close after the test.
const opts = noSanitizers;

Deno.test({
  name: "the client registry lists live clients, drops removed ones and expires the rest",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const namespace = testNamespace();
    const long = createClientRegistry({ redis, namespace });
    const short = createClientRegistry({ redis, namespace, ttlMs: 150 });
    const info = (instance: string, user: string) => ({ instance, user, connected_at: 1 });

    await long.touch([{ id: "c1", info: info("A", "alice") }, {
      id: "c2",
      info: info("B", "bob"),
    }]);
    await short.touch([{ id: "c3", info: info("B", "carol") }]);
    const listed = await long.list();
    assert.equal(listed.total, 3);
    assert.deepEqual(listed.clients.map((c) => [c.id, c.instance, c.user]).sort(), [
      ["c1", "A", "alice"],
      ["c2", "B", "bob"],
      ["c3", "B", "carol"],
    ]);
    assert.ok(listed.clients.every((c) => c.expires_at > Date.now()));
    assert.equal((await long.list(1)).clients.length, 1);

    await long.remove(["c2"]);
    // A refresh without info does not bring a removed client back.
    await long.touch([{ id: "c2", info: null }]);
    await waitUntil(async () => (await long.list()).total === 1, {
      timeoutMs: 3000,
      what: "c3 to expire",
    });
    assert.deepEqual((await long.list()).clients.map((c) => c.id), ["c1"]);
  },
});

Deno.test({
  name:
    "the client registry pages by (expiry, id): every client once, ties included, next null at the end",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const registry = createClientRegistry({ redis, namespace: testNamespace() });
    const info = { instance: "A", user: "u", connected_at: 1 };
    // One touch call: many clients share the same expiry (ties broken by id).
    const ids = Array.from({ length: 23 }, (_, i) => `c${String(i).padStart(2, "0")}`);
    await registry.touch(ids.map((id) => ({ id, info })));
    const seen: string[] = [];
    let after: { expires_at: number; id: string } | undefined;
    for (let page = 0; page < 10; page++) {
      const got = await registry.list(5, after);
      assert.equal(got.total, 23);
      seen.push(...got.clients.map((c) => c.id));
      if (got.next === null) break;
      assert.equal(got.clients.length, 5);
      after = got.next;
    }
    assert.deepEqual(seen.sort(), ids, "each client exactly once");
    const whole = await registry.list(23);
    assert.equal(whole.next, null, "no next page when everything fit");
    assert.equal(whole.clients.length, 23);
  },
});
