import assert from "node:assert/strict";
import { createLogger } from "../log.ts";
import { serveAdmin } from "./admin_server.ts";
import { createMetrics } from "./metrics.ts";

Deno.test("admin listener answers /health, /ready from its check, /metrics in Prometheus text", async () => {
  const metrics = createMetrics();
  metrics.bookings.inc({ status: "success" });
  let ready = false;
  const logs: string[] = [];
  const admin = await serveAdmin({
    hostname: "127.0.0.1",
    port: 0,
    metrics,
    ready: () => Promise.resolve({ ready, detail: ready ? undefined : "waiting" }),
    log: createLogger({ write: (l) => logs.push(l) }),
    name: "test admin",
  });
  try {
    const health = await fetch(`${admin.url}/health`);
    assert.deepEqual(await health.json(), { status: "ok" });
    const notReady = await fetch(`${admin.url}/ready`);
    assert.equal(notReady.status, 503);
    assert.equal((await notReady.json()).detail, "waiting");
    ready = true;
    const isReady = await fetch(`${admin.url}/ready`);
    assert.equal(isReady.status, 200);
    await isReady.body?.cancel();
    const res = await fetch(`${admin.url}/metrics`);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(await res.text(), /appointment_bookings_total\{status="success"\} 1\n/);
    const post = await fetch(`${admin.url}/metrics`, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
    const other = await fetch(`${admin.url}/v1/me`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
    assert.ok(logs.some((l) => l.includes('"test admin listening"') && l.includes("/metrics")));
  } finally {
    await admin.shutdown();
  }
});

Deno.test("admin listener without metrics (METRICS_ENABLED=false) answers 404 on /metrics", async () => {
  const admin = await serveAdmin({
    hostname: "127.0.0.1",
    port: 0,
    metrics: null,
    ready: () => Promise.resolve({ ready: true }),
    log: createLogger({ write: () => {} }),
    name: "test admin",
  });
  try {
    const res = await fetch(`${admin.url}/metrics`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
  } finally {
    await admin.shutdown();
  }
});
