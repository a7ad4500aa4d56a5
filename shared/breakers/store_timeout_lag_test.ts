/**
 * The breaker store's timeout counts time net of this process's own stall:
 * a starved process must not declare a slow-but-answering Redis unreachable
 * (its breakers would go local, where no background probe half-opens them).
 * Redis is slowed by the fault proxy; the stall is injected.
 */
import assert from "node:assert/strict";
import { startFaultProxy } from "../../dev/chaos/fault_proxy.ts";
import { useTestStack } from "../../testing/stack.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { waitUntil } from "../../testing/wait.ts";
import { createRedis } from "../deps.ts";
import { type LoopLag, NO_LAG } from "../loop_lag.ts";
import { createBreakerRegistry } from "./registry.ts";

Deno.test({
  name:
    "a Redis slower than the store timeout only because the process was stalled keeps the breakers shared",
  // The SDK's SSE subscription is torn down asynchronously (registry_test.ts says why).
  ...noSanitizers,
}, async () => {
  await using stack = await useTestStack();
  const bridge = new URL(stack.settings.redis.url);
  await using proxy = await startFaultProxy({ upstreamPort: Number(bridge.port) });
  const url = `${bridge.protocol}//127.0.0.1:${proxy.port}`;
  const make = (loopLag: LoopLag) =>
    createBreakerRegistry({
      redis: createRedis({ ...stack.settings.redis, url }),
      policies: { db: { fail_max: 1, reset_timeout_ms: 60_000 } },
      namespace: testNamespace(),
      heartbeatMs: 100,
      storeTimeoutMs: 150,
      loopLag,
    });
  // Nine tenths of every wall-clock interval were this process's own stall.
  const starved = make({ stalledMs: () => performance.now() * 0.9 });
  const plain = make(NO_LAG);
  await Promise.all([starved.start(), plain.start()]);
  try {
    proxy.setFault({ kind: "latency", ms: 400 });
    await waitUntil(() => plain.mode === "local", {
      what: "a 400 ms Redis is past a 150 ms store timeout on wall time",
      timeoutMs: 10_000,
    });
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(starved.mode, "redis", "net of the stall it answered in time");
    assert.equal(starved.metrics.fallbacks, 0);
  } finally {
    proxy.setFault({ kind: "pass" });
    await Promise.all([starved.stop(), plain.stop()]);
  }
});
