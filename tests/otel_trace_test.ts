/**
 * Deno's built-in OpenTelemetry really exports: an edge and a worker run as
 * processes with OTEL_DENO=true and export OTLP/HTTP (JSON encoding) to a
 * receiver this test starts on loopback. One request's trace goes
 * `handle_api_request` → `authenticate` / `rate_limit_check` /
 * `forward_to_service` → `redis idempotency_enqueue` (the route's one script:
 * Idempotency-Key, enqueue, stored answer), and the worker's `task noop` span
 * links to the span that enqueued it. Postgres statements and Redis scripts
 * get their own CLIENT spans, without parameters.
 */
import assert from "node:assert/strict";
import { migrateStack } from "../dev/migrate_stack.ts";
import { settingsToEnv, startStack } from "../dev/stack.ts";
import { mintDevToken } from "../dev/token.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { AppProcess, startEdge } from "../testing/process.ts";
import { waitForValue } from "../testing/wait.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
  links?: { traceId: string; spanId: string }[];
}

type Exported = OtlpSpan & { service: string };

/** A loopback OTLP/HTTP receiver keeping the spans POSTed to /v1/traces. */
function otlpReceiver() {
  const spans: Exported[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    if (new URL(req.url).pathname !== "/v1/traces") {
      await req.body?.cancel();
      return new Response("{}", { headers: { "content-type": "application/json" } });
    }
    const body = await req.json();
    for (const rs of body.resourceSpans ?? []) {
      const service = rs.resource?.attributes?.find((a: { key: string }) =>
        a.key === "service.name"
      )?.value?.stringValue ?? "";
      for (const ss of rs.scopeSpans ?? []) {
        for (const span of ss.spans ?? []) spans.push({ ...span, service });
      }
    }
    return new Response("{}", { headers: { "content-type": "application/json" } });
  });
  return { spans, url: `http://127.0.0.1:${server.addr.port}`, stop: () => server.shutdown() };
}

function attr(span: OtlpSpan, key: string): unknown {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  return v ? Object.values(v)[0] : undefined;
}

Deno.test({
  name: "edge and worker export one trace over OTLP/HTTP: request, gateway stages, enqueue, task",
  // The stack's pools and the child processes' pipes close asynchronously.
  ...noSanitizers,
  async fn() {
    // A private stack: no other suite's worker may claim this test's task.
    await using stack = await startStack();
    await migrateStack(stack.settings);
    const receiver = otlpReceiver();
    const base = {
      ...settingsToEnv(stack.settings),
      APP_ENV: "test",
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_DENO_CONSOLE: "ignore",
      // Export every 200 ms instead of 5 s (the batch processor's standard variable).
      OTEL_BSP_SCHEDULE_DELAY: "200",
    };
    const worker = new AppProcess("workers/main.ts", { ...base, OTEL_SERVICE_NAME: "pc-worker" });
    let edge: AppProcess | null = null;
    try {
      const started = await startEdge({ ...base, OTEL_SERVICE_NAME: "pc-edge" });
      edge = started.edge;
      await worker.waitForLog("worker ready", 30_000);
      const token = await mintDevToken(parseConfig(base).auth, { sub: "sa:minerva" });
      const res = await fetch(`${started.url}/v1/tasks`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          "idempotency-key": crypto.randomUUID(),
        },
        body: JSON.stringify({ type: "noop", payload: { echo: "traced" } }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const { task_id: id } = await res.json();

      const spans = receiver.spans;
      const root = await waitForValue(
        () =>
          spans.find((s) =>
            s.name === "handle_api_request" && attr(s, "http.route") === "/v1/tasks" &&
            attr(s, "http.method") === "POST"
          ),
        { what: "the request's handle_api_request span", timeoutMs: 60_000, everyMs: 100 },
      );
      assert.equal(root.service, "pc-edge");
      const inTrace = () => spans.filter((s) => s.traceId === root.traceId);
      const child = (name: string) =>
        inTrace().find((s) => s.name === name && s.parentSpanId === root.spanId);
      for (const stage of ["authenticate", "rate_limit_check", "forward_to_service"]) {
        await waitForValue(() => child(stage), {
          what: `${stage} under handle_api_request`,
          timeoutMs: 60_000,
          everyMs: 100,
        });
      }
      // Deno's own server span is the root's parent and now knows the route.
      const server = await waitForValue(
        () => inTrace().find((s) => s.spanId === root.parentSpanId),
        { what: "Deno's server span", timeoutMs: 60_000, everyMs: 100 },
      );
      assert.equal(server.kind, 2);
      assert.equal(attr(server, "http.route"), "/v1/tasks");
      assert.equal(server.name, "POST /v1/tasks");
      // The enqueue script (with the Idempotency-Key: enqueue_keyed.lua) ran in a span named
      // by its script, inside the trace.
      const enqueue = await waitForValue(
        () => inTrace().find((s) => s.name === "redis idempotency_enqueue"),
        {
          what: "the enqueue script span",
          timeoutMs: 60_000,
          everyMs: 100,
        },
      );
      assert.equal(attr(enqueue, "db.system"), "redis");
      assert.equal(enqueue.kind, 3);

      // The worker's task span (its own trace) links to the enqueuing span.
      const task = await waitForValue(
        () => spans.find((s) => s.name === "task noop" && attr(s, "task.id") === id),
        { what: "the worker's task span", timeoutMs: 60_000, everyMs: 100 },
      );
      assert.equal(task.service, "pc-worker");
      assert.equal(attr(task, "task.id"), id);
      assert.equal(task.links?.length, 1);
      assert.equal(task.links![0]!.traceId, root.traceId);
      assert.ok(
        inTrace().some((s) => s.spanId === task.links![0]!.spanId),
        "the link points at a span of the request's trace",
      );

      // Postgres statements: db.system and operation, never the text or parameters.
      const pg = await waitForValue(
        () => spans.find((s) => attr(s, "db.system") === "postgresql"),
        { what: "a Postgres span", timeoutMs: 60_000, everyMs: 100 },
      );
      assert.equal(pg.kind, 3);
      assert.match(pg.name, /^postgres [A-Z_a-z]+$/);
      assert.ok(typeof attr(pg, "db.operation.name") === "string");
      const texts = (pg.attributes ?? []).map((a) => JSON.stringify(a.value));
      assert.ok(!texts.some((t) => /\$1|SELECT 1/.test(t)), JSON.stringify(pg.attributes));
    } finally {
      await edge?.stop("SIGTERM");
      await worker.stop("SIGTERM");
      await receiver.stop();
    }
  },
});
