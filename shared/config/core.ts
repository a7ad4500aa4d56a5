/**
 * The server area: environment, logging, the edge's address and the process
 * lifecycle budgets.
 *
 * @module
 */
import { z } from "zod";
import { defineArea, httpUrl, port, positiveInt } from "./spec.ts";

/** True for a host name or address that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * The edge's own address as a base URL, the default of PUBLIC_BASE_URL: links
 * in development emails then reach the edge on whatever EDGE_PORT it uses.
 * A wildcard host is reachable on loopback; IPv6 literals get brackets.
 */
export function edgeBaseUrl(host: string, port: number): string {
  const reachable = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return `http://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}`;
}

/** Where `deno task dev` writes the local stack's settings (shared/config/dev_env_file.ts). */
export const DEV_ENV_FILE_DEFAULT = ".dev.env";

/** Server: environment, log level, the edge listener, start and stop budgets. */
export const core = defineArea(
  "Server",
  {
    APP_ENV: {
      description:
        "Deployment environment; `development` and `test` accept the published development keys. Required when `EDGE_HOST` is not a loopback address",
      default: "development",
      schema: z.enum(["development", "test", "production"]),
    },
    LOG_LEVEL: {
      description: "Lowest log level written",
      default: "info",
      schema: z.enum(["debug", "info", "warn", "error"]),
    },
    EDGE_HOST: {
      description: "Interface the edge HTTP server binds",
      default: "127.0.0.1",
      schema: z.string().min(1),
    },
    EDGE_PORT: {
      description: "Port of the edge HTTP server (0 = any free port)",
      default: "8787",
      schema: port,
    },
    READY_TIMEOUT_MS: {
      description: "Time budget of each dependency check in `GET /ready`",
      default: "1000",
      schema: positiveInt,
    },
    SHUTDOWN_TIMEOUT_MS: {
      description: "How long SIGTERM waits for in-flight work before exiting",
      default: "10000",
      schema: positiveInt,
    },
    PUBLIC_BASE_URL: {
      description:
        "Public URL of the edge, used in links sent to people (unsubscribe). Default: the edge's own address, `http://EDGE_HOST:EDGE_PORT` (a wildcard host becomes 127.0.0.1); `deno task dev` passes the edge's real address when EDGE_PORT is 0",
      optional: true,
      schema: httpUrl.transform((u) => u.replace(/\/+$/, "")),
    },
    DEV_ENV_FILE: {
      description:
        "File where `deno task dev` writes the local stack's connection settings (mode 0600, removed when it stops) and where `deno task migrate`, `seed` and `dlq` read them when neither UPSTASH_REDIS_REST_URL nor DATABASE_URL is set; relative to the repository root",
      default: DEV_ENV_FILE_DEFAULT,
      schema: z.string().min(1),
    },
  },
  [],
  (v) => ({
    env: v.APP_ENV,
    logLevel: v.LOG_LEVEL,
    edge: { host: v.EDGE_HOST, port: v.EDGE_PORT },
    readyTimeoutMs: v.READY_TIMEOUT_MS,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    publicBaseUrl: v.PUBLIC_BASE_URL ?? edgeBaseUrl(v.EDGE_HOST, v.EDGE_PORT),
  }),
);
