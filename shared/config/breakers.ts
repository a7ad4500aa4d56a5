/**
 * The breaker area: circuit-breaker policies, the upstream services guarded
 * by them, and the degraded-read cache (shared/breakers/, docs/breakers.md).
 *
 * @module
 */
import { z } from "zod";
import {
  type BreakerPolicyInput,
  DEFAULT_BREAKER_POLICIES,
  resolvePolicies,
} from "../breakers/policy.ts";
import { resolveUpstreams, type Upstream } from "../upstreams/upstream.ts";
import { defineArea } from "./spec.ts";

const breakerPolicies = z.string().transform((text, ctx) => {
  let raw: unknown;
  try {
    raw = text.trim() === "" ? {} : JSON.parse(text);
  } catch {
    ctx.addIssue({ code: "custom", message: "expected a JSON object of breaker policies" });
    return z.NEVER;
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    ctx.addIssue({ code: "custom", message: "expected a JSON object of breaker policies" });
    return z.NEVER;
  }
  try {
    // Overrides merge per breaker over the seed defaults.
    const merged: Record<string, BreakerPolicyInput> = { ...DEFAULT_BREAKER_POLICIES };
    for (const [name, value] of Object.entries(raw as Record<string, BreakerPolicyInput>)) {
      merged[name] = { ...(DEFAULT_BREAKER_POLICIES[name] ?? {}), ...value } as BreakerPolicyInput;
    }
    return resolvePolicies(merged);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: (err as Error).message });
    return z.NEVER;
  }
});

// Validated against the breaker policies by rules.ts (it needs both).
const upstreamsJson = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text.trim() === "" ? "[]" : text) as unknown;
  } catch {
    ctx.addIssue({ code: "custom", message: "expected a JSON array of upstreams" });
    return z.NEVER;
  }
});

/**
 * UPSTREAMS checked against the breaker names: the upstreams, or the
 * problems (each to be prefixed with `UPSTREAMS`).
 */
export function checkUpstreams(
  upstreams: unknown,
  policies: Record<string, unknown>,
): { upstreams: Upstream[] } | { problems: string[] } {
  return resolveUpstreams(upstreams, Object.keys(policies));
}

/** Breaker policies, upstream proxy routes, degraded reads. */
export const breakers = defineArea(
  "Breakers and upstreams",
  {
    BREAKER_POLICIES: {
      description:
        'Circuit-breaker overrides as JSON, merged per breaker over the defaults in shared/breakers/policy.ts, e.g. `{"email":{"fail_max":3}}`',
      default: "{}",
      schema: breakerPolicies,
    },
    UPSTREAMS: {
      description:
        'Upstream HTTP services the gateway forwards to, as a JSON array of `{"name","base_url","prefix","methods","principals","timeout_ms","breaker","forward_authorization","forward_headers","pass_set_cookie"}` (see docs/breakers.md, Upstream proxy routes)',
      default: "[]",
      schema: upstreamsJson,
    },
    DEGRADED_CACHE_TTL_MS: {
      description:
        "How long the last good answer of a breaker-guarded read is kept to serve while its breaker is open (short on purpose: at most a day)",
      default: "600000",
      schema: z.coerce.number().int().positive().max(86_400_000),
    },
  },
  [],
  (v) => {
    // rules.ts refused the configuration before a build when this has problems.
    const resolved = checkUpstreams(v.UPSTREAMS, v.BREAKER_POLICIES);
    return {
      breakerPolicies: v.BREAKER_POLICIES,
      upstreams: "upstreams" in resolved ? resolved.upstreams : [],
      degradedCacheTtlMs: v.DEGRADED_CACHE_TTL_MS,
    };
  },
);
