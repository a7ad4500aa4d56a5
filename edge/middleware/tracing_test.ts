// Own file: one test installs a global tracer provider, which must not leak
// into other suites (it is removed again with trace.disable()).
import assert from "node:assert/strict";
import { Hono } from "hono";
import { trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { forwardSpan, requestSpan, traced, tracingActive } from "./tracing.ts";

/** An app with every tracing middleware: one stage answers 401, the other passes. */
function app(): { app: Hono; ran: string[] } {
  const ran: string[] = [];
  const a = new Hono();
  a.use(requestSpan());
  a.use(traced("authenticate", async (c, next) => {
    ran.push("authenticate");
    if (c.req.header("authorization") === undefined) return c.json({ code: "x" }, 401);
    await next();
  }));
  a.use(forwardSpan());
  a.get("/v1/me", (c) => {
    ran.push("route");
    return c.json({ ok: true });
  });
  return { app: a, ran };
}

Deno.test("the tracing middleware only calls through when no tracer provider is registered", async () => {
  assert.equal(tracingActive(), false, "run without OTEL_DENO");
  const { app: a, ran } = app();
  const ok = await a.request("/v1/me", { headers: { authorization: "Bearer t" } });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { ok: true });
  // A stage that answers itself still answers, and nothing downstream runs.
  const denied = await a.request("/v1/me");
  assert.equal(denied.status, 401);
  await denied.body?.cancel();
  assert.deepEqual(ran, ["authenticate", "route", "authenticate"]);
});

Deno.test({
  name:
    "the tracing middleware records spans once a provider is registered after the app was built",
  // The SDK's in-memory exporter starts timers of its own that outlive the test.
  ...noSanitizers,
  async fn() {
    const { app: a } = app();
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    assert.ok(trace.setGlobalTracerProvider(provider), "run without OTEL_DENO");
    try {
      assert.equal(tracingActive(), true);
      const res = await a.request("/v1/me", { headers: { authorization: "Bearer t" } });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const denied = await a.request("/v1/me");
      assert.equal(denied.status, 401);
      await denied.body?.cancel();
      const spans = exporter.getFinishedSpans().map((
        s,
      ) => [s.name, s.attributes["http.status_code"]]);
      assert.deepEqual(spans.sort(), [
        ["authenticate", undefined],
        ["authenticate", 401],
        ["forward_to_service", undefined],
        ["handle_api_request", 200],
        ["handle_api_request", 401],
      ]);
    } finally {
      trace.disable();
      await provider.shutdown();
    }
    assert.equal(tracingActive(), false);
  },
});
