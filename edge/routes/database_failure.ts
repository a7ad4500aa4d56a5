/**
 * A database that fails (not refuses: that is the breaker's answer) is 503
 * `dependency-unavailable` with `Retry-After`, never an opaque 500. Shared by
 * the lead, analytics, event, outreach and appointment routes.
 *
 * @module
 */
import type { Context } from "hono";
import { isPlatformOrInputError } from "../../shared/breakers/classify.ts";
import { DependencyUnavailableError } from "../../shared/errors.ts";
import { problem } from "../problem.ts";

/** Retry hint of a failed (not refused) query: long enough for a short hiccup to pass. */
export const FAILURE_RETRY_S = 5;

/**
 * True when `err` says the database is unwell. A status below 500 is a refusal of the domain
 * or the request (the database answered); SQLSTATE classes 22/23/42 are a bug in the query
 * this code built, and an engine error (a stack overflow on a caller's deep JSON, a
 * TypeError in our code) is a bug of the platform: a logged 500, not an outage.
 */
export function isDatabaseFailure(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return true;
  if (isPlatformOrInputError(err)) return false;
  const status = (err as { status?: unknown }).status;
  if (typeof status === "number" && status < 500) return false;
  const code = (err as { code?: unknown }).code;
  return !(typeof code === "string" && /^(22|23|42)[0-9A-Z]{3}$/.test(code));
}

/**
 * The 503 for a database failure, with `detail` saying what did not answer;
 * anything else is rethrown to the app's error handler. A request the
 * client already gave up on gets the 503 too: nobody reads it, but the
 * idempotency middleware does, and a 500 there would be stored and replayed
 * to every retry of the key (found by `deno task chaos`: an edge paused past
 * the client's timeout turned one lead write into a day of 500s).
 */
export function databaseFailed(c: Context, err: unknown, detail: string): Response {
  if (!isDatabaseFailure(err)) throw err;
  c.get("log")?.warn("database query failed", {
    err,
    path: c.req.path,
    client_aborted: c.req.raw.signal.aborted,
  });
  return problem(c, {
    code: "dependency-unavailable",
    status: 503,
    title: "Database temporarily unavailable",
    detail: `${detail}; retry after the Retry-After delay`,
    retry_after: FAILURE_RETRY_S,
  }, { "Retry-After": String(FAILURE_RETRY_S) });
}

/**
 * Runs `op` (a route's database reads before it hands work on): a database
 * failure is thrown as 503 `dependency-unavailable`, which the app answers
 * with `Retry-After` and the idempotency middleware does not store, so the
 * client's retry runs again once the database is back; anything else (a
 * domain refusal, a bug) is rethrown as it is. Found by `deno task chaos`: a
 * connection that Postgres terminated (57P01) was an opaque 500, stored under
 * the request's Idempotency-Key and replayed to every retry.
 */
export async function orDatabaseUnavailable<T>(
  c: Context,
  detail: string,
  op: () => Promise<T>,
): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (!isDatabaseFailure(err)) throw err;
    c.get("log")?.warn("database query failed", {
      err,
      path: c.req.path,
      client_aborted: c.req.raw.signal.aborted,
    });
    throw new DependencyUnavailableError(`${detail}; retry after the Retry-After delay`, {
      cause: err,
      details: { retry_after: FAILURE_RETRY_S },
    });
  }
}
