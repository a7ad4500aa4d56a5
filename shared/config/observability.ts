/**
 * The observability area: metrics, the admin listeners and the alert webhook
 * (docs/observability.md).
 *
 * @module
 */
import { z } from "zod";
import { bool, defineArea, httpUrl, port } from "./spec.ts";

/** Metrics, admin listeners (shared/metrics/) and the alert webhook (shared/alerts/). */
export const observability = defineArea(
  "Metrics and alerts",
  {
    METRICS_ENABLED: {
      description:
        "Prometheus metrics: the edge's request metrics and `/metrics` on the admin listeners (docs/observability.md)",
      default: "true",
      schema: bool,
    },
    EDGE_ADMIN_HOST: {
      description:
        "Interface of the edge's admin listener (`/metrics`, `/health`, `/ready`; no JWT): keep it off the public network",
      default: "127.0.0.1",
      schema: z.string().min(1),
    },
    EDGE_ADMIN_PORT: {
      description: "Port of the edge's admin listener (0 = any free port)",
      default: "9464",
      schema: port,
    },
    WORKER_ADMIN_HOST: {
      description:
        "Interface of the worker's admin listener (`/health`, `/ready`, `/metrics`; no JWT): keep it off the public network",
      default: "127.0.0.1",
      schema: z.string().min(1),
    },
    WORKER_ADMIN_PORT: {
      description: "Port of the worker's admin listener (0 = any free port)",
      default: "9465",
      schema: port,
    },
    ALERT_WEBHOOK_URL: {
      description:
        "Alert webhook (docs/observability.md, Alert webhook): DLQ arrivals, breaker openings and model deployments are POSTed here by `deliver_alert` tasks; unset = off. `https:` outside development/test; link-local/metadata addresses always and private ones outside development/test are refused",
      optional: true,
      secret: true,
      schema: httpUrl,
    },
    ALERT_WEBHOOK_FORMAT: {
      description:
        "Body of each alert webhook call: `alertmanager` (the Alertmanager webhook receiver payload, version 4) or `generic` (one JSON object per event)",
      default: "alertmanager",
      schema: z.enum(["alertmanager", "generic"]),
    },
    ALERT_WEBHOOK_AUTHORIZATION: {
      description:
        "`Authorization` header value sent with every alert webhook call (e.g. `Bearer <token>`); optional",
      optional: true,
      secret: true,
      schema: z.string().min(1).max(4096).regex(/^[\x20-\x7e]+$/, "printable ASCII only"),
    },
    ALERT_WEBHOOK_TIMEOUT_MS: {
      description: "Time budget of one alert webhook call (DNS check, connect and response)",
      default: "5000",
      schema: z.coerce.number().int().min(100).max(25_000),
    },
    PROMETHEUS_URL: {
      description:
        "Prometheus server the edge asks for the SLO status of `GET /v1/slo` (the console's overview), e.g. `http://prometheus:9090`; it must load deploy/prometheus/rules.yml. Unset = the status is `unknown`. No credentials in the URL; link-local/metadata addresses are refused",
      optional: true,
      schema: httpUrl.refine((u) => {
        const url = new URL(u);
        return url.username === "" && url.password === "";
      }, "no credentials in the URL").transform((u) => u.replace(/\/+$/, "")),
    },
    PROMETHEUS_TIMEOUT_MS: {
      description:
        "Time budget of one SLO status read from Prometheus (DNS check, connect, queries)",
      default: "2000",
      schema: z.coerce.number().int().min(100).max(10_000),
    },
  },
  [],
  (v) => ({
    /** Metrics and the admin listeners (shared/metrics/); the SLO source (edge/slo/). */
    observability: {
      metricsEnabled: v.METRICS_ENABLED,
      edgeAdmin: { host: v.EDGE_ADMIN_HOST, port: v.EDGE_ADMIN_PORT },
      workerAdmin: { host: v.WORKER_ADMIN_HOST, port: v.WORKER_ADMIN_PORT },
      prometheus: { url: v.PROMETHEUS_URL ?? null, timeoutMs: v.PROMETHEUS_TIMEOUT_MS },
    },
    /** The alert webhook (shared/alerts/); `webhookUrl` null = off. */
    alerts: {
      webhookUrl: v.ALERT_WEBHOOK_URL ?? null,
      format: v.ALERT_WEBHOOK_FORMAT,
      authorization: v.ALERT_WEBHOOK_AUTHORIZATION ?? null,
      timeoutMs: v.ALERT_WEBHOOK_TIMEOUT_MS,
    },
  }),
);
