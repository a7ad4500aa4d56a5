/**
 * What an instance learned while deciding locally reaches the shared breaker
 * when Redis returns. In the starvation runs of 2026-12-07
 * (docs/chaos-report.md) a local trip pushed to Redis then stayed OPEN its
 * whole 60 s reset timeout: while Redis kept being reset the instances were
 * local whenever their background probe found the database answering, so
 * the local breakers recovered and the shared one never heard of it.
 *
 * Instance A reaches Redis through the fault proxy (a reset takes Redis away
 * from it); instance B, directly, watches the shared state. The background
 * probe is stopped before Redis returns: only the reconcile can carry what it
 * saw, as when Redis is back only between two checks.
 */
import assert from "node:assert/strict";
import { startFaultProxy } from "../../dev/chaos/fault_proxy.ts";
import { useTestStack } from "../../testing/stack.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { waitUntil } from "../../testing/wait.ts";
import { createRedis } from "../deps.ts";
import { startBackgroundProbe } from "./background_probe.ts";
import { type BreakerRegistry, createBreakerRegistry } from "./registry.ts";

const failing = () => Promise.reject(Object.assign(new Error("upstream 503"), { status: 503 }));

/** A through the fault proxy, B direct; `fn` runs with both started. */
async function withTwoInstances(
  fn: (
    a: BreakerRegistry,
    b: BreakerRegistry,
    redisAway: (away: boolean) => Promise<void>,
  ) => Promise<void>,
): Promise<void> {
  await using stack = await useTestStack();
  const bridge = new URL(stack.settings.redis.url);
  await using proxy = await startFaultProxy({ upstreamPort: Number(bridge.port) });
  const namespace = testNamespace();
  const make = (url: string) =>
    createBreakerRegistry({
      redis: createRedis({ ...stack.settings.redis, url }),
      policies: { db: { fail_max: 1, reset_timeout_ms: 60_000 } },
      namespace,
      heartbeatMs: 100,
      storeTimeoutMs: 300,
    });
  const a = make(`${bridge.protocol}//127.0.0.1:${proxy.port}`);
  const b = make(stack.settings.redis.url);
  const redisAway = async (away: boolean) => {
    proxy.setFault({ kind: away ? "reset" : "pass" });
    await waitUntil(() => a.mode === (away ? "local" : "redis"), {
      what: away ? "A decides locally" : "A resynced",
      timeoutMs: 10_000,
    });
  };
  await Promise.all([a.start(), b.start()]);
  try {
    await fn(a, b, redisAway);
  } finally {
    proxy.setFault({ kind: "pass" });
    await Promise.all([a.stop(), b.stop()]);
  }
}

/** Runs A's background probe until A's local breaker half-opens (up) or three checks failed. */
async function probeWhileLocal(a: BreakerRegistry, up: boolean): Promise<void> {
  const probe = startBackgroundProbe({
    registry: a,
    name: "db",
    check: () => up ? Promise.resolve() : failing(),
    everyMs: 20,
  });
  try {
    await waitUntil(() => up ? a.get("db").state === "half_open" : probe.checks >= 3, {
      what: up ? "A's local breaker half-opened by its probe" : "three failed checks",
    });
  } finally {
    await probe.stop();
  }
  assert.equal(a.mode, "local");
}

Deno.test({
  name:
    "a shared OPEN whose local copy recovered while Redis was away half-opens on resync; a dead dependency stays OPEN",
  // The SDK's SSE subscription is torn down asynchronously (registry_test.ts says why).
  ...noSanitizers,
}, async (t) => {
  await withTwoInstances(async (a, b, redisAway) => {
    await t.step("a local trip is pushed to Redis as a 60 s OPEN", async () => {
      await redisAway(true);
      await a.get("db").call(failing).catch(() => {});
      assert.equal(a.get("db").state, "open");
      await redisAway(false);
      await waitUntil(() => b.get("db").state === "open", { what: "B sees the pushed trip" });
      const [db] = await b.list();
      assert.equal(db!.reason, "local_trip");
      assert.ok(db!.openRemainingMs! > 50_000, `open for ${db!.openRemainingMs} ms`);
    });

    await t.step("Redis away again, the probe finds the dependency dead: still OPEN", async () => {
      await redisAway(true);
      await probeWhileLocal(a, false);
      await redisAway(false);
      const [db] = await b.list();
      assert.equal(db!.state, "open");
      assert.equal(db!.reason, "local_trip");
      assert.ok(db!.openRemainingMs! > 45_000, `open for ${db!.openRemainingMs} ms`);
      assert.equal(a.get("db").state, "open");
    });

    await t.step(
      "Redis away again, the probe finds it answering and a call closes the local breaker: the shared one half-opens",
      async () => {
        await redisAway(true);
        await probeWhileLocal(a, true);
        assert.equal(await a.get("db").call(() => Promise.resolve("ok")), "ok");
        assert.equal(a.get("db").state, "closed", "the local probe call closed it");
        await redisAway(false);
        await waitUntil(() => b.get("db").state === "half_open", {
          what: "the shared breaker half-opened, not left OPEN ~60 s",
          timeoutMs: 3_000,
        });
        const [db] = await b.list();
        assert.equal(db!.reason, "probe_answered");
        // The next real call is the probe, as after any half-open.
        assert.equal(await b.get("db").call(() => Promise.resolve("ok")), "ok");
        await waitUntil(() => a.get("db").state === "closed", { what: "closed everywhere" });
      },
    );
  });
});

Deno.test({
  name:
    "a local trip whose dependency the local probe has already seen answering is pushed half-open",
  ...noSanitizers,
}, async () => {
  await withTwoInstances(async (a, b, redisAway) => {
    await redisAway(true);
    await a.get("db").call(failing).catch(() => {});
    assert.equal(a.get("db").state, "open");
    await probeWhileLocal(a, true);
    await redisAway(false);
    await waitUntil(() => b.get("db").state === "half_open", {
      what: "the pushed trip half-open, so parked task types resume without waiting for a probe",
      timeoutMs: 3_000,
    });
    const [db] = await b.list();
    assert.equal(db!.reason, "probe_answered");
    assert.ok(db!.trips >= 1, "the trip itself was recorded");
    assert.equal(a.get("db").state, "half_open");
  });
});
