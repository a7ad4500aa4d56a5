/**
 * `front()`: everything every request gets before and after its route, in ONE
 * layer of Hono's chain: the request id, the client address, the request
 * logger and access-log line, the security headers and the content-dependent
 * headers (edge/middleware/response_headers.ts).
 *
 * These were six middleware mounted one after the other; each layer of Hono's
 * chain costs more CPU than most of them do themselves, and Hono's
 * `secureHeaders()` re-sets its dozen headers one call each, so on `/health`
 * the chain cost about three times the route (docs/benchmarks.md, "Where the
 * edge's µs go"). Here the headers are one precomputed list set on the final
 * response in place (edge/middleware/set_headers.ts), and the request id goes
 * on the response once, with the others.
 *
 * Behaviour is the same as the six: the request id is the caller's
 * `X-Request-Id` when it is at most 255 characters of `[A-Za-z0-9_=-]`, a
 * random UUID otherwise (Hono's `requestId()` rule); every response, errors
 * included, carries it and {@linkcode SECURITY_HEADERS}.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Deps } from "../../shared/deps.ts";
import type { AddressResolver } from "../client_address.ts";
import { writeAccessLine } from "./access_log.ts";
import { contentHeaders } from "./response_headers.ts";
import { setHeadersAfter } from "./set_headers.ts";

/** The request id header, read from the caller and set on every response. */
export const REQUEST_ID_HEADER = "X-Request-Id";

/**
 * The headers Hono's `secureHeaders()` sets with its defaults (the edge's
 * policy until this module; front_test.ts checks the two agree).
 */
export const SECURITY_HEADERS: readonly [string, string][] = [
  ["Cross-Origin-Resource-Policy", "same-origin"],
  ["Cross-Origin-Opener-Policy", "same-origin"],
  ["Origin-Agent-Cluster", "?1"],
  ["Referrer-Policy", "no-referrer"],
  ["Strict-Transport-Security", "max-age=15552000; includeSubDomains"],
  ["X-Content-Type-Options", "nosniff"],
  ["X-DNS-Prefetch-Control", "off"],
  ["X-Download-Options", "noopen"],
  ["X-Frame-Options", "SAMEORIGIN"],
  ["X-Permitted-Cross-Domain-Policies", "none"],
  ["X-XSS-Protection", "0"],
];

const MAX_REQUEST_ID = 255;
const UNSAFE_REQUEST_ID = /[^\w\-=]/;

/** The caller's request id when it is safe to echo, else a new one. */
function requestIdOf(c: Context): string {
  const given = c.req.header(REQUEST_ID_HEADER);
  return given && given.length <= MAX_REQUEST_ID && !UNSAFE_REQUEST_ID.test(given)
    ? given
    : crypto.randomUUID();
}

/** Options of {@linkcode front}. */
export interface FrontOptions {
  deps: Pick<Deps, "log" | "now">;
  /** Decides `c.var.clientAddress` (edge/client_address.ts). */
  resolveAddress: AddressResolver;
}

/** The front of the chain; mount it first (inside the metrics and request span). */
export function front(o: FrontOptions): MiddlewareHandler {
  const { deps, resolveAddress } = o;
  return async function front(c, next) {
    const started = deps.now();
    const id = requestIdOf(c);
    c.set("requestId", id);
    // Before every limiter and the access log: all of them key on this one address.
    c.set("clientAddress", resolveAddress(c));
    const log = deps.log.child({ request_id: id });
    c.set("log", log);
    await next();
    const headers: [string, string][] = [[REQUEST_ID_HEADER, id], ...SECURITY_HEADERS];
    setHeadersAfter(c, contentHeaders(c, headers));
    // Hono's secureHeaders() removed it too; nothing of ours sets it, a proxied upstream might.
    if (c.res.headers.has("x-powered-by")) c.res.headers.delete("x-powered-by");
    writeAccessLine(c, log, deps.now() - started);
  };
}
