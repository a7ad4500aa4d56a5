import assert from "node:assert/strict";
import { startStack } from "../../dev/stack.ts";
import { useTestStack } from "../../testing/stack.ts";
import { parseConfig } from "../../shared/config/mod.ts";
import { createRedis } from "../../shared/deps.ts";
import { poolFor } from "../../shared/db/pool.ts";
import { createLogger } from "../../shared/log.ts";
import { settingsToEnv } from "../../dev/stack.ts";
import { createApp } from "../app.ts";
import { READY_MAX_AGE_MS } from "./health.ts";
import { createMetrics } from "../../shared/metrics/metrics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// These tests hold Neon Pool connections (WebSocket ops that outlive a single
// test step by design), so the op and resource sanitizers are off.
const opts = noSanitizers;

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
    // Answers are reused for up to a second: each check below is a second later.
    let t = Date.now();
    const later = () => void (t += READY_MAX_AGE_MS);
    try {
      const app = createApp({
        config,
        redis: createRedis(config.redis),
        sql,
        log: createLogger({ write: () => {} }),
        now: () => t,
        metrics: createMetrics(),
      });
      assert.equal((await app.request("/ready")).status, 200);

      await stack.redisServer!.stop();
      later();
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
      later();
      const up = await app.request("/ready");
      assert.equal(up.status, 200, JSON.stringify(await up.clone().json()));
      await up.body?.cancel();

      await stack.postgres!.stop();
      later();
      const pgDown = await app.request("/ready");
      assert.equal(pgDown.status, 503);
      assert.deepEqual((await pgDown.json()).failed, ["postgres"]);
    } finally {
      await sql.end().catch(() => {});
    }
  },
});

Deno.test({
  name: "a flood of /ready and /openapi.json costs one dependency check a second and one document",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    let pings = 0;
    const redis = new Proxy(deps.redis, {
      get(target, prop, receiver) {
        if (prop === "ping") pings++;
        const v = Reflect.get(target, prop, receiver);
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
    let t = Date.now();
    const app = createApp({ ...deps, redis, now: () => t });
    const statuses = await Promise.all(
      Array.from(
        { length: 50 },
        async () => {
          const r = await app.request("/ready");
          await r.body?.cancel();
          return r.status;
        },
      ),
    );
    assert.deepEqual(new Set(statuses), new Set([200]));
    assert.equal(pings, 1);
    t += READY_MAX_AGE_MS - 1;
    await (await app.request("/ready")).body?.cancel();
    assert.equal(pings, 1, "still fresh");
    t += 1;
    await (await app.request("/ready")).body?.cancel();
    assert.equal(pings, 2, "at most a second old");

    let builds = 0;
    const build = app.getOpenAPI31Document.bind(app);
    app.getOpenAPI31Document = (...args) => (builds++, build(...args));
    const docs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => app.request(i % 2 ? "/openapi.json" : "/docs")),
    );
    const texts = await Promise.all(docs.map((r) => r.text()));
    assert.ok(docs.every((r) => r.status === 200));
    const first = texts[1]!;
    assert.ok(texts.every((text, i) => i % 2 === 0 || text === first));
    assert.equal(JSON.parse(first).openapi, "3.1.0");
    assert.equal(builds, 1);
  },
});
