// Own file: it installs a global tracer provider and context manager, which
// must not leak into other suites.
import assert from "node:assert/strict";
import { context, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { startTestDatabase } from "../../testing/database.ts";

const SECRET = "alice.secret@example.com";

Deno.test("every Postgres call gets a span: pool.query(), client.query() by promise or callback, named statements; never the values", async () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  assert.ok(trace.setGlobalTracerProvider(provider), "run without OTEL_DENO");
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  await using db = await startTestDatabase();
  const pool = db.pool({ max: 2 });
  const tracer = trace.getTracer("test");
  try {
    const parent = await tracer.startActiveSpan("caller", async (span) => {
      // pool.query() hands its client a callback: the path that had no span.
      const { rows } = await pool.query("SELECT $1::text AS v", [SECRET]);
      assert.equal(rows[0].v, SECRET);
      await pool.query({ name: "pc_lookup", text: "SELECT $1::int + 1 AS n", values: [41] });
      await assert.rejects(pool.query("SELECT * FROM no_such_table WHERE x = $1", [SECRET]));
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await client.query("INSERT INTO no_such_table VALUES ($1)", [SECRET]).catch(() => {});
        await client.query("ROLLBACK");
        await client.query("CREATE TEMP TABLE pc_spans (v text)");
        // Callback style on a checked-out client.
        await new Promise<void>((resolve, reject) =>
          (client as unknown as {
            query: (t: string, v: unknown[], cb: (e: unknown) => void) => void;
          }).query("UPDATE pc_spans SET v = $1", [SECRET], (e) => e ? reject(e) : resolve())
        );
        // A query config carrying its own callback.
        await new Promise<void>((resolve, reject) =>
          (client as unknown as { query: (c: object) => void }).query({
            text: "DELETE FROM pc_spans WHERE v = $1",
            values: [SECRET],
            callback: (e: unknown) => e ? reject(e) : resolve(),
          })
        );
      } finally {
        client.release();
      }
      span.end();
      return span;
    });

    const spans = exporter.getFinishedSpans().filter((s) =>
      s.attributes["db.system"] === "postgresql"
    );
    const summary = spans.map((s) => ({
      name: s.name,
      operation: s.attributes["db.operation.name"],
      statement: s.attributes["db.statement.name"],
      error: s.status.code === SpanStatusCode.ERROR,
    }));
    assert.deepEqual(summary, [
      { name: "postgres SELECT", operation: "SELECT", statement: undefined, error: false },
      { name: "postgres pc_lookup", operation: "SELECT", statement: "pc_lookup", error: false },
      { name: "postgres SELECT", operation: "SELECT", statement: undefined, error: true },
      { name: "postgres BEGIN", operation: "BEGIN", statement: undefined, error: false },
      { name: "postgres INSERT", operation: "INSERT", statement: undefined, error: true },
      { name: "postgres ROLLBACK", operation: "ROLLBACK", statement: undefined, error: false },
      { name: "postgres CREATE", operation: "CREATE", statement: undefined, error: false },
      { name: "postgres UPDATE", operation: "UPDATE", statement: undefined, error: false },
      { name: "postgres DELETE", operation: "DELETE", statement: undefined, error: false },
    ]);
    const parentId = parent.spanContext().spanId;
    for (const s of spans) {
      assert.equal(s.parentSpanContext?.spanId, parentId, `${s.name} is a child of the caller`);
      assert.equal(s.kind, 2 /* CLIENT */);
    }
    // Neither the statement's values nor its text reach a span.
    const text = JSON.stringify(spans.map(exported));
    assert.ok(!text.includes("alice"), text);
    assert.ok(!text.includes("no_such_table"), text);
  } finally {
    await pool.end();
    await provider.shutdown();
  }
});

function exported(s: ReadableSpan) {
  return { name: s.name, attributes: s.attributes, status: s.status, events: s.events };
}
