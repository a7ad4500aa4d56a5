/**
 * One OpenTelemetry CLIENT span per Postgres statement (exported by Deno's
 * built-in OpenTelemetry when OTEL_DENO=true; a no-op otherwise). The span
 * carries `db.system=postgresql` and the statement's operation (`SELECT`,
 * `INSERT`, …) or its prepared-statement name, never its text's values or its
 * parameters: those can hold personal data (emails, names).
 *
 * @module
 */
import { context, type Span, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";

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

/** The span of one statement: name and attributes, never its text or values. */
function statementSpan(first: unknown): {
  name: string;
  operation: string;
  attributes: Record<string, string>;
} {
  const config = first as string | { text?: unknown; name?: unknown };
  const text = typeof config === "string" ? config : String(config?.text ?? "");
  const operation = statementOperation(text);
  const named = typeof config === "object" && typeof config?.name === "string" ? config.name : null;
  return {
    name: `postgres ${named ?? operation}`,
    operation,
    attributes: {
      "db.system": "postgresql",
      "db.operation.name": operation,
      ...(named ? { "db.statement.name": named } : {}),
    },
  };
}

function failed(span: Span, err: unknown): void {
  // The driver's message names the failure, not the parameters; the span keeps only its class.
  span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name ?? "Error" });
}

type Callback = (err: unknown, ...rest: unknown[]) => unknown;

/**
 * Wraps `client.query` so that every statement runs in a CLIENT span —
 * promise-style calls, callback-style calls (how `pool.query()` calls its
 * client) and a query config's `callback` alike — and reports each failed
 * one to `onError` by class (never its text). Cursor/stream submittables
 * (none in this code base) pass through untraced.
 */
export function traceQueries(
  client: { query: Query },
  onError?: (errorClass: DbErrorClass) => void,
): void {
  const tracer = trace.getTracer(TRACER);
  const original = client.query.bind(client);
  client.query = function tracedQuery(...args: unknown[]) {
    const first = args[0] as { submit?: unknown; callback?: unknown } | string | undefined;
    if (typeof first === "object" && first?.submit) return original(...args);
    const statement = statementSpan(first);
    const options = { kind: SpanKind.CLIENT, attributes: statement.attributes };
    const last = args.at(-1);
    const configCallback = typeof first === "object" && typeof first?.callback === "function"
      ? first.callback as Callback
      : null;
    if (typeof last === "function" || configCallback) {
      // Callback style: the span ends when the driver calls back.
      const span = tracer.startSpan(statement.name, options);
      const wrap = (callback: Callback): Callback => (err, ...rest) => {
        if (err) {
          failed(span, err);
          onError?.(statementErrorClass(statement.operation));
        }
        span.end();
        return callback(err, ...rest);
      };
      try {
        if (typeof last === "function") {
          return original(...args.slice(0, -1), wrap(last as Callback));
        }
        return original(
          { ...(first as object), callback: wrap(configCallback!) },
          ...args.slice(1),
        );
      } catch (err) {
        // Thrown before the driver took the call (e.g. a client already released).
        failed(span, err);
        span.end();
        throw err;
      }
    }
    return tracer.startActiveSpan(statement.name, options, async (span: Span) => {
      try {
        return await (original(...args) as Promise<unknown>);
      } catch (err) {
        failed(span, err);
        onError?.(statementErrorClass(statement.operation));
        throw err;
      } finally {
        span.end();
      }
    });
  };
}

type Connect = (callback?: (...args: unknown[]) => unknown) => unknown;

/**
 * Runs the callback of `pool.connect(cb)` in the caller's trace context.
 * `pool.query()` checks a client out this way, and a new connection calls
 * back from its socket's events, outside the caller's context: its statement
 * span would start a trace of its own instead of joining the caller's.
 */
export function bindPoolContext(pool: { connect: Connect }): void {
  const original = pool.connect.bind(pool);
  pool.connect = function connectInContext(callback?: (...args: unknown[]) => unknown) {
    if (typeof callback !== "function") return original();
    return original(context.bind(context.active(), callback));
  };
}
