/**
 * The admin listener of a process: `GET /health` (no I/O), `GET /ready` (the
 * caller's check) and `GET /metrics` (Prometheus text exposition). It runs on
 * its own port, apart from the public API, so that:
 *
 * - it needs no user JWT (Prometheus and the orchestrator's probes hold none)
 *   and never shows up in the public API's rate limits, logs or metrics;
 * - it is never public by accident: it binds `*_ADMIN_HOST` (default
 *   127.0.0.1) and the deployment opens the port only to the scraper and the
 *   kubelet (a NetworkPolicy; see docs/observability.md).
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { type Metrics, metricsContentType, renderMetrics } from "./metrics.ts";

/** Options for {@linkcode serveAdmin}. */
export interface AdminServerOptions {
  hostname: string;
  /** 0 = any free port (tests). */
  port: number;
  /** Null when metrics are turned off (METRICS_ENABLED=false): /metrics answers 404. */
  metrics: Metrics | null;
  /** Readiness: `ready: false` answers 503 with `detail`. */
  ready: () => Promise<{ ready: boolean; detail?: unknown }>;
  log: Logger;
  /** Logged with the URL once listening ("edge admin", "worker admin"). */
  name: string;
}

/** A running admin listener. */
export interface AdminServer {
  /** `http://host:port` actually bound. */
  readonly url: string;
  shutdown(): Promise<void>;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** Builds the admin request handler (exported for in-process tests). */
export function adminHandler(
  options: Pick<AdminServerOptions, "metrics" | "ready">,
): (req: Request) => Promise<Response> {
  const { metrics, ready } = options;
  return async function admin(req) {
    const path = new URL(req.url).pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return json({ error: { code: "method-not-allowed" } }, 405);
    }
    if (path === "/health") return json({ status: "ok" });
    if (path === "/ready") {
      const r = await ready().catch((err) => ({ ready: false, detail: String(err) }));
      return json(
        { status: r.ready ? "ready" : "not-ready", detail: r.detail },
        r.ready ? 200 : 503,
      );
    }
    if (path === "/metrics" && metrics) {
      return new Response(await renderMetrics(metrics), {
        headers: { "content-type": metricsContentType(metrics) },
      });
    }
    return json({ error: { code: "not-found" } }, 404);
  };
}

/** Starts the admin listener; resolves once it listens. */
export function serveAdmin(options: AdminServerOptions): Promise<AdminServer> {
  const listening = Promise.withResolvers<AdminServer>();
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: ({ hostname, port }) => {
      const url = `http://${hostname}:${port}`;
      options.log.info(`${options.name} listening`, {
        url,
        metrics: options.metrics ? `${url}/metrics` : null,
      });
      listening.resolve({ url, shutdown: () => server.shutdown() });
    },
  }, adminHandler(options));
  server.finished.catch((err) => listening.reject(err));
  return listening.promise;
}
