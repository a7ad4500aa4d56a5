/**
 * The Redis area: where the Upstash REST endpoint is, and optionally Redis's
 * TCP endpoint for the workers' queue scripts (docs/queue.md, "Transports").
 *
 * @module
 */
import { z } from "zod";
import { isLoopbackHost } from "./core.ts";
import { defineArea, httpUrl } from "./spec.ts";

/**
 * `rediss://` (TLS), or `redis://` to a loopback host only: the URL carries
 * the password, which must not cross a network in clear text. Messages never
 * show the URL (it is a secret).
 */
const redisTcpUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: "custom", message: "expected a redis:// or rediss:// URL" });
    return;
  }
  if (url.protocol !== "rediss:" && url.protocol !== "redis:") {
    ctx.addIssue({ code: "custom", message: "expected a redis:// or rediss:// URL" });
  } else if (url.protocol === "redis:" && !isLoopbackHost(url.hostname)) {
    ctx.addIssue({
      code: "custom",
      message: "redis:// (no TLS) is only accepted for a loopback host; use rediss://",
    });
  } else if (url.pathname !== "" && url.pathname !== "/" && url.pathname !== "/0") {
    ctx.addIssue({ code: "custom", message: "only database 0 is supported (no path)" });
  }
});

/** Redis (Upstash REST, the local bridge in dev/test). */
export const redis = defineArea(
  "Redis",
  {
    UPSTASH_REDIS_REST_URL: {
      description: "Upstash Redis REST URL (the local bridge in dev/test)",
      schema: httpUrl,
    },
    UPSTASH_REDIS_REST_TOKEN: {
      description: "Upstash Redis REST token",
      secret: true,
      schema: z.string().min(1),
    },
    REDIS_TCP_URL: {
      description:
        "Workers: the same Redis over TCP (`rediss://default:TOKEN@host:6379` on Upstash; `redis://` only on loopback) for the queue's scripts; unset keeps them on REST (docs/queue.md, Transports)",
      optional: true,
      secret: true,
      schema: redisTcpUrl,
    },
  },
  [],
  (v) => ({
    redis: {
      url: v.UPSTASH_REDIS_REST_URL,
      token: v.UPSTASH_REDIS_REST_TOKEN,
      /** Redis over TCP for the workers' queue scripts; null: REST. */
      tcpUrl: v.REDIS_TCP_URL ?? null,
    },
  }),
);
