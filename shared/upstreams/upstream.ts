/**
 * Upstream HTTP services the gateway forwards to (the seed's
 * `call_control_api`), as configured in `UPSTREAMS`. Shared because the edge
 * forwards live requests and workers replay the writes that were queued
 * while an upstream's breaker was open.
 *
 * @module
 */
import { z } from "zod";

/** Methods an upstream route can allow. */
export const UPSTREAM_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] as const;

/**
 * Path prefixes the gateway serves itself. An upstream mounted on one would
 * shadow (or be shadowed by) a built-in route depending on mount order.
 */
export const RESERVED_PREFIXES = [
  "/v1/me",
  "/v1/tasks",
  "/v1/leads",
  "/v1/outreach",
  "/v1/appointments",
  "/v1/scrape-jobs",
  "/v1/unsubscribe",
  "/v1/dlq",
  "/v1/breakers",
  "/v1/admin",
  "/v1/analytics",
  "/v1/events",
  "/v1/schedules",
  "/v1/queue",
  "/v1/ws",
] as const;

/** Custom headers no upstream configuration may forward (see shared/upstreams/forward.ts). */
export const NEVER_FORWARDED: ReadonlySet<string> = new Set([
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  "x-original-url",
  "x-rewrite-url",
  "x-real-ip",
  "x-principal",
  "x-request-id",
  "x-client-ip",
  "x-cluster-client-ip",
  "x-host",
]);

const principal = z.union([
  z.literal("*"),
  z.string().regex(/^sa:[a-z0-9][a-z0-9._-]*$/, "a service account looks like sa:<name>"),
  z.string().regex(/^role:(admin|operator|viewer)$/, "a role looks like role:admin"),
]);

/** One upstream as written in `UPSTREAMS` (snake_case like the other JSON settings). */
export const UpstreamSpecSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, "lower snake_case, at most 40 characters"),
  base_url: z.url({ protocol: /^https?$/ }).refine(
    (u) => !/[?#]/.test(u),
    "no query or fragment in base_url",
  ),
  prefix: z.string().regex(
    /^\/v1(\/[a-z0-9][a-z0-9_-]*)+$/,
    "a path below /v1 such as /v1/control (lower case segments, no trailing slash)",
  ),
  methods: z.array(z.enum(UPSTREAM_METHODS)).min(1).default(["GET", "POST"]),
  /** Who may call it: `sa:<name>`, `role:<role>`, or `*` for any authenticated caller. */
  principals: z.array(principal).min(1),
  timeout_ms: z.number().int().positive().max(300_000).default(5_000),
  /** Breaker policy name; @default the upstream's name. */
  breaker: z.string().regex(/^[a-z][a-z0-9_]*$/).optional(),
  /** Forward the caller's Authorization header (otherwise it is removed). @default false */
  forward_authorization: z.boolean().default(false),
  /**
   * Pass the upstream's `Set-Cookie` to the caller. Off by default: the cookie
   * would belong to the gateway's origin and reach every other route. @default false
   */
  pass_set_cookie: z.boolean().default(false),
  /**
   * Extra request headers to forward besides the standard allow-list
   * (shared/upstreams/forward.ts); only custom `x-` names that do not steer
   * routing, addressing or identity. @default []
   */
  forward_headers: z.array(
    z.string().regex(/^x-[a-z0-9-]{1,62}$/, "a lower-case x- header name").refine(
      (name) => !NEVER_FORWARDED.has(name) && !name.startsWith("x-forwarded-"),
      "this header steers routing, addressing or identity and is never forwarded",
    ),
  ).max(32).default([]),
}).strict();

/** A validated upstream with defaults filled in. */
export interface Upstream {
  name: string;
  /** Without a trailing slash. */
  baseUrl: string;
  prefix: string;
  methods: readonly (typeof UPSTREAM_METHODS)[number][];
  principals: readonly string[];
  timeoutMs: number;
  breaker: string;
  forwardAuthorization: boolean;
  passSetCookie: boolean;
  /** Custom request headers forwarded besides the standard allow-list. */
  forwardHeaders: readonly string[];
}

/**
 * Validates the parsed `UPSTREAMS` array against the known breaker names;
 * returns the upstreams or the problems (one readable line each).
 */
export function resolveUpstreams(
  raw: unknown,
  breakerNames: readonly string[],
): { upstreams: Upstream[] } | { problems: string[] } {
  const parsed = z.array(UpstreamSpecSchema).safeParse(raw);
  if (!parsed.success) {
    return {
      problems: parsed.error.issues.map((i) => {
        const [index, ...rest] = i.path;
        const where = index === undefined
          ? ""
          : `[${String(index)}]${rest.map((p) => `.${String(p)}`).join("")}`;
        return `${where}: ${i.message}`;
      }),
    };
  }
  const problems: string[] = [];
  const names = new Set<string>();
  const prefixes: string[] = [];
  const upstreams = parsed.data.map((s, i): Upstream => {
    const where = `[${i}] "${s.name}"`;
    if (names.has(s.name)) problems.push(`${where}: the name appears twice`);
    names.add(s.name);
    const clash = [...RESERVED_PREFIXES, ...prefixes].find((p) =>
      s.prefix === p || s.prefix.startsWith(p + "/") || p.startsWith(s.prefix + "/")
    );
    if (clash) problems.push(`${where}: prefix ${s.prefix} overlaps ${clash}`);
    prefixes.push(s.prefix);
    const breaker = s.breaker ?? s.name;
    if (!breakerNames.includes(breaker)) {
      problems.push(
        `${where}: breaker "${breaker}" has no policy (known: ${
          breakerNames.join(", ")
        }; add it to BREAKER_POLICIES)`,
      );
    }
    return {
      name: s.name,
      baseUrl: s.base_url.replace(/\/+$/, ""),
      prefix: s.prefix,
      methods: s.methods,
      principals: s.principals,
      timeoutMs: s.timeout_ms,
      breaker,
      forwardAuthorization: s.forward_authorization,
      passSetCookie: s.pass_set_cookie,
      forwardHeaders: s.forward_headers,
    };
  });
  return problems.length > 0 ? { problems } : { upstreams };
}

/** The queue task type that replays a write queued for `upstream`. */
export function forwardTaskType(upstream: string): string {
  return `forward_request.${upstream}`;
}
