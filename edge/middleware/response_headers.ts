/**
 * Response headers that depend on what a response is, set after the handler
 * ran (so they cover every route, including ones mounted later):
 *
 * - Every HTML page (`/docs`, the unsubscribe pages) gets a
 *   Content-Security-Policy that allows no script at all, inline styles only
 *   (the pages carry their own small stylesheets), forms posting back to the
 *   same origin (the RFC 8058 one-click form) and no framing — unless the
 *   route set a policy of its own (the console, edge/console/page.ts).
 * - Every JSON answer to an authenticated request gets
 *   `Cache-Control: no-store` unless the route chose a policy itself: one
 *   caller's data must not stay in a shared or browser cache.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { setHeadersAfter } from "./set_headers.ts";

/** The policy of every HTML page the edge serves. */
export const PAGE_CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  "img-src 'self' data:",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

function mediaType(headers: Headers): string {
  return (headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}

function isJson(type: string): boolean {
  return type === "application/json" || /^application\/[\w.+-]+\+json$/.test(type);
}

/** Sets the headers above on the final response. */
export function responseHeaders(): MiddlewareHandler {
  return async function responseHeaders(c, next) {
    await next();
    setHeadersAfter(c, contentHeaders(c, []));
  };
}

/** Appends to `set` the headers above that the finished response `c.res` needs; returns `set`. */
export function contentHeaders(c: Context, set: [string, string][]): [string, string][] {
  const type = mediaType(c.res.headers);
  // A page that set its own policy keeps it (the console: scripts from 'self' only).
  if (type === "text/html" && !c.res.headers.has("content-security-policy")) {
    set.push(["Content-Security-Policy", PAGE_CSP]);
  }
  // c.get(), not c.var: Hono builds c.var anew from every variable per read.
  const authenticated = c.get("principal") !== undefined;
  if (authenticated && isJson(type) && !c.res.headers.has("cache-control")) {
    set.push(["Cache-Control", "no-store"]);
  }
  return set;
}
