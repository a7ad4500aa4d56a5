import assert from "node:assert/strict";
import { AppProcess } from "../testing/process.ts";
import { blackHole } from "../testing/ports.ts";

Deno.test("edge exits 2 with one readable list of every config problem, no stack trace", async () => {
  const edge = new AppProcess("edge/main.ts", { EDGE_PORT: "nope", DB_POOL_MAX: "0" });
  const { code, stderr } = await edge.finished();
  assert.equal(code, 2);
  assert.match(stderr, /^Invalid configuration \(5 problems\):/);
  for (
    const name of [
      "EDGE_PORT",
      "UPSTASH_REDIS_REST_URL",
      "UPSTASH_REDIS_REST_TOKEN",
      "DATABASE_URL",
      "DB_POOL_MAX",
    ]
  ) {
    assert.match(stderr, new RegExp(`- ${name}: `));
  }
  assert.doesNotMatch(stderr, /\n\s+at /);
});

Deno.test("edge SIGTERM lets an in-flight request finish, then exits 0", async () => {
  // Both stores hang, so GET /ready stays in flight for READY_TIMEOUT_MS.
  const hole = blackHole();
  const edge = new AppProcess("edge/main.ts", {
    EDGE_PORT: "0",
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${hole.port}`,
    UPSTASH_REDIS_REST_TOKEN: "t",
    DATABASE_URL: `postgresql://u:p@127.0.0.1:${hole.port}/db`,
    NEON_WS_PROXY: `127.0.0.1:${hole.port}/v1`,
    NEON_USE_SECURE_WEBSOCKET: "false",
    NEON_PIPELINE_CONNECT: "false",
    READY_TIMEOUT_MS: "1500",
  });
  try {
    const { url } = await edge.waitForLog("edge listening") as { url: string };
    const started = Date.now();
    const inFlight = fetch(`${url}/ready`);
    await new Promise((r) => setTimeout(r, 300));
    edge.child.kill("SIGTERM");
    const res = await inFlight;
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.deepEqual(body.failed.sort(), ["postgres", "redis"]);
    assert.ok(Date.now() - started >= 1400, "answered before the check timed out");
    const { code } = await edge.finished();
    assert.equal(code, 0);
    assert.ok(edge.lines.some((l) => l.includes('"edge draining"')));
    assert.ok(edge.lines.some((l) => l.includes('"edge stopped"')));
    await assert.rejects(fetch(`${url}/health`), TypeError);
  } finally {
    await edge.kill();
    await hole.close();
  }
});
