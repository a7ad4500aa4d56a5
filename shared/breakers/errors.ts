/**
 * Errors a breaker throws. Each has a stable `name` and `code`; classify by
 * them as well as `instanceof` (errors lose their class across processes).
 *
 * @module
 */
import { AppError } from "../errors.ts";

/** A call was refused without reaching the downstream. */
export class BreakerOpenError extends AppError {
  override name = "BreakerOpenError";
  /** The breaker that refused. */
  readonly breaker: string;
  /** State that refused: "open", "half_open" (probe in flight) or "forced_open". */
  readonly state: string;
  /**
   * Milliseconds until a call may be let through again (the next probe);
   * null when an operator forced the breaker open.
   */
  readonly retryAfterMs: number | null;

  constructor(breaker: string, state: string, retryAfterMs: number | null) {
    const when = retryAfterMs === null
      ? "until an operator resets it"
      : `retry after ${retryAfterMs}ms`;
    super("breaker-open", 503, `Circuit breaker "${breaker}" is ${state}: ${when}`, {
      details: { breaker, state, retryAfterMs },
    });
    this.breaker = breaker;
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The downstream answered 429 with `Retry-After`: wait, this is not a failure. */
export class BreakerThrottledError extends AppError {
  override name = "BreakerThrottledError";
  readonly breaker: string;
  /** Milliseconds the downstream asked callers to wait. */
  readonly retryAfterMs: number;
  /** The 429 response (body unread). */
  readonly response: Response | null;

  constructor(breaker: string, retryAfterMs: number, response: Response | null = null) {
    super(
      "breaker-throttled",
      429,
      `Downstream "${breaker}" is throttling: retry after ${retryAfterMs}ms`,
      { details: { breaker, retryAfterMs } },
    );
    this.breaker = breaker;
    this.retryAfterMs = retryAfterMs;
    this.response = response;
  }
}

/** A call through the breaker did not settle within its timeout; counted as a failure. */
export class BreakerTimeoutError extends AppError {
  override name = "BreakerTimeoutError";
  readonly breaker: string;
  readonly timeoutMs: number;

  constructor(breaker: string, timeoutMs: number, options: { cause?: unknown } = {}) {
    super(
      "breaker-timeout",
      504,
      `Call through breaker "${breaker}" timed out after ${timeoutMs}ms`,
      {
        ...options,
        details: { breaker, timeoutMs },
      },
    );
    this.breaker = breaker;
    this.timeoutMs = timeoutMs;
  }
}
