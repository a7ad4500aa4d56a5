/**
 * Structured JSON logs: one line per event, with context fields (request id,
 * task id) carried by child loggers. No global logger: each process builds one
 * in its composition root and passes it down.
 *
 * @module
 */

/** Log levels, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A structured logger. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every line. */
  child(fields: Record<string, unknown>): Logger;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** @default "info" */
  level?: LogLevel;
  /** Fields on every line, e.g. `{ service: "edge" }`. */
  fields?: Record<string, unknown>;
  /** Where lines go. @default a writer to stdout */
  write?: (line: string) => void;
  /** Clock. @default Date.now */
  now?: () => number;
}

/** Errors are not JSON-serialisable by default; keep name, message, code and the cause chain. */
function serialise(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    if (value.cause !== undefined && depth < 3) out.cause = serialise(value.cause, depth + 1);
    return out;
  }
  return value;
}

/** Creates a JSON-lines logger. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? "info"];
  const now = options.now ?? Date.now;
  const encoder = new TextEncoder();
  const write = options.write ??
    ((line: string) => Deno.stdout.writeSync(encoder.encode(line + "\n")));

  function make(base: Record<string, unknown>): Logger {
    const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
      if (ORDER[level] < min) return;
      const entry: Record<string, unknown> = {
        time: new Date(now()).toISOString(),
        level,
        msg,
        ...base,
      };
      for (const [k, v] of Object.entries(fields ?? {})) entry[k] = serialise(v);
      write(JSON.stringify(entry));
    };
    return {
      debug: (m, f) => emit("debug", m, f),
      info: (m, f) => emit("info", m, f),
      warn: (m, f) => emit("warn", m, f),
      error: (m, f) => emit("error", m, f),
      child: (fields) => make({ ...base, ...fields }),
    };
  }
  return make({ ...options.fields });
}
