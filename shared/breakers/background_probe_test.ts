import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createRedis } from "../deps.ts";
import { startBackgroundProbe } from "./background_probe.ts";
import { createBreakerRegistry } from "./registry.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { freePort } from "../../dev/ports.ts";

const failing = () => Promise.reject(Object.assign(new Error("upstream 503"), { status: 503 }));

Deno.test({
  name:
    "database-style breakers detect hanging calls and recover as soon as the downstream answers",
  // The SDK's SSE subscription is torn down asynchronously (registry_test.ts says why).
  ...noSanitizers,
}, async (t) => {
  await using stack = await useTestStack();
  const registry = createBreakerRegistry({
    redis: createRedis(stack.settings.redis),
    policies: {
      db: { fail_max: 2, reset_timeout_ms: 60_000, slow_call_ms: 200, timeout_ms: 10_000 },
    },
    namespace: testNamespace(),
    flushMs: 5,
  });
  await registry.start();
  try {
    await t.step(
      "calls still hanging at slow_call_ms open the breaker before they end",
      async () => {
        let release!: () => void;
        const hang = new Promise<void>((r) => release = r);
        let ended = 0;
        const calls = [0, 1].map(() => registry.get("db").call(() => hang).finally(() => ended++));
        await waitUntil(() => registry.get("db").state === "open", {
          what: "the breaker opens on the hanging calls",
          timeoutMs: 20_000,
        });
        assert.equal(ended, 0, "opened while both calls were still running");
        release();
        await Promise.all(calls);
      },
    );

    await t.step("while the downstream is down the probe keeps it OPEN", async () => {
      let up = false;
      const probe = startBackgroundProbe({
        registry,
        name: "db",
        check: () => up ? Promise.resolve() : failing(),
        everyMs: 50,
      });
      try {
        await waitUntil(() => probe.checks >= 3, {
          what: "three failed checks",
          timeoutMs: 20_000,
        });
        assert.equal(registry.get("db").state, "open");

        up = true;
        await waitUntil(() => registry.get("db").state === "half_open", {
          what: "half-open after a check answered, long before the 60 s reset timeout",
          timeoutMs: 20_000,
        });
        // The next real call is the probe and closes it.
        assert.equal(await registry.get("db").call(() => Promise.resolve("ok")), "ok");
        await waitUntil(() => registry.get("db").state === "closed", { what: "closed" });
      } finally {
        await probe.stop();
      }
    });

    await t.step("a FORCED_OPEN breaker is the operator's: halfOpen leaves it", async () => {
      await registry.forceOpen("db");
      assert.equal((await registry.halfOpen("db")).state, "forced_open");
      await registry.reset("db");
      assert.throws(
        () => startBackgroundProbe({ registry, name: "nope", check: () => Promise.resolve() }),
        RangeError,
      );
    });
  } finally {
    await registry.stop();
  }
});

Deno.test({
  name:
    "the background probe's check timeout counts time net of this process's own stall: a starved process still half-opens",
  ...noSanitizers,
}, async () => {
  await using stack = await useTestStack();
  // The stall source is injected: each check below says how much of its time was the process's own.
  let stall = 0;
  const registry = createBreakerRegistry({
    redis: createRedis(stack.settings.redis),
    policies: { db: { fail_max: 1, reset_timeout_ms: 60_000 } },
    namespace: testNamespace(),
    flushMs: 5,
    loopLag: { stalledMs: () => stall },
  });
  await registry.start();
  let stalled = false;
  const probe = startBackgroundProbe({
    registry,
    name: "db",
    // 300 ms to answer against a 100 ms timeout; when `stalled`, 290 ms of it were this process's.
    check: () => {
      if (stalled) stall += 290;
      return new Promise((r) => setTimeout(r, 300));
    },
    everyMs: 50,
    timeoutMs: 100,
  });
  try {
    await registry.get("db").call(failing).catch(() => {});
    await waitUntil(() => registry.get("db").state === "open", { what: "open" });
    await waitUntil(() => probe.checks >= 3, { what: "three checks", timeoutMs: 20_000 });
    assert.equal(registry.get("db").state, "open", "a check slow on its own is a failed check");

    stalled = true;
    await waitUntil(() => registry.get("db").state === "half_open", {
      what: "half-open: the check was slow only because the process was stalled",
      timeoutMs: 20_000,
    });
  } finally {
    await probe.stop();
    await registry.stop();
  }
});

Deno.test("while Redis is unreachable the background probe half-opens the local breaker", async () => {
  // A Redis nobody listens on: the registry decides with local breakers from the start.
  const port = await freePort();
  const registry = createBreakerRegistry({
    redis: createRedis({ url: `http://127.0.0.1:${port}`, token: "unused" }),
    policies: { db: { fail_max: 1, reset_timeout_ms: 60_000 } },
    namespace: testNamespace(),
    heartbeatMs: 60_000,
  });
  await registry.start();
  let up = false;
  const probe = startBackgroundProbe({
    registry,
    name: "db",
    check: () => up ? Promise.resolve() : failing(),
    everyMs: 20,
  });
  try {
    assert.equal(registry.mode, "local");
    await registry.get("db").call(failing).catch(() => {});
    assert.equal(registry.get("db").state, "open", "the local breaker tripped");
    await waitUntil(() => probe.checks >= 3, { what: "three failed checks" });
    assert.equal(registry.get("db").state, "open");

    up = true;
    await waitUntil(() => registry.get("db").state === "half_open", {
      what: "the local breaker half-open long before its 60 s reset timeout",
    });
    assert.equal(await registry.get("db").call(() => Promise.resolve("ok")), "ok");
    assert.equal(registry.get("db").state, "closed", "the probe closed it");
  } finally {
    await probe.stop();
    await registry.stop();
  }
});
