import assert from "node:assert/strict";
import { redisCommand } from "../dev/redis_server.ts";
import { startStack } from "../dev/stack.ts";
import { createRedis } from "../shared/deps.ts";
import { createLogger } from "../shared/log.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import type { BreakerTransition } from "../shared/breakers/types.ts";
import { outcome, startUpstream } from "../testing/upstream.ts";
import { testNamespace } from "../testing/namespace.ts";
import { waitUntil } from "../testing/wait.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

Deno.test({
  name:
    "breakers without Redis: the event stream dies and is resubscribed; Redis stops, local breakers trip; Redis returns, they re-sync",
  // The SDK's SSE subscription is torn down asynchronously (unsubscribe aborts
  // the fetch; its body read settles a tick later), which the op/resource
  // sanitizers can report as a leak under load.
  ...noSanitizers,
}, async (t) => {
  // A private stack: this test takes its Redis away.
  await using stack = await startStack();
  await using upstream = startUpstream();
  const redisServer = stack.redisServer!;
  const namespace = testNamespace();
  const policies = {
    up: { fail_max: 3, reset_timeout_ms: 1500, timeout_ms: 1000 },
    other: { fail_max: 3, reset_timeout_ms: 1500 },
  };
  const logs: string[] = [];
  const make = (id: string) =>
    createBreakerRegistry({
      redis: createRedis(stack.settings.redis),
      policies,
      namespace,
      instanceId: id,
      heartbeatMs: 200,
      storeTimeoutMs: 500,
      log: createLogger({ level: "debug", write: (l) => logs.push(l), fields: { instance: id } }),
    });
  const a = make("A");
  const b = make("B");
  const events: BreakerTransition[] = [];
  a.events.addEventListener("transition", (e) => events.push((e as CustomEvent).detail));
  try {
    await Promise.all([a.start(), b.start()]);

    await t.step("a dead event stream is noticed by the heartbeat and resubscribed", async () => {
      const killed = await redisCommand(
        redisServer.port,
        redisServer.password,
        "CLIENT KILL TYPE pubsub",
      );
      assert.match(killed, /^:[1-9]/);
      await waitUntil(() => a.metrics.resubscribes >= 1 && b.metrics.resubscribes >= 1, {
        timeoutMs: 3000,
        what: "both instances to resubscribe",
      });
      await a.forceOpen("other");
      await waitUntil(() => b.get("other").state === "forced_open", { timeoutMs: 1000 });
      assert.equal(a.mode, "redis");
    });

    await t.step(
      "Redis stopped: each instance falls back to a local breaker that trips locally",
      async () => {
        await redisServer.stop();
        upstream.mode = { status: 503 };
        upstream.resetCount();
        for (let i = 0; i < 10; i++) await outcome(a.get("up").fetch(upstream.url));
        await waitUntil(() => a.mode === "local" && b.mode === "local", { timeoutMs: 3000 });
        // At most fail_max calls reached the upstream: the local breaker tripped.
        assert.ok(upstream.count <= 3, `upstream saw ${upstream.count}`);
        assert.equal(a.get("up").state, "open");
        assert.equal(a.get("up").local, true);
        assert.equal(await outcome(a.get("up").fetch(upstream.url)), "BreakerOpenError");
        const localTrip = events.find((e) => e.source === "local" && e.to === "open");
        assert.equal(localTrip?.reason, "consecutive_failures");
        // Never "assume CLOSED": a state known before the outage still holds.
        assert.equal(await outcome(b.get("other").fetch(upstream.url)), "BreakerOpenError");
        assert.equal(b.get("up").state, "closed");
        assert.ok(a.metrics.fallbacks >= 1 && a.metrics.localDecisions >= 1);
        const snaps = await a.list();
        assert.deepEqual(snaps.map((s) => [s.name, s.state, s.source]), [
          ["up", "open", "local"],
          ["other", "forced_open", "local"],
        ]);
        await assert.rejects(
          a.reset("other"),
          (err: Error) => err.name === "DependencyUnavailableError",
        );
      },
    );

    await t.step("Redis back: both resync, A's local trip becomes the shared state", async () => {
      await redisServer.restart();
      await waitUntil(() => a.mode === "redis" && b.mode === "redis", {
        timeoutMs: 5000,
        what: "both instances to resync",
      });
      assert.ok(a.metrics.resyncs >= 1 && b.metrics.resyncs >= 1);
      const [up, other] = await a.list();
      assert.equal(up!.state, "open");
      assert.equal(up!.reason, "local_trip");
      assert.equal(other!.state, "forced_open");
      await waitUntil(() => b.get("up").state === "open", { timeoutMs: 1000 });
      upstream.resetCount();
      assert.equal(await outcome(b.get("up").fetch(upstream.url)), "BreakerOpenError");
      assert.equal(upstream.count, 0);
      // The shared breaker then recovers as usual: one probe after the reset timeout.
      upstream.mode = { status: 200 };
      // B decides from its own view of the reset timer (set when B heard of the
      // trip, so under load a little later than A's): wait for B's, not A's.
      await waitUntil(() => (a.list().then(([s]) => s!.openRemainingMs === 0)), {
        timeoutMs: 3000,
        everyMs: 50,
      });
      await waitUntil(() => b.get("up").snapshot().openRemainingMs === 0, {
        timeoutMs: 3000,
        everyMs: 20,
      });
      assert.equal(await outcome(b.get("up").fetch(upstream.url)), "200");
      await waitUntil(() => a.get("up").state === "closed", { timeoutMs: 1000 });
      await a.reset("other");
    });
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
});
