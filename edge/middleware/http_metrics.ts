/**
 * `api_requests_total` and `api_request_duration_seconds`, labelled by
 * method, route TEMPLATE and status. The template comes from the router
 * (`/v1/leads/:id`), never from the raw path, so the number of series is
 * bounded by the routes the app registers: a request that matches no route
 * is labelled with the pattern of the catch-all middleware that saw it
 * (`/v1/*`, `*`). The span attribute `http.route` uses the same function.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { Metrics } from "../../shared/metrics/metrics.ts";

/** Methods kept as they are; anything else (WebDAV verbs, garbage) is "other". */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** The route template of the request (the last matched pattern), for labels and spans. */
export function routeTemplate(c: Context): string {
  return routePath(c, -1) || "unmatched";
}

/** The method as a bounded label value. */
export function methodLabel(c: Context): string {
  const m = c.req.method;
  return METHODS.has(m) ? m : "other";
}

/**
 * Counts and times every request; mount it first, before anything that may
 * answer. `inner`, when given, is the middleware that would otherwise be
 * mounted right after this one (the request span): it is called directly
 * instead of through another layer of Hono's chain, which costs more than
 * the two metrics themselves (docs/benchmarks.md, `metrics_overhead`).
 */
export function httpMetrics(metrics: Metrics, inner?: MiddlewareHandler): MiddlewareHandler {
  const { httpDuration, httpRequests } = metrics;
  return async function httpMetrics(c, next) {
    const started = performance.now();
    try {
      if (inner) await inner(c, next);
      else await next();
    } finally {
      const labels = {
        method: methodLabel(c),
        route: routeTemplate(c),
        // An exception that escaped Hono's error handler still answers 500.
        status: String(c.res?.status ?? 500),
      };
      httpRequests.inc(labels);
      httpDuration.observe(labels, (performance.now() - started) / 1000);
    }
  };
}
