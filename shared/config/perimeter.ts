/**
 * The perimeter area: what the edge accepts from a client (body size and
 * depth, CORS, who may name the client address) and the caps that keep one
 * client from exhausting shared state (docs/security.md, Perimeter).
 *
 * @module
 */
import { z } from "zod";
import { parseTrustedProxies, type TrustedProxies } from "../net/trusted_proxies.ts";
import { defineArea, positiveInt } from "./spec.ts";

const NO_TRUSTED_PROXIES: TrustedProxies = { kind: "none" };

/** Request limits, idempotency, client address, caches and socket caps. */
export const perimeter = defineArea(
  "HTTP perimeter",
  {
    IDEMPOTENCY_TTL_MS: {
      description: "How long a stored Idempotency-Key response is replayed",
      default: "86400000",
      schema: positiveInt,
    },
    MAX_BODY_BYTES: {
      description: "Largest request body the edge accepts (413 above)",
      default: "1048576",
      schema: positiveInt,
    },
    MAX_JSON_DEPTH: {
      description:
        "Deepest nesting of arrays/objects in a JSON request body (400 `json-too-deep` above), checked before anything parses it",
      default: "64",
      schema: z.coerce.number().int().min(1).max(1000),
    },
    CORS_ORIGINS: {
      description: "Comma-separated origins allowed by CORS (empty: no cross-origin access)",
      default: "",
      optional: true,
      schema: z.string().transform((t) => t.split(",").map((o) => o.trim()).filter(Boolean)),
    },
    TRUSTED_PROXIES: {
      description:
        "Proxies allowed to name the client in `X-Forwarded-For`: empty (none; the socket peer is the client), a hop count, or comma-separated addresses/CIDR ranges (docs/security.md, Perimeter)",
      default: "",
      optional: true,
      schema: z.string().transform((text, ctx) => {
        const parsed = parseTrustedProxies(text);
        if ("problem" in parsed) {
          ctx.addIssue({ code: "custom", message: parsed.problem });
          return z.NEVER;
        }
        return parsed;
      }),
    },
    DEGRADED_CACHE_MAX_ENTRIES: {
      description:
        "Degraded-read answers kept per breaker; the least recently stored are evicted beyond it",
      default: "1000",
      schema: z.coerce.number().int().min(1).max(100_000),
    },
    IDEMPOTENCY_MAX_RESPONSE_BYTES: {
      description:
        "Largest response an Idempotency-Key stores for replay; a larger one is passed through and its key marked not replayable",
      default: "262144",
      schema: z.coerce.number().int().min(1024).max(16_777_216),
    },
    WS_MAX_SOCKETS_PER_SUB: {
      description: "Live feed: open sockets one principal (`sub`) may hold on one edge instance",
      default: "8",
      schema: positiveInt,
    },
    WS_MAX_SOCKETS_PER_INSTANCE: {
      description: "Live feed: open sockets one edge instance accepts in all",
      default: "20000",
      schema: positiveInt,
    },
    WS_UPGRADES_PER_MINUTE: {
      description:
        "Live feed: upgrade attempts one principal may make per minute on one instance (an in-process limiter; no Redis call)",
      default: "30",
      schema: positiveInt,
    },
  },
  [],
  (v) => ({
    idempotencyTtlMs: v.IDEMPOTENCY_TTL_MS,
    maxBodyBytes: v.MAX_BODY_BYTES,
    maxJsonDepth: v.MAX_JSON_DEPTH,
    corsOrigins: v.CORS_ORIGINS ?? [],
    /** Client address, caches and socket caps (docs/security.md, Perimeter). */
    perimeter: {
      trustedProxies: v.TRUSTED_PROXIES ?? NO_TRUSTED_PROXIES,
      degradedCacheMaxEntries: v.DEGRADED_CACHE_MAX_ENTRIES,
      idempotencyMaxResponseBytes: v.IDEMPOTENCY_MAX_RESPONSE_BYTES,
      wsMaxSocketsPerSub: v.WS_MAX_SOCKETS_PER_SUB,
      wsMaxSocketsPerInstance: v.WS_MAX_SOCKETS_PER_INSTANCE,
      wsUpgradesPerMinute: v.WS_UPGRADES_PER_MINUTE,
    },
  }),
);
