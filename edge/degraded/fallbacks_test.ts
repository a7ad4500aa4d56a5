import assert from "node:assert/strict";
import { Hono } from "hono";
import { useTestStack } from "../../testing/stack.ts";
import { createBreakerRegistry } from "../../shared/breakers/registry.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { guardedRead } from "./fallbacks.ts";
import { createResponseCache } from "./response_cache.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

Deno.test({
  name: "guardedRead: caches good answers, serves them degraded while open, else 503",
  // The registry holds an SSE subscription (async teardown).
  ...noSanitizers,
}, async (t) => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const namespace = testNamespace();
  const breakers = createBreakerRegistry({
    redis: deps.redis,
    namespace,
    flushMs: 5,
    policies: { analytics: { fail_max: 2, reset_timeout_ms: 3_000 } },
  });
  await breakers.start();
  const cache = createResponseCache({ redis: deps.redis, ttlMs: 60_000, namespace });
  let fail = false;
  let version = 0;
  const app = new Hono();
  app.get("/metrics", (c) =>
    guardedRead(c, {
      breaker: breakers.get("analytics"),
      cache,
      identity: ["metrics", c.req.query("range") ?? ""],
      now: Date.now,
    }, () => {
      if (fail) return Promise.reject(Object.assign(new Error("db down"), { status: 503 }));
      return Promise.resolve({ range: c.req.query("range"), version: ++version });
    }));
  try {
    await t.step("a good answer is returned and kept", async () => {
      const res = await app.request("/metrics?range=24h");
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { range: "24h", version: 1 });
      const key = await cache.key("analytics", "metrics", "24h");
      await waitUntil(async () => (await cache.get(key)) !== null, { what: "cache write" });
    });

    await t.step("failures open the breaker; the cached answer is served degraded", async () => {
      fail = true;
      for (let i = 0; i < 2; i++) {
        // The failure itself propagates (the app's onError maps it); it is counted.
        const res = await app.request("/metrics?range=7d");
        assert.equal(res.status, 500);
        await res.body?.cancel();
      }
      await waitUntil(() => breakers.get("analytics").state === "open", { what: "open" });
      const res = await app.request("/metrics?range=24h");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-degraded"), "true");
      assert.match(res.headers.get("warning") ?? "", /^110 /);
      const body = await res.json();
      assert.equal(body.status, "degraded");
      assert.equal(body.message, "Analytics temporarily unavailable");
      assert.deepEqual(body.cached_data, { range: "24h", version: 1 });
      assert.equal(typeof body.cached_at, "string");
    });

    await t.step(
      "a read with no cached answer is 503 with Retry-After until the probe",
      async () => {
        const res = await app.request("/metrics?range=30d");
        assert.equal(res.status, 503);
        assert.equal(res.headers.get("content-type"), "application/problem+json");
        const retryAfter = Number(res.headers.get("retry-after"));
        assert.ok(retryAfter >= 1 && retryAfter <= 3, `Retry-After ${retryAfter}`);
        const body = await res.json();
        assert.equal(body.code, "downstream-unavailable");
        assert.equal(body.breaker, "analytics");
      },
    );

    await t.step("an operator force-open answers from the cache too", async () => {
      await breakers.forceOpen("analytics");
      const cached = await app.request("/metrics?range=24h");
      assert.equal(cached.status, 200);
      assert.equal((await cached.json()).status, "degraded");
      const none = await app.request("/metrics?range=1y");
      assert.equal(none.status, 503);
      assert.equal(none.headers.get("retry-after"), "30");
      await none.body?.cancel();
    });
  } finally {
    await breakers.stop();
  }
});
