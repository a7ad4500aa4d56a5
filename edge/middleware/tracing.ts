/**
 * Request tracing through `@opentelemetry/api` (exported by Deno's built-in
 * OpenTelemetry when OTEL_DENO=true; a no-op otherwise).
 *
 * Each request runs in a `handle_api_request` span; gateway stages run in
 * child spans (`authenticate`, `rate_limit_check`, …) via {@linkcode traced},
 * and the route handler in `forward_to_service`.
 *
 * @module
 */
import {
  context,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import type { MiddlewareHandler } from "hono";
import { routeTemplate } from "./http_metrics.ts";

const TRACER = "pleasant-cove-edge";

/**
 * True when a tracer provider is registered (Deno's own with OTEL_DENO=true,
 * or one a test installs). Without one every span is a no-op, yet starting
 * six of them per request and switching contexts around each stage cost the
 * chain measurable CPU (docs/benchmarks.md, "Where the edge's µs go"), so the
 * middleware below then only calls through. Asked per request: a provider
 * registered after the app was built is still honoured.
 */
export function tracingActive(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) ||
    provider.getDelegateTracer(TRACER) !== undefined;
}

function finish(span: Span, err?: unknown): void {
  if (err !== undefined) {
    span.recordException(err instanceof Error ? err : new Error(String(err)));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: err instanceof Error ? err.message : String(err),
    });
  }
  span.end();
}

/**
 * The root span of a request; records route, status and the principal.
 * `inner`, when given, is the middleware mounted right after this one: it is
 * called directly, saving a layer of Hono's chain (as in `httpMetrics`).
 */
export function requestSpan(inner?: MiddlewareHandler): MiddlewareHandler {
  const tracer = trace.getTracer(TRACER);
  return async function requestSpan(c, next) {
    const run = inner ? async () => void await inner(c, next) : next;
    if (!tracingActive()) return await run();
    // Deno's own server span (OTEL_DENO=true) knows no router: it gets the
    // route template too, so collectors can group its duration by route.
    const serverSpan = trace.getActiveSpan();
    await tracer.startActiveSpan(
      "handle_api_request",
      { kind: SpanKind.SERVER, attributes: { "http.method": c.req.method } },
      async (span) => {
        let failure: unknown;
        try {
          await run();
        } catch (err) {
          failure = err;
          throw err;
        } finally {
          // The same bounded template as the metrics' `route` label.
          const route = routeTemplate(c);
          span.setAttribute("http.route", route);
          serverSpan?.setAttribute("http.route", route);
          serverSpan?.updateName(`${c.req.method} ${route}`);
          span.setAttribute("http.status_code", c.res.status);
          const principal = c.get("principal") as { sub: string } | undefined;
          if (principal) span.setAttribute("user.id", principal.sub);
          if (failure === undefined && c.error) failure = c.error;
          if (failure === undefined && c.res.status >= 500) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${c.res.status}` });
          }
          finish(span, failure);
        }
      },
    );
  };
}

/**
 * Runs middleware `mw` in a child span named `name`. The span covers the
 * middleware's own work: it ends when `mw` calls `next()` (downstream work is
 * not its cost) or when `mw` answers without calling it.
 */
export function traced(name: string, mw: MiddlewareHandler): MiddlewareHandler {
  const tracer = trace.getTracer(TRACER);
  const handler: MiddlewareHandler = async function tracedMiddleware(c, next) {
    if (!tracingActive()) return await mw(c, next);
    const span = tracer.startSpan(name);
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      finish(span, err);
    };
    const parent = context.active();
    let result: Response | void;
    try {
      result = await context.with(trace.setSpan(parent, span), () =>
        mw(c, async () => {
          end();
          await context.with(parent, next);
        }));
    } catch (err) {
      end(err);
      throw err;
    }
    if (!ended) {
      // The middleware answered itself (401, 429, …): Hono sets c.res from
      // the returned Response only after we return, so read it from there.
      const status = result instanceof Response ? result.status : c.res.status;
      span.setAttribute("http.status_code", status);
      end();
    }
    return result;
  };
  // Named after its stage, so CPU profiles tell the stages apart.
  return Object.defineProperty(handler, "name", { value: `traced ${name}` });
}

/** Wraps the route handler stage in a `forward_to_service` span. */
export function forwardSpan(): MiddlewareHandler {
  const tracer = trace.getTracer(TRACER);
  return async function forwardSpan(c, next) {
    if (!tracingActive()) return await next();
    await tracer.startActiveSpan("forward_to_service", async (span) => {
      let failure: unknown;
      try {
        await next();
      } catch (err) {
        failure = err;
        throw err;
      } finally {
        if (failure === undefined && c.error) failure = c.error;
        finish(span, failure);
      }
    });
  };
}
