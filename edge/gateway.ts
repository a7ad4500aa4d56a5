/**
 * The gateway chain every `/v1` request takes, built once from config:
 *
 *   body limit → JSON only (with named exemptions) → authenticate →
 *   rate limit → route exists (404/405) → authorize →
 *   known query parameters (400) → Idempotency-Key →
 *   route (in `forward_to_service`)
 *
 * Rate limiting runs after authentication (it is keyed by principal) and
 * before authorization, so denied requests still count against the caller.
 * Each stage runs in its own child span of `handle_api_request`.
 *
 * {@linkcode PUBLIC_ROUTES} skip authentication, authorization and
 * Idempotency-Key; they keep the body limit and are rate-limited by client IP
 * (edge/client_address.ts) under the `unsubscribe` policy (`anonymous` when
 * that is not configured).
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Deps } from "../shared/deps.ts";
import type { TaskQueue } from "../shared/queue/queue.ts";
import { ACCESS_POLICY } from "./auth/policy.ts";
import { cacheVerifiedTokens } from "./auth/verified_cache.ts";
import { upstreamPolicy } from "./proxy/upstream_policy.ts";
import { createVerifier, type Verifier } from "./auth/verify.ts";
import { authenticate } from "./middleware/authenticate.ts";
import { authorize } from "./middleware/authorize.ts";
import { limitJsonDepth } from "./middleware/json_depth.ts";
import {
  limitBody,
  type QueryParamsAt,
  rejectUnknownQuery,
  requireJson,
  routeFirst,
} from "./middleware/http_rules.ts";
import { idempotency } from "./middleware/idempotency.ts";
import { rateLimit, type RateLimitMiddleware } from "./middleware/rate_limit.ts";
import { forwardSpan, traced } from "./middleware/tracing.ts";
import { type StageErrorHandler, stages } from "./middleware/stages.ts";

/** Routes whose POST/PATCH must carry an Idempotency-Key. */
const KEY_REQUIRED = new Set(["POST /v1/tasks", "POST /v1/models/retrain"]);

/**
 * `METHOD /exact/path` pairs anyone may call without a token. Keep this list
 * short and every entry justified: each one must authenticate its caller
 * some other way.
 *
 * - The unsubscribe link in every outreach email (`GET`) and its RFC 8058
 *   one-click `POST` (sent by mail providers, who hold no token of ours).
 *   The signed token in the URL is the credential (shared/email/unsubscribe.ts),
 *   and the effect is a harmless, idempotent suppression.
 *
 * Matching is exact (no patterns, no HEAD): anything else under /v1 still
 * needs a token, so a new route is never public by accident. Idempotency-Key
 * is skipped too: without a principal every caller would share one key scope.
 */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set([
  "GET /v1/unsubscribe",
  "POST /v1/unsubscribe",
]);

/** True when the request is one of {@linkcode PUBLIC_ROUTES}. */
export function isPublicRoute(c: Context): boolean {
  return PUBLIC_ROUTES.has(`${c.req.method} ${c.req.path}`);
}

/** Runs `mw` except on public routes, which go straight to the next stage. */
function unlessPublic(mw: MiddlewareHandler): MiddlewareHandler {
  return function unlessPublic(c, next) {
    return isPublicRoute(c) ? next() : mw(c, next);
  };
}

/**
 * Bodies other than JSON, by exact path: the lead file upload and the RFC 8058
 * one-click unsubscribe (form-encoded by the mail provider; RFC 8058 §3.2
 * allows both form encodings).
 */
const NON_JSON_BODIES = [
  { path: "/v1/leads/import", types: ["text/csv"] },
  {
    path: "/v1/unsubscribe",
    types: ["application/x-www-form-urlencoded", "multipart/form-data"],
  },
] as const;

/**
 * Rate-limits unauthenticated callers by client IP: a request whose
 * authentication fails is counted against the `anonymous` policy (the limiter
 * keys by IP when there is no principal), and once that is exhausted the
 * caller gets 429 instead of 401 — so token guessing is throttled without
 * charging authenticated traffic to its IP.
 */
export function limitFailedAuthentication(
  authenticateMw: MiddlewareHandler,
  limiter: MiddlewareHandler,
): MiddlewareHandler {
  return async function limitFailedAuthentication(c, next) {
    const res = await authenticateMw(c, next);
    if (!(res instanceof Response) || res.status !== 401 || c.get("principal") !== undefined) {
      return res;
    }
    let admitted = false;
    const limited = await limiter(c, () => {
      admitted = true;
      return Promise.resolve();
    });
    return !admitted && limited instanceof Response ? limited : res;
  };
}

/** The built chain plus handles for metrics. */
export interface Gateway {
  chain: MiddlewareHandler[];
  /**
   * The chain as one middleware (edge/middleware/stages.ts): a request
   * without a body that is not a POST or PATCH skips the four stages that
   * only look at bodies or keys (body limit, JSON only, JSON depth,
   * Idempotency-Key), which would each pass it on untouched.
   */
  middleware(onError: StageErrorHandler): MiddlewareHandler;
  rateLimiter: RateLimitMiddleware;
  /** The chain's token verifier, for routes that authenticate outside it (GET /v1/ws). */
  verifier: Verifier;
}

/** What the chain needs to know about the app's routes. */
export interface GatewayRoutes {
  /** The methods the app serves at a request's path (`allowedMethods(app.routes)`). */
  methodsAt: (c: Context) => readonly string[];
  /** The query parameters the request's route declares (`declaredQueryParams`). @default none checked */
  queryParamsAt?: QueryParamsAt;
}

/** Builds the `/v1` middleware chain. */
export function buildGateway(deps: Deps, queue: TaskQueue, routes: GatewayRoutes): Gateway {
  const { config } = deps;
  const proxied = config.upstreams.map((u) => u.prefix);
  const verifier = cacheVerifiedTokens(
    createVerifier(config.auth, { log: deps.log, now: deps.now }),
    { now: deps.now, keys: () => config.auth.hs256Keys },
  );
  const rateLimiter = rateLimit({
    redis: deps.redis,
    policies: config.rateLimits,
    log: deps.log,
    timeoutMs: config.rateLimitTimeoutMs,
    group: (c) => {
      const p = c.get("principal");
      if (!p) {
        // One-click unsubscribes keep their own bucket when one is configured.
        return isPublicRoute(c) && c.req.path === "/v1/unsubscribe" &&
            Object.hasOwn(config.rateLimits, "unsubscribe")
          ? "unsubscribe"
          : "anonymous";
      }
      return p.roles.includes("admin") ? "admin" : "default";
    },
  });
  const bodyStages = new Set<MiddlewareHandler>();
  const forBodies = (mw: MiddlewareHandler) => (bodyStages.add(mw), mw);
  const chain: MiddlewareHandler[] = [
    forBodies(limitBody(config.maxBodyBytes)),
    forBodies(requireJson({ allow: NON_JSON_BODIES })),
    traced(
      "authenticate",
      unlessPublic(limitFailedAuthentication(
        authenticate({ verifier, log: deps.log }) as MiddlewareHandler,
        rateLimiter,
      )),
    ),
    // Public routes have no principal here, so `group` answers "unsubscribe"
    // (or "anonymous") and the limiter keys them by client IP.
    traced("rate_limit_check", rateLimiter as MiddlewareHandler),
    routeFirst({
      methodsAt: routes.methodsAt,
      passthrough: (path) => proxied.some((p) => path === p || path.startsWith(`${p}/`)),
    }),
    traced(
      "authorize",
      unlessPublic(
        authorize({
          log: deps.log,
          policy: [...ACCESS_POLICY, ...upstreamPolicy(config.upstreams)],
        }) as MiddlewareHandler,
      ),
    ),
    // After authorization: a 400 naming the route's parameters would tell a
    // caller the policy denies what the route takes (the fuzz found a 400 where
    // a principal without roles must get 403).
    rejectUnknownQuery({ paramsAt: routes.queryParamsAt ?? (() => null) }),
    // After authorization (anonymous and denied callers get nothing read), before
    // the idempotency fingerprint and the routes' validators walk the body.
    forBodies(limitJsonDepth(config.maxJsonDepth)),
    forBodies(unlessPublic(
      idempotency({
        redis: deps.redis,
        ttlMs: config.idempotencyTtlMs,
        maxBodyBytes: config.maxBodyBytes,
        maxResponseBytes: config.perimeter.idempotencyMaxResponseBytes,
        queue,
        required: (c) => KEY_REQUIRED.has(`${c.req.method} ${c.req.path}`),
        // One script claims the key, enqueues the task and stores the 202 (docs/gateway.md).
        recordWithEffect: (c) =>
          c.req.method === "POST" && c.req.path === "/v1/tasks"
            ? queue.ctx.keys.httpIdempotencyRecord
            : null,
        ...(config.observability.metricsEnabled
          ? { onOutcome: (outcome) => deps.metrics.idempotencyOutcomes.inc({ outcome }) }
          : {}),
      }) as MiddlewareHandler,
    )),
    forwardSpan(),
  ];
  const middleware = (onError: StageErrorHandler): MiddlewareHandler => {
    const full = stages(chain, onError);
    const bodyless = stages(chain.filter((mw) => !bodyStages.has(mw)), onError);
    return function gateway(c, next) {
      const method = c.req.method;
      return c.req.raw.body === null && method !== "POST" && method !== "PATCH"
        ? bodyless(c, next)
        : full(c, next);
    };
  };
  return { chain, middleware, rateLimiter, verifier };
}
