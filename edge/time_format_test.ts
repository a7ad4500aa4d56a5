/**
 * One time format and one name per concept on every surface (docs/api.md
 * "Time" and "Names"): a sample of REST answers and live-feed frames is
 * walked field by field.
 */
import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { TestClient, token } from "../testing/live_feed.ts";
import { testNamespace } from "../testing/namespace.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { createQueue } from "../shared/queue/queue.ts";
import { TASK_CATALOG } from "../shared/tasks/catalog.ts";
import { createApp } from "./app.ts";
import { createLiveHub } from "./ws/hub.ts";

// The SDK's SSE streams are torn down asynchronously and the deps hold a Neon Pool.
const opts = noSanitizers;

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** Names of time fields: `*_at`, `at`, `time`, `ts`. */
const TIME_KEY = /(^|_)(at|time|ts)$/;

/** Every time field of `value` (recursively) with its path, and every field name used. */
function walk(
  value: unknown,
  path = "$",
  out = { times: [] as [string, unknown][], keys: new Set<string>() },
) {
  if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${path}[${i}]`, out));
  else if (value !== null && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      out.keys.add(k);
      if (TIME_KEY.test(k) && v !== null) out.times.push([`${path}.${k}`, v]);
      walk(v, `${path}.${k}`, out);
    }
  }
  return out;
}

function assertConsistent(what: string, body: unknown): number {
  const { times, keys } = walk(body);
  for (const [path, v] of times) {
    assert.ok(typeof v === "string" && ISO_MS.test(v), `${what} ${path}: ${JSON.stringify(v)}`);
  }
  for (const banned of ["business_id", "attempt"]) {
    assert.ok(!keys.has(banned), `${what} uses "${banned}": ${JSON.stringify(body)}`);
  }
  return times.length;
}

Deno.test({
  name:
    "REST answers and live-feed frames use ISO 8601 UTC with milliseconds, lead_id and attempts",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const namespace = testNamespace();
    const queue = createQueue(deps.redis, TASK_CATALOG, { ...deps.config.queue, namespace });
    const hub = createLiveHub({
      redis: deps.redis,
      log: deps.log,
      namespace,
      instanceId: "T",
      heartbeatMs: 100,
      busTimeoutMs: 1000,
    });
    await hub.start();
    const app = createApp(deps, { live: hub, queue });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    const url = `http://127.0.0.1:${server.addr.port}`;
    const admin = await token(deps.config.auth, "u-admin", { roles: ["admin"] });
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${admin}`,
          ...(body === undefined
            ? {}
            : { "content-type": "application/json", "idempotency-key": crypto.randomUUID() }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = await res.json();
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    let leadId: string | null = null;
    const client = await TestClient.connect({ port: server.addr.port }, admin, {
      topics: ["tasks"],
    });
    try {
      let checked = assertConsistent("welcome", client.frames[0]);
      await client.waitFor((f) => f.type === "subscribed", "subscribed");

      const queued = await call("POST", "/v1/tasks", {
        type: "noop",
        payload: {},
        delay_ms: 60_000,
      });
      const message = await client.waitFor(
        (f) => f.type === "message" && (f.data as { id?: string }).id === queued.task_id,
        "the task's pending message",
      );
      checked += assertConsistent("tasks message", message);
      assert.equal((message.data as { attempts: number }).attempts, 0);
      assert.match((message.data as { run_at: string }).run_at, ISO_MS);

      const lead = await call("POST", "/v1/leads", {
        name: "Time Format Cafe",
        source: "test-time-format",
        last_contacted: "2026-01-02T03:04:05+02:00",
      });
      leadId = lead.id;
      await call("POST", `/v1/leads/${lead.id}/notes`, { text: "Checked" });
      for (
        const path of [
          `/v1/tasks/${queued.task_id}`,
          "/v1/tasks?state=delayed&limit=5",
          `/v1/leads/${lead.id}`,
          "/v1/leads?source=test-time-format",
          `/v1/leads/${lead.id}/history`,
          "/v1/ws/clients",
        ]
      ) {
        checked += assertConsistent(path, await call("GET", path));
      }
      assert.ok(checked >= 15, `only ${checked} time fields seen`);
    } finally {
      await client.close();
      if (leadId) {
        await deps.sql.query("DELETE FROM lead_events WHERE lead_id = $1", [leadId]);
        await deps.sql.query("DELETE FROM businesses WHERE id = $1", [leadId]);
      }
      await hub.stop();
      await server.shutdown();
    }
  },
});
