/**
 * HTTP-aware outcome classification, so that no caller writes a predicate:
 * 5xx, timeouts and connection errors are failures; 4xx shows a downstream
 * that works (a success when `exclude_client_errors`); 429 is neither, and
 * its `Retry-After` is surfaced to the caller instead.
 *
 * A breaker counts only failures of the dependency it guards. An exception
 * raised by the platform's own code or caused by a caller's input (a
 * JavaScript engine error such as the RangeError of a stack overflow, a typed
 * AppError below 500, a schema error) says nothing about the dependency: it
 * is `ignored`, and the route answers it as a bug (500) or a 4xx
 * (docs/security.md, "Breakers and caller input").
 *
 * @module
 */
import { AppError } from "../errors.ts";
import type { BreakerPolicy } from "./policy.ts";

/** Engine error classes other than TypeError: only code (ours or a library's) throws them. */
const ENGINE_ERRORS = [RangeError, ReferenceError, SyntaxError, EvalError, URIError];
/** How Deno's fetch (and clients built on it) reports an unreachable or failed connection. */
const FETCH_FAILURE = /^(fetch failed|error sending request|network error|Fetch failed)/;

/**
 * True when `err` comes from the platform's code or the caller's input, not
 * from a dependency: engine errors (a TypeError only when it is not a failed
 * fetch), AppErrors below 500 and zod's schema errors.
 */
export function isPlatformOrInputError(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  if (ENGINE_ERRORS.some((E) => err instanceof E)) return true;
  if (err instanceof TypeError) return !FETCH_FAILURE.test(err.message);
  if (err instanceof AppError) return err.status < 500;
  return (err as { name?: unknown }).name === "ZodError";
}

/** What one call says about the downstream's health. */
export type Outcome = "success" | "failure" | "ignored";

/** Postgres SQLSTATE classes caused by the request, not by the server's health. */
const CLIENT_SQLSTATE_CLASSES = new Set(["22", "23", "40", "42"]);

function statusOf(err: object): number | null {
  for (const field of ["status", "statusCode"]) {
    const v = (err as Record<string, unknown>)[field];
    if (typeof v === "number" && Number.isInteger(v)) return v;
  }
  const response = (err as { response?: unknown }).response;
  if (response instanceof Response) return response.status;
  return null;
}

/** Classifies an HTTP status code. */
export function classifyStatus(
  status: number,
  policy: Pick<BreakerPolicy, "exclude_client_errors">,
): Outcome {
  if (status >= 500) return "failure";
  if (status === 429) return "ignored";
  if (status >= 400) return policy.exclude_client_errors ? "success" : "failure";
  return "success";
}

/**
 * Classifies an error thrown by a call. `callerAborted` is true when the
 * caller's own signal aborted: the caller gave up, the downstream did not fail.
 */
export function classifyError(
  err: unknown,
  policy: Pick<BreakerPolicy, "exclude_client_errors">,
  callerAborted = false,
): Outcome {
  if (callerAborted) return "ignored";
  if (typeof err !== "object" || err === null) return "failure";
  if (isPlatformOrInputError(err)) return "ignored";
  const name = (err as { name?: unknown }).name;
  // A nested breaker refusing, or a throttled downstream, says nothing about this one.
  if (name === "BreakerOpenError" || name === "BreakerThrottledError") return "ignored";
  if (name === "BreakerTimeoutError" || name === "TimeoutError") return "failure";
  const status = statusOf(err);
  if (status !== null && status >= 100 && status < 600) {
    return classifyStatus(status, policy);
  }
  const code = (err as { code?: unknown }).code;
  if (
    policy.exclude_client_errors && typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) &&
    CLIENT_SQLSTATE_CLASSES.has(code.slice(0, 2))
  ) {
    return "success";
  }
  return "failure";
}

/**
 * Milliseconds a `Retry-After` value asks for (delta-seconds or an HTTP
 * date), or null when absent or unparsable.
 */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}
