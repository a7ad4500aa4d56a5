import assert from "node:assert/strict";
import { useTestStack } from "../../dev/test_stack.ts";
import { createResponseCache } from "./response_cache.ts";

Deno.test({
  name: "ResponseCache keeps the last answer, rewrites a key at most once per minRewriteMs",
  // Deps hold a Neon Pool (async WebSocket teardown).
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await using stack = await useTestStack();
  const { redis } = stack.makeDeps();
  let clock = 1_000_000;
  const cache = createResponseCache({
    redis,
    ttlMs: 60_000,
    minRewriteMs: 1000,
    namespace: `rc${crypto.randomUUID().slice(0, 8)}`,
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
