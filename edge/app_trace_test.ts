// Own file: it installs a global tracer provider and context manager, which
// must not leak into other suites.
import assert from "node:assert/strict";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { mintDevToken } from "../dev/token.ts";
import { useTestStack } from "../testing/stack.ts";
import { createQueue } from "../shared/queue/queue.ts";
import { TASK_CATALOG } from "../shared/tasks/catalog.ts";
import { createApp } from "./app.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

Deno.test({
  name:
    "each request runs in handle_api_request with authenticate, rate_limit_check and forward_to_service children",
  // Deps hold a Neon Pool (async socket teardown).
  ...noSanitizers,
  async fn() {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    assert.ok(trace.setGlobalTracerProvider(provider), "run without OTEL_DENO");
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    try {
      await using stack = await useTestStack();
      const deps = stack.makeDeps();
      const queue = createQueue(deps.redis, TASK_CATALOG, {
        namespace: `tr${crypto.randomUUID().slice(0, 6)}`,
      });
      const app = createApp(deps, { queue });
      const token = await mintDevToken(deps.config.auth, { sub: "sa:minerva" });
      const res = await app.request(`/v1/tasks/${crypto.randomUUID()}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 404);
      await res.body?.cancel();

      const spans = exporter.getFinishedSpans();
      const root = spans.find((s) => s.name === "handle_api_request");
      assert.ok(root, `spans: ${spans.map((s) => s.name)}`);
      assert.deepEqual(
        {
          method: root.attributes["http.method"],
          route: root.attributes["http.route"],
          status: root.attributes["http.status_code"],
          user: root.attributes["user.id"],
        },
        { method: "GET", route: "/v1/tasks/:id", status: 404, user: "sa:minerva" },
      );
      const rootId = root.spanContext().spanId;
      const children = spans.filter((s) => s.parentSpanContext?.spanId === rootId).map((s) =>
        s.name
      );
      for (const name of ["authenticate", "rate_limit_check", "authorize", "forward_to_service"]) {
        assert.ok(children.includes(name), `${name} is a child of the request span: ${children}`);
      }
      // Background work (e.g. script calls outside any request) has traces of its own.
      const stages = new Set([
        "authenticate",
        "rate_limit_check",
        "authorize",
        "forward_to_service",
      ]);
      assert.ok(
        spans.filter((s) => stages.has(s.name)).every((s) =>
          s.spanContext().traceId === root.spanContext().traceId
        ),
      );

      exporter.reset();
      const denied = await app.request("/v1/me", {
        headers: { authorization: "Bearer not.a.jwt" },
      });
      assert.equal(denied.status, 401);
      await denied.body?.cancel();
      const authSpan = exporter.getFinishedSpans().find((s) => s.name === "authenticate");
      assert.equal(authSpan?.attributes["http.status_code"], 401);
      assert.equal(exporter.getFinishedSpans().some((s) => s.name === "forward_to_service"), false);
    } finally {
      trace.disable();
      context.disable();
      await provider.shutdown();
    }
  },
});
