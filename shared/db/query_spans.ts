/**
 * One OpenTelemetry CLIENT span per Postgres statement (exported by Deno's
 * built-in OpenTelemetry when OTEL_DENO=true; a no-op otherwise). The span
 * carries `db.system=postgresql` and the statement's operation (`SELECT`,
 * `INSERT`, …) or its prepared-statement name, never its text's values or its
 * parameters: those can hold personal data (emails, names).
 *
 * @module
 */
import { type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";

const TRACER = "pleasant-cove-postgres";
const OPERATIONS = new Set([
  "SELECT",
  "INSERT",
  "UPDATE",
  "DELETE",
  "WITH",
  "BEGIN",
  "COMMIT",
  "ROLLBACK",
  "SAVEPOINT",
  "RELEASE",
  "CALL",
  "CREATE",
  "ALTER",
  "DROP",
  "SET",
  "LOCK",
  "REFRESH",
  "TRUNCATE",
  "COPY",
  "ANALYZE",
  "VACUUM",
]);

/** The operation of a statement: its first keyword when known, else "OTHER". */
export function statementOperation(text: string): string {
  const word = /^\s*(?:--[^\n]*\n\s*)*([A-Za-z]+)/.exec(text)?.[1]?.toUpperCase() ?? "";
  return OPERATIONS.has(word) ? word : "OTHER";
}

type Query = (...args: unknown[]) => unknown;

/**
 * Wraps `client.query` so that each promise-style call runs in a span.
 * Callback-style calls (and cursor/stream submittables) pass through untraced.
 */
export function traceQueries(client: { query: Query }): void {
  const tracer = trace.getTracer(TRACER);
  const original = client.query.bind(client);
  client.query = function tracedQuery(...args: unknown[]) {
    const first = args[0] as string | { text?: unknown; name?: unknown; submit?: unknown };
    if (typeof args.at(-1) === "function" || (typeof first === "object" && first?.submit)) {
      return original(...args);
    }
    const text = typeof first === "string" ? first : String(first?.text ?? "");
    const operation = statementOperation(text);
    const name = typeof first === "object" && typeof first?.name === "string" ? first.name : null;
    return tracer.startActiveSpan(`postgres ${name ?? operation}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        "db.system": "postgresql",
        "db.operation.name": operation,
        ...(name ? { "db.statement.name": name } : {}),
      },
    }, async (span: Span) => {
      try {
        return await (original(...args) as Promise<unknown>);
      } catch (err) {
        // The driver's message names the failure, not the parameters.
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name ?? "Error" });
        throw err;
      } finally {
        span.end();
      }
    });
  };
}
