/**
 * Typed errors shared by edge and workers. Each carries a stable `code` (used
 * in problem+json bodies and logs) and an HTTP status for the edge.
 *
 * Classify by `name`/`code` as well as `instanceof`: errors lose their class
 * when they cross a process boundary or are serialised.
 *
 * @module
 */

/** Base class of every error the application means to surface. */
export class AppError extends Error {
  override name = "AppError";
  /** Stable, machine-readable code, e.g. "not-found". */
  readonly code: string;
  /** HTTP status the edge answers with. */
  readonly status: number;
  /** Extra members for the problem+json body (never secrets). */
  readonly details: Record<string, unknown>;

  constructor(
    code: string,
    status: number,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = status;
    this.details = options.details ?? {};
  }
}

/** A dependency (Redis, Postgres) did not answer in time or failed. */
export class DependencyUnavailableError extends AppError {
  override name = "DependencyUnavailableError";
  constructor(
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super("dependency-unavailable", 503, message, options);
  }
}

/** The configuration is invalid; `problems` lists every variable at fault. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
  }
}
