/**
 * `setHeadersAfter(c, headers)`: adds headers to the response a middleware
 * finds after `await next()`.
 *
 * Hono's `c.header()` called on a finished response copies the whole
 * Response first, once per call (two copies per request for the rate-limit
 * headers, the largest single cost in the `/v1` chain: docs/benchmarks.md,
 * "Where the edge's µs go"). The response's own headers are mutable in all
 * but one case, a fetched Response passed through (the upstream proxy), so
 * they are set in place and the response is copied only then, once.
 *
 * @module
 */
import type { Context } from "hono";

/** Sets `headers` on `c.res`, in place where its headers allow it, else on one copy. */
export function setHeadersAfter(c: Context, headers: readonly [string, string][]): void {
  if (headers.length === 0) return;
  if (!c.finalized) {
    // No response yet (a caller that runs this middleware with its own
    // `next`, like limitFailedAuthentication): c.header() copies nothing
    // then, and reading c.res here would create a response whose headers
    // Hono later merges into whatever the caller returns.
    for (const [name, value] of headers) c.header(name, value);
    return;
  }
  try {
    for (const [name, value] of headers) c.res.headers.set(name, value);
  } catch {
    // Immutable headers (a fetched Response passed through): copy it once.
    const copy = new Response(c.res.body, c.res);
    for (const [name, value] of headers) copy.headers.set(name, value);
    c.res = copy;
  }
}
