/**
 * Tells a Redis outage from a bug, for the app's error handler: a request
 * that failed because Redis (through its REST endpoint) could not be reached
 * is the documented degraded answer, 503 with Retry-After, not a 500. Found
 * by `deno task chaos` (docs/reliability.md): with redis-server stopped,
 * `GET /v1/tasks/:id` and the Idempotency-Key completion answered 500.
 *
 * @module
 */

/** Failures of reaching Redis: the transport, or the endpoint saying Redis is away. */
const UNREACHABLE =
  /unavailable|ECONNREFUSED|ECONNRESET|EPIPE|connection (refused|reset|closed)|error sending request|fetch failed|timed? ?out/i;

/**
 * True for an error of the Redis client that says Redis could not be
 * reached: the SDK's `UpstashError` carrying the endpoint's "unavailable"
 * answer, or the fetch TypeError of a refused or reset connection. Script
 * and argument errors (a bug) stay false.
 */
export function isRedisUnreachable(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const { name, message } = err as { name?: unknown; message?: unknown };
  if (typeof message !== "string") return false;
  if (name === "UpstashError") return UNREACHABLE.test(message) && !/^ERR |NOSCRIPT/.test(message);
  return name === "TypeError" && UNREACHABLE.test(message);
}
