/**
 * A logger that keeps what it writes, for tests that assert on log lines.
 *
 * @module
 */
import { createLogger, type Logger } from "../shared/log.ts";

/** What {@linkcode memoryLog} returns. */
export interface MemoryLog {
  log: Logger;
  /** Every line, parsed. */
  lines: Record<string, unknown>[];
  /** Every line as written (one JSON object each). */
  text: string[];
}

/** A debug-level logger that keeps its lines in memory. */
export function memoryLog(): MemoryLog {
  const lines: Record<string, unknown>[] = [];
  const text: string[] = [];
  const log = createLogger({
    level: "debug",
    write: (l) => {
      text.push(l);
      lines.push(JSON.parse(l));
    },
  });
  return { log, lines, text };
}
