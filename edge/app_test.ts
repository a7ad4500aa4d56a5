import assert from "node:assert/strict";
import { parseConfig } from "../shared/config/mod.ts";
import { createRedis, type Deps } from "../shared/deps.ts";
import { createPool } from "../shared/db/pool.ts";
import { AppError } from "../shared/errors.ts";
import { createLogger } from "../shared/log.ts";
import { createApp } from "./app.ts";
import { createMetrics } from "../shared/metrics/metrics.ts";

/**
 * Deps for routes that do no I/O: clients pointed at an unused port are built
 * (lazily connecting) but never called.
 */
function offlineDeps(logs: string[]): Deps {
  const config = parseConfig({
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9",
    UPSTASH_REDIS_REST_TOKEN: "t",
    DATABASE_URL: "postgresql://u:p@127.0.0.1:9/db",
  });
  return {
    config,
    redis: createRedis(config.redis),
    sql: createPool({ databaseUrl: config.database.url, onError: () => {} }),
    log: createLogger({ write: (l) => logs.push(l) }),
    now: Date.now,
    metrics: createMetrics(),
  };
}

// The op sanitizer is on: building an app starts no async work (scripts are
// bound lazily, see shared/redis/scripts.ts).
const opts = {};

Deno.test("GET /health answers ok without touching any dependency", opts, async () => {
  const app = createApp(offlineDeps([]));
  const res = await app.request("/health");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "ok" });
  assert.match(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
});

Deno.test(
  "unknown routes get a 404 problem+json with a stable code and the request id",
  opts,
  async () => {
    const app = createApp(offlineDeps([]));
    const res = await app.request("/nope?x=1", { headers: { "X-Request-Id": "req-abc-1" } });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    assert.equal(res.headers.get("x-request-id"), "req-abc-1");
    assert.deepEqual(await res.json(), {
      type: "/problems/not-found",
      instance: "/nope",
      request_id: "req-abc-1",
      code: "not-found",
      status: 404,
      title: "Not found",
      detail: "No route for GET /nope",
    });
  },
);

Deno.test("a client-supplied request id with unsafe characters is replaced", opts, async () => {
  const app = createApp(offlineDeps([]));
  const res = await app.request("/health", { headers: { "X-Request-Id": 'a b"<script>' } });
  assert.match(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  await res.body?.cancel();
});

Deno.test(
  "AppError becomes its status and code; other errors an opaque, logged 500",
  opts,
  async () => {
    const logs: string[] = [];
    const app = createApp(offlineDeps(logs));
    app.get("/teapot", () => {
      throw new AppError("teapot", 418, "I am a teapot", { details: { brew: "tea" } });
    });
    app.get("/boom", () => {
      throw new Error("secret internal detail");
    });
    const teapot = await app.request("/teapot");
    assert.equal(teapot.status, 418);
    const body = await teapot.json();
    assert.equal(body.code, "teapot");
    assert.equal(body.brew, "tea");

    const boom = await app.request("/boom", { headers: { "X-Request-Id": "r-500" } });
    assert.equal(boom.status, 500);
    const text = await boom.text();
    assert.ok(!text.includes("secret internal detail"));
    assert.equal(JSON.parse(text).code, "internal");
    const logged = logs.map((l) => JSON.parse(l)).find((l) => l.msg === "unhandled error");
    assert.equal(logged?.request_id, "r-500");
    assert.equal(logged?.err.message, "secret internal detail");
  },
);

Deno.test("every request writes one JSON access-log line with its request id", opts, async () => {
  const logs: string[] = [];
  const app = createApp(offlineDeps(logs));
  const res = await app.request("/missing", { headers: { "X-Request-Id": "r-log" } });
  await res.body?.cancel();
  const lines = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
  assert.equal(lines.length, 1);
  assert.equal(lines[0].request_id, "r-log");
  assert.equal(lines[0].status, 404);
  assert.equal(lines[0].path, "/missing");
  assert.equal(typeof lines[0].duration_ms, "number");
});

Deno.test("CORS answers only the configured origins; secure headers are set", opts, async () => {
  const deps = offlineDeps([]);
  const app = createApp({
    ...deps,
    config: { ...deps.config, corsOrigins: ["https://app.pleasantcove.example"] },
  });
  const preflight = await app.request("/v1/tasks", {
    method: "OPTIONS",
    headers: {
      origin: "https://app.pleasantcove.example",
      "access-control-request-method": "POST",
      "access-control-request-headers": "authorization, idempotency-key, content-type",
    },
  });
  assert.equal(preflight.status, 204);
  assert.equal(
    preflight.headers.get("access-control-allow-origin"),
    "https://app.pleasantcove.example",
  );
  assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /Idempotency-Key/);
  await preflight.body?.cancel();

  const foreign = await app.request("/health", { headers: { origin: "https://evil.example" } });
  assert.equal(foreign.headers.get("access-control-allow-origin"), null);
  assert.equal(foreign.headers.get("x-frame-options"), "SAMEORIGIN");
  assert.equal(foreign.headers.get("x-content-type-options"), "nosniff");
  await foreign.body?.cancel();

  const none = createApp(deps);
  const res = await none.request("/health", {
    headers: { origin: "https://app.pleasantcove.example" },
  });
  assert.equal(
    res.headers.get("access-control-allow-origin"),
    null,
    "no CORS without an allow-list",
  );
  await res.body?.cancel();
});

Deno.test(
  "the app serves the console outside /v1; its dev sign-in exists only outside production",
  opts,
  async () => {
    const dev = offlineDeps([]);
    const page = await createApp(dev).request("/console");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    await page.body?.cancel();
    const post = (deps: Deps) =>
      createApp(deps).request("/console/dev-sign-in", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ role: "admin" }),
      });
    const minted = await post(dev);
    assert.equal(minted.status, 200);
    assert.match((await minted.json()).token, /^ey/);
    const production = { ...dev, config: { ...dev.config, env: "production" as const } };
    const refused = await post(production);
    assert.equal(refused.status, 404);
    assert.equal((await refused.json()).code, "not-found");
  },
);
