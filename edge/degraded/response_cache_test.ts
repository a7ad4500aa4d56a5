import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createResponseCache } from "./response_cache.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { testNamespace } from "../../testing/namespace.ts";

Deno.test({
  name: "ResponseCache keeps the last answer, rewrites a key at most once per minRewriteMs",
  // Deps hold a Neon Pool (async WebSocket teardown).
  ...noSanitizers,
}, async () => {
  await using stack = await useTestStack();
  const { redis } = stack.makeDeps();
  let clock = 1_000_000;
  const cache = createResponseCache({
    redis,
    ttlMs: 60_000,
    minRewriteMs: 1000,
    namespace: testNamespace("rc"),
    now: () => clock,
  });
  const key = await cache.key("analytics", "metrics", "24h");
  await cache.put(key, { contentType: "application/json", body: '{"v":1}' });
  clock += 500;
  await cache.put(key, { contentType: "application/json", body: '{"v":2}' });
  assert.deepEqual(await cache.get(key), {
    storedAt: 1_000_000,
    contentType: "application/json",
    body: '{"v":1}',
  });
  clock += 600;
  await cache.put(key, { contentType: "application/json", body: '{"v":3}' });
  assert.equal((await cache.get(key))?.body, '{"v":3}');
  assert.equal(await cache.get(await cache.key("analytics", "other")), null);
});

Deno.test({
  name:
    "ResponseCache: 10,000 distinct queries leave at most maxEntries answers of a breaker in Redis",
  // Deps hold a Neon Pool (async WebSocket teardown).
  ...noSanitizers,
}, async () => {
  await using stack = await useTestStack();
  const { redis } = stack.makeDeps();
  const namespace = testNamespace("rc");
  const cap = 50;
  const cache = createResponseCache({ redis, ttlMs: 60_000, maxEntries: cap, namespace });
  // A viewer looping min_score=0.000001, 0.000002, …: each a distinct canonical query.
  const keyOf = (i: number) =>
    cache.key("database", "/v1/leads", JSON.stringify({ min_score: (i + 1) / 1e6 }));
  const total = 10_000;
  for (let start = 0; start < total; start += 100) {
    await Promise.all(
      Array.from({ length: 100 }, async (_, j) => {
        const i = start + j;
        await cache.put(await keyOf(i), { contentType: "application/json", body: `{"i":${i}}` });
      }),
    );
  }
  const stored = (await redis.keys(`${namespace}:degraded:*`)).filter((k) => !k.endsWith(":index"));
  assert.ok(stored.length <= cap, `${stored.length} answers kept, cap ${cap}`);
  assert.ok(stored.length > 0);
  assert.equal(await redis.zcard(`${namespace}:degraded:{database}:index`), stored.length);
  // The latest answer is kept; the first ones were evicted.
  assert.equal((await cache.get(await keyOf(total - 1)))?.body, `{"i":${total - 1}}`);
  assert.equal(await cache.get(await keyOf(0)), null);
  // Another breaker has its own budget.
  const other = await cache.key("analytics", "metrics");
  await cache.put(other, { contentType: "application/json", body: "{}" });
  assert.equal((await cache.get(other))?.body, "{}");
});
