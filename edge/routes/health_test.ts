import assert from "node:assert/strict";
import { startStack } from "../../dev/stack.ts";
import { useTestStack } from "../../dev/test_stack.ts";
import { parseConfig } from "../../shared/config.ts";
import { createRedis } from "../../shared/deps.ts";
import { poolFor } from "../../shared/db/pool.ts";
import { createLogger } from "../../shared/log.ts";
import { settingsToEnv } from "../../dev/stack.ts";
import { createApp } from "../app.ts";

// These tests hold Neon Pool connections (WebSocket ops that outlive a single
// test step by design), so the op and resource sanitizers are off.
const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "GET /ready is 200 with both dependencies up",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const app = createApp(stack.makeDeps());
    const res = await app.request("/ready");
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.status, "ready");
    assert.equal(body.checks.redis.ok, true);
    assert.equal(body.checks.postgres.ok, true);
  },
});

Deno.test({
  name: "GET /ready goes 503 naming Redis while redis-server is stopped, and recovers",
  ...opts,
  async fn() {
    // A private stack: this test stops its redis-server.
    await using stack = await startStack();
    const config = parseConfig({ ...settingsToEnv(stack.settings), READY_TIMEOUT_MS: "2000" });
    const sql = poolFor(config.database, { max: 2, onError: () => {} });
    try {
      const app = createApp({
        config,
        redis: createRedis(config.redis),
        sql,
        log: createLogger({ write: () => {} }),
        now: Date.now,
      });
      assert.equal((await app.request("/ready")).status, 200);

      await stack.redisServer!.stop();
      const down = await app.request("/ready");
      assert.equal(down.status, 503);
      assert.equal(down.headers.get("content-type"), "application/problem+json");
      assert.equal(down.headers.get("retry-after"), "5");
      const body = await down.json();
      assert.equal(body.code, "not-ready");
      assert.deepEqual(body.failed, ["redis"]);
      assert.equal(body.detail, "Unavailable: redis");
      assert.equal(body.checks.postgres.ok, true);

      await stack.redisServer!.restart();
      const up = await app.request("/ready");
      assert.equal(up.status, 200, JSON.stringify(await up.clone().json()));
      await up.body?.cancel();

      await stack.postgres!.stop();
      const pgDown = await app.request("/ready");
      assert.equal(pgDown.status, 503);
      assert.deepEqual((await pgDown.json()).failed, ["postgres"]);
    } finally {
      await sql.end().catch(() => {});
    }
  },
});
