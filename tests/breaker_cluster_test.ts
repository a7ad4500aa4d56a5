import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { createRedis } from "../shared/deps.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import type { BreakerPolicyInput } from "../shared/breakers/policy.ts";
import { breakerKeys } from "../shared/breakers/keys.ts";
import { outcome, startUpstream } from "../testing/upstream.ts";
import { testNamespace } from "../testing/namespace.ts";
import { waitUntil } from "../testing/wait.ts";
import { wallMs } from "./fixtures/breaker_instance.ts";
import { BreakerProcess } from "./fixtures/breaker_process.ts";
import { percentile } from "../bench/lib/report.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

// One breaker instance in this process (A) and one in a child process (B),
// sharing the test stack's Redis; a loopback upstream counts what reaches it.

const failing = () => Promise.reject(Object.assign(new Error("upstream 503"), { status: 503 }));

Deno.test({
  name: "breakers across two processes",
  // The SDK's SSE subscription is torn down asynchronously (unsubscribe aborts
  // the fetch; its body read settles a tick later), which the op/resource
  // sanitizers can report as a leak under load.
  ...noSanitizers,
}, async (t) => {
  await using stack = await useTestStack();
  await using upstream = startUpstream();
  const namespace = testNamespace();
  const policies: Record<string, BreakerPolicyInput> = {
    up: { fail_max: 2, reset_timeout_ms: 300, timeout_ms: 3000, probe_lease_ms: 1200 },
  };
  const redis = createRedis(stack.settings.redis);
  const a = createBreakerRegistry({ redis, policies, namespace, instanceId: "A" });
  const config = { redis: stack.settings.redis, namespace, policies, upstream: upstream.url };
  let b = new BreakerProcess({ ...config, instanceId: "B1" });
  const seenByB = (to: string, after: number) => (l: Record<string, unknown>) =>
    l.msg === "breaker event" && l.to === to && Number(l.t) >= after;
  try {
    await a.start();
    await b.url();

    await t.step("an open on process A stops calls on process B within 1 s", async () => {
      const latencies: number[] = [];
      for (let i = 0; i < 10; i++) {
        await a.reset("up");
        await waitUntil(async () => (await b.control("/state?name=up")).state === "closed");
        const before = wallMs();
        await a.get("up").call(failing).catch(() => {});
        await a.get("up").call(failing).catch(() => {});
        // From the moment A holds the evidence (its second failure) to B's cache flipping.
        const evidence = wallMs();
        const line = await b.waitFor(seenByB("open", before), 2000);
        latencies.push(Number(line.t) - evidence);
      }
      const p50 = percentile(latencies, 50);
      const max = Math.max(...latencies);
      console.log(
        `propagation A → B over 10 trips: p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
      );
      assert.ok(max < 1000, `propagation took ${max} ms`);
      // B refuses without calling the upstream.
      upstream.resetCount();
      const fired = await b.control("/fire?name=up&n=5", "POST");
      assert.deepEqual(fired.outcomes, { refused: 5 });
      assert.equal(upstream.count, 0);
    });

    await t.step(
      "exactly ONE probe for 100 concurrent calls on a HALF_OPEN breaker across two processes",
      async () => {
        await waitUntil(async () => (await b.control("/state?name=up")).state === "open");
        // The probe answers slowly, so every other call arrives while it is in flight.
        upstream.mode = { status: 200, delayMs: 400 };
        upstream.resetCount();
        await new Promise((r) => setTimeout(r, 310)); // reset timeout over
        const [fromA, fromB] = await Promise.all([
          Promise.all(Array.from({ length: 50 }, () => outcome(a.get("up").fetch(upstream.url)))),
          b.control("/fire?name=up&n=50", "POST"),
        ]);
        const counts: Record<string, number> = { ...(fromB.outcomes as Record<string, number>) };
        for (const o of fromA) counts[o] = (counts[o] ?? 0) + 1;
        const refused = (counts.refused ?? 0) + (counts.BreakerOpenError ?? 0);
        assert.equal(
          upstream.count,
          1,
          `upstream saw ${upstream.count}: ${JSON.stringify(counts)}`,
        );
        assert.equal(counts["200"], 1, JSON.stringify(counts));
        assert.equal(refused, 99, JSON.stringify(counts));
        assert.equal(await redis.hget(breakerKeys(namespace).state("up"), "probes"), "1");
        await waitUntil(async () => (await b.control("/state?name=up")).state === "closed");
        assert.equal(a.get("up").state, "closed");
      },
    );

    await t.step("a crashed prober's lease expires and another instance probes", async () => {
      upstream.mode = { status: 503 };
      await a.get("up").call(failing).catch(() => {});
      await a.get("up").call(failing).catch(() => {});
      await waitUntil(async () => (await b.control("/state?name=up")).state === "open");
      await new Promise((r) => setTimeout(r, 310));
      upstream.mode = { hang: true };
      upstream.resetCount();
      await b.control("/fire?name=up&n=1&wait=0", "POST");
      await upstream.waitForCount(1);
      const leasedAt = performance.now();
      await b.kill(); // the prober dies holding the lease
      // The lease is held: A refuses, without calling the upstream.
      await assert.rejects(a.get("up").fetch(upstream.url), (err: Error & { state: string }) => {
        assert.equal(err.name, "BreakerOpenError");
        assert.equal(err.state, "half_open");
        return true;
      });
      assert.equal(upstream.count, 1);
      upstream.mode = { status: 200 };
      const wait = 1200 - (performance.now() - leasedAt) + 20;
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      assert.equal(await outcome(a.get("up").fetch(upstream.url)), "200");
      assert.equal(upstream.count, 2);
      assert.equal(a.get("up").state, "closed");
      assert.equal(await redis.hget(breakerKeys(namespace).state("up"), "lost_probes"), "1");
    });

    await t.step("a restarted instance starts from the shared state", async () => {
      await a.forceOpen("up");
      b = new BreakerProcess({ ...config, instanceId: "B2" });
      await b.url();
      assert.equal((await b.control("/state?name=up")).state, "forced_open");
      await a.reset("up");
      await waitUntil(async () => (await b.control("/state?name=up")).state === "closed");
    });
  } finally {
    await b.kill();
    await a.stop();
  }
});
