// Own file: it installs a global tracer provider, propagator and context
// manager, which must not leak into other suites.
import assert from "node:assert/strict";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { useTestStack } from "../testing/stack.ts";
import { testQueue, waitForTasks } from "../testing/queue.ts";
import { Runner } from "./runner.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

Deno.test({
  name: "enqueue stores the W3C traceparent and the worker's task span links to it",
  // Deps hold a Neon Pool and the runner an SSE subscription (async teardown).
  ...noSanitizers,
  async fn() {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const contextManager = new AsyncLocalStorageContextManager().enable();
    assert.ok(trace.setGlobalTracerProvider(provider), "run without OTEL_DENO");
    context.setGlobalContextManager(contextManager);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const q = testQueue(deps.redis);
    try {
      const tracer = trace.getTracer("test");
      let requestSpanContext;
      const { id } = await tracer.startActiveSpan("POST /v1/things", async (span) => {
        requestSpanContext = span.spanContext();
        try {
          return await q.enqueue("echo", { n: 1 });
        } finally {
          span.end();
        }
      });
      const info = await q.getTask(id);
      assert.equal(
        info?.traceparent,
        `00-${requestSpanContext!.traceId}-${requestSpanContext!.spanId}-01`,
      );

      const runner = new Runner({ queue: q, deps, handlers: { echo: () => "ok" }, pollMs: 100 });
      runner.start();
      await waitForTasks(q, [id], (t) => t.status === "succeeded", { everyMs: 10 });
      await runner.stop();
      const taskSpan = exporter.getFinishedSpans().find((s) => s.name === "task echo");
      assert.ok(taskSpan, "the task ran in a span");
      assert.equal(taskSpan.kind, SpanKind.CONSUMER);
      assert.equal(taskSpan.attributes["task.id"], id);
      assert.deepEqual(taskSpan.links.map((l) => l.context.spanId), [requestSpanContext!.spanId]);
      assert.equal(taskSpan.links[0]!.context.traceId, requestSpanContext!.traceId);
    } finally {
      trace.disable();
      context.disable();
      propagation.disable();
      await provider.shutdown();
    }
  },
});
