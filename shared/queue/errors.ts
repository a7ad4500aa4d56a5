/**
 * Typed queue errors. Enqueue-side errors are AppErrors (the edge answers
 * them as problem+json); `PermanentTaskError` is what a handler throws to skip
 * retries. Classify by `name` as well as `instanceof` (errors cross processes).
 *
 * @module
 */
import { AppError } from "../errors.ts";

/** The task type is not in the catalog. */
export class UnknownTaskTypeError extends AppError {
  override name = "UnknownTaskTypeError";
  constructor(type: string, known: string[]) {
    super("unknown-task-type", 422, `Unknown task type "${type}"`, {
      details: { task_type: type, known_types: known },
    });
  }
}

/** One invalid payload field. */
export interface FieldProblem {
  path: string;
  message: string;
}

/** The payload (or the enqueue options) failed validation; nothing was written. */
export class TaskValidationError extends AppError {
  override name = "TaskValidationError";
  readonly fields: FieldProblem[];
  constructor(type: string, fields: FieldProblem[], what = "payload") {
    super(
      "invalid-task-payload",
      422,
      `Invalid ${what} for task "${type}": ${
        fields.map((f) => `${f.path || "(root)"}: ${f.message}`).join("; ")
      }`,
      { details: { task_type: type, fields } },
    );
    this.fields = fields;
  }
}

/** The serialised payload is larger than the configured limit. */
export class PayloadTooLargeError extends AppError {
  override name = "PayloadTooLargeError";
  constructor(type: string, bytes: number, limit: number) {
    super(
      "task-payload-too-large",
      413,
      `Payload for task "${type}" is ${bytes} bytes; the limit is ${limit}`,
      { details: { task_type: type, bytes, limit } },
    );
  }
}

/** Thrown by a handler for a failure that retrying cannot fix: the task goes to the DLQ at once. */
export class PermanentTaskError extends Error {
  override name = "PermanentTaskError";
}

/** True for a PermanentTaskError, also when it lost its class crossing a boundary. */
export function isPermanent(err: unknown): boolean {
  return err instanceof PermanentTaskError ||
    (typeof err === "object" && err !== null &&
      (err as { name?: unknown }).name === "PermanentTaskError");
}

/**
 * Why a running task's signal aborted: its timeout passed. Recorded as the
 * attempt's error, so the task is retried (or dead-lettered) as any failure.
 */
export class TaskTimeoutError extends Error {
  override name = "TaskTimeoutError";
  constructor(timeoutMs: number) {
    super(`Timed out after ${timeoutMs} ms`);
  }
}

/**
 * Why a running task's signal aborted: its lease was lost (renewal refused,
 * another worker may have claimed the task), so its result would be fenced off.
 */
export class LeaseLostError extends Error {
  override name = "LeaseLostError";
  constructor() {
    super("Lease lost");
  }
}

/**
 * Why a running task's signal aborted: the worker could not confirm its lease
 * before the next heartbeat (renewals failing, or the process was paused), so
 * it stops before Redis can hand the task to another worker.
 */
export class LeaseExpiredError extends Error {
  override name = "LeaseExpiredError";
  constructor() {
    super("Lease not confirmed in time");
  }
}

/**
 * Why a running task's signal aborted: the worker is shutting down and the
 * grace period is over; the task goes back to the front of its queue.
 */
export class ShutdownError extends Error {
  override name = "ShutdownError";
  constructor() {
    super("Worker shutting down");
  }
}

/**
 * Thrown by a handler that could not run NOW for a reason that is not a
 * failure of the task (another holder of a resource it needs, a downstream
 * that asked to wait): the attempt is given back and the task retried after
 * `retryAfterMs`. Breaker refusals (`BreakerOpenError`) are treated the same.
 */
export class DeferredTaskError extends Error {
  override name = "DeferredTaskError";
  readonly retryAfterMs: number;

  constructor(message: string, retryAfterMs: number, options?: { cause?: unknown }) {
    super(message, options);
    this.retryAfterMs = retryAfterMs;
  }
}

/** True for a DeferredTaskError or a breaker refusal, also across module copies. */
export function isDeferred(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const name = (err as { name?: unknown }).name;
  return name === "DeferredTaskError" || name === "BreakerOpenError";
}
