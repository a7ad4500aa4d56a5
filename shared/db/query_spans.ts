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

/** Bounded classes of failed database calls (`postgres_errors_total{operation}`). */
export const DB_ERROR_CLASSES = ["query", "transaction", "connect"] as const;
/** One of {@linkcode DB_ERROR_CLASSES}. */
export type DbErrorClass = typeof DB_ERROR_CLASSES[number];

const TRANSACTION_CONTROL = new Set(["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"]);

/** The error class of a failed statement: transaction control or any other query. */
export function statementErrorClass(operation: string): DbErrorClass {
  return TRANSACTION_CONTROL.has(operation) ? "transaction" : "query";
}

/**
 * Wraps `client.query` so that each promise-style call runs in a span, and
 * reports each failed one to `onError` by class (never its text).
 * Callback-style calls are counted but not traced; cursor/stream
 * submittables pass through.
 */
export function traceQueries(
  client: { query: Query },
  onError?: (errorClass: DbErrorClass) => void,
): void {
  const tracer = trace.getTracer(TRACER);
  const original = client.query.bind(client);
  client.query = function tracedQuery(...args: unknown[]) {
    const first = args[0] as string | { text?: unknown; name?: unknown; submit?: unknown };
    if (typeof first === "object" && first?.submit) return original(...args);
    const text = typeof first === "string" ? first : String(first?.text ?? "");
    const operation = statementOperation(text);
    const callback = args.at(-1);
    if (typeof callback === "function") {
      // The pool's own query() calls its client this way: counted, not traced.
      if (!onError) return original(...args);
      return original(...args.slice(0, -1), (err: unknown, ...rest: unknown[]) => {
        if (err) onError(statementErrorClass(operation));
        return callback(err, ...rest);
      });
    }
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
        onError?.(statementErrorClass(operation));
        throw err;
      } finally {
        span.end();
      }
    });
  };
}
