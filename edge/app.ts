/**
 * `createApp(deps)`: the Hono application. No I/O at import; everything it
 * needs arrives in `deps`.
 *
 * @module
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { SmartRouter } from "hono/router/smart-router";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { TrieRouter } from "hono/router/trie-router";
import { cors } from "hono/cors";
import type { Deps } from "../shared/deps.ts";
import { AppError } from "../shared/errors.ts";
import { queueFromConfig } from "../shared/queue/from_config.ts";
import type { TaskQueue } from "../shared/queue/queue.ts";
import { ACCESS_POLICY, compilePolicy } from "./auth/policy.ts";
import { buildGateway } from "./gateway.ts";
import { front } from "./middleware/front.ts";
import { memoRouter } from "./memo_router.ts";
import { htmlErrorPages } from "./middleware/html_errors.ts";
import { addressResolver } from "./client_address.ts";
import { allowedMethods, declaredQueryParams, noRoute } from "./middleware/http_rules.ts";
import type { AppEnv } from "./app_env.ts";
import { requestSpan } from "./middleware/tracing.ts";
import { mountDocs } from "./openapi.ts";
import { FAILURE_RETRY_S } from "./routes/database_failure.ts";
import { isRedisUnreachable } from "./redis_failure.ts";
import { problem } from "./problem.ts";
import { RequestBodyUnreadableError } from "./request_body.ts";
import { healthRoutes } from "./routes/health.ts";
import { meRoutes } from "./routes/me.ts";
import { taskRoutes } from "./routes/tasks.ts";
import { leadRoutes } from "./routes/leads.ts";
import { outreachRoutes } from "./routes/outreach.ts";
import { outreachTemplateRoutes } from "./routes/outreach_templates.ts";
import { sentEmailRoutes } from "./routes/outreach_emails.ts";
import { suppressionRoutes } from "./routes/suppressions.ts";
import { appointmentRoutes } from "./routes/appointments.ts";
import { appointmentActionRoutes } from "./routes/appointment_actions.ts";
import { scrapeJobRoutes } from "./routes/scrape_jobs.ts";
import { unsubscribeRoutes } from "./routes/unsubscribe.ts";
import { dlqRoutes } from "./routes/dlq.ts";
import { breakerRoutes } from "./routes/breakers.ts";
import { scheduleRoutes } from "./routes/schedules.ts";
import { queueRoutes } from "./routes/queue.ts";
import { sloRoutes } from "./routes/slo.ts";
import { createSloSource } from "./slo/slo_status.ts";
import { httpMetrics } from "./middleware/http_metrics.ts";
import { observeRateLimiter } from "./edge_metrics.ts";
import { analyticsRoutes } from "./routes/analytics.ts";
import { eventRoutes } from "./routes/events.ts";
import { modelRoutes } from "./routes/models.ts";
import { consoleRoutes } from "./console/routes.ts";
import type { LeadScorer } from "../shared/scoring/champion.ts";
import { createModelNotifier, type DeploymentAlert } from "../shared/scoring/notify.ts";
import { createFeedPublisher } from "../shared/ws/publisher.ts";
import type { BreakerRegistry } from "../shared/breakers/registry.ts";
import { validationHook } from "./validation.ts";
import { createResponseCache } from "./degraded/response_cache.ts";
import { upstreamRoutes } from "./proxy/upstream_routes.ts";
import type { LiveHub } from "./ws/hub.ts";
import { liveRoutes, liveSocketRoute } from "./ws/routes.ts";

/** Optional collaborators (tests inject their own). */
export interface AppOptions {
  queue?: TaskQueue;
  /** Started by the composition root (it has a lifecycle); enables /v1/breakers. */
  breakers?: BreakerRegistry;
  /** The live-feed hub (started by the composition root); enables /v1/ws. */
  live?: LiveHub;
  /**
   * Scores new leads (shared/scoring/champion.ts; the composition root starts
   * a ChampionWatcher). @default none: leads are written without a score
   */
  scorer?: LeadScorer;
  /**
   * Queues model deployment alerts for the alert webhook
   * (shared/alerts/producers.ts). @default none: log and live feed only
   */
  sendDeploymentAlert?: DeploymentAlert;
  /**
   * Receives work the composition root runs at shutdown, after the drain
   * (the rate limiter gives its leased, unused budget back). @default not run
   */
  onShutdown?: (hook: () => Promise<void>) => void;
}

/** Builds the edge application. */
export function createApp(deps: Deps, options: AppOptions = {}): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: validationHook,
    // Hono's default router, its answers remembered per method and path.
    router: memoRouter(new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] })),
  });
  const queue = options.queue ?? queueFromConfig(deps.redis, deps.config);

  // One layer of the chain for what every request gets: the request metrics
  // wrap the request span, which wraps the front (request id, client address,
  // access log, security and content headers).
  const span = requestSpan(
    front({ deps, resolveAddress: addressResolver(deps.config.perimeter.trustedProxies) }),
  );
  app.use(deps.config.observability.metricsEnabled ? httpMetrics(deps.metrics, span) : span);
  if (deps.config.corsOrigins.length > 0) {
    app.use(cors({
      origin: deps.config.corsOrigins,
      allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
      exposeHeaders: [
        "X-Request-Id",
        "RateLimit",
        "RateLimit-Policy",
        "Retry-After",
        "Idempotency-Replayed",
        "Location",
      ],
      maxAge: 600,
    }));
  }

  app.route("/", healthRoutes(deps));
  mountDocs(app);
  // The operator console: a page and its assets (public, they hold no data;
  // every number on the page comes from /v1 with the operator's token).
  app.route("/", consoleRoutes({ env: deps.config.env, auth: deps.config.auth, now: deps.now }));

  // Last good answers of breaker-guarded reads, shared by every route that degrades.
  const degradedCache = createResponseCache({
    redis: deps.redis,
    ttlMs: deps.config.degradedCacheTtlMs,
    maxEntries: deps.config.perimeter.degradedCacheMaxEntries,
    log: deps.log,
    now: deps.now,
  });
  // Built lazily at the first request, when every route below is registered.
  const methodsAt = allowedMethods(app.routes);
  const queryParamsAt = declaredQueryParams(() => app.openAPIRegistry.definitions);
  const gateway = buildGateway(deps, queue, { methodsAt, queryParamsAt });
  options.onShutdown?.(() => gateway.rateLimiter.close());
  if (deps.config.observability.metricsEnabled) {
    observeRateLimiter(deps.metrics, gateway.rateLimiter.metrics);
  }
  if (options.live) {
    // Before the chain: an upgrade has no JSON body or Idempotency-Key; it
    // authenticates itself with the chain's verifier, before upgrading.
    const { verifier, rateLimiter } = gateway;
    app.route(
      "/",
      liveSocketRoute({
        hub: options.live,
        verifier,
        origins: deps.config.corsOrigins,
        limiter: rateLimiter as MiddlewareHandler,
      }),
    );
  }
  // Pages people open from an email answer browsers in HTML, errors included
  // (also the gateway's 400/415/429, so it wraps the chain).
  app.use("/v1/unsubscribe", htmlErrorPages());
  // One layer; errors inside it answer through the app's error handler (set below).
  app.use("/v1/*", gateway.middleware(handleError));
  app.route("/", meRoutes());
  app.route("/", taskRoutes(queue, compilePolicy(ACCESS_POLICY)));
  app.route(
    "/",
    leadRoutes(
      deps,
      {
        ...(options.breakers
          ? {
            breakers: options.breakers,
            queue,
            cache: degradedCache,
            loopLag: options.breakers.loopLag,
          }
          : {}),
        ...(options.scorer ? { scorer: options.scorer } : {}),
        writeTimeoutMs: deps.config.database.writeTimeoutMs,
      },
    ),
  );
  app.route(
    "/",
    modelRoutes(deps, {
      queue,
      notify: createModelNotifier({
        log: deps.log,
        feed: createFeedPublisher({ redis: deps.redis, instanceId: "edge" }),
        ...(options.sendDeploymentAlert
          ? { sendDeploymentAlert: options.sendDeploymentAlert }
          : {}),
      }),
    }),
  );
  app.route(
    "/",
    scrapeJobRoutes(queue, { placesConfigured: deps.config.places.apiKey !== null }),
  );
  app.route("/", outreachRoutes(deps, queue));
  app.route("/", outreachTemplateRoutes(deps));
  app.route("/", sentEmailRoutes(deps));
  app.route("/", suppressionRoutes(deps));
  app.route("/", appointmentRoutes(deps, queue));
  app.route("/", appointmentActionRoutes(deps));
  app.route("/", unsubscribeRoutes(deps));
  app.route("/", dlqRoutes(queue));
  if (options.breakers) app.route("/", breakerRoutes(options.breakers));
  app.route("/", scheduleRoutes({ queue, schedules: deps.config.schedules, now: deps.now }));
  app.route("/", queueRoutes(queue));
  app.route(
    "/",
    sloRoutes(createSloSource({
      url: deps.config.observability.prometheus.url,
      timeoutMs: deps.config.observability.prometheus.timeoutMs,
      now: deps.now,
      log: deps.log,
    })),
  );
  if (options.live) app.route("/", liveRoutes(options.live));
  app.route(
    "/",
    analyticsRoutes(
      deps,
      options.breakers ? { breakers: options.breakers, cache: degradedCache } : {},
    ),
  );
  app.route("/", eventRoutes(deps, options.breakers ? { breakers: options.breakers } : {}));
  if (deps.config.upstreams.length > 0) {
    if (!options.breakers) {
      throw new TypeError("createApp: UPSTREAMS are configured but no breaker registry was given");
    }
    app.route(
      "/",
      upstreamRoutes({
        upstreams: deps.config.upstreams,
        breakers: options.breakers,
        queue,
        cache: degradedCache,
        now: deps.now,
      }),
    );
  }

  app.notFound((c) => noRoute(c, methodsAt(c)));

  app.onError(handleError);

  function handleError(err: Error, c: Context<AppEnv>): Response {
    if (err instanceof RequestBodyUnreadableError) {
      // Usually a client that went away (nobody reads the answer), else a drain (edge/request_body.ts).
      (c.get("log") ?? deps.log).debug("request body unreadable", { err, path: c.req.path });
    }
    if (err instanceof AppError) {
      const body = { code: err.code, status: err.status, title: err.message, ...err.details };
      if (err.status !== 503) return problem(c, body);
      // A 503 is the documented degraded answer only with Retry-After (found by `deno task chaos`).
      const retryAfter = typeof err.details?.retry_after === "number"
        ? err.details.retry_after
        : FAILURE_RETRY_S;
      return problem(c, { ...body, retry_after: retryAfter }, {
        "Retry-After": String(retryAfter),
      });
    }
    if (err instanceof HTTPException && err.status < 500) {
      return problem(c, {
        code: err.status === 400 ? "bad-request" : "http-error",
        status: err.status,
        title: err.message || "Bad request",
      });
    }
    if (isRedisUnreachable(err)) {
      (c.get("log") ?? deps.log).warn("redis unreachable", { err, path: c.req.path });
      return problem(c, {
        code: "dependency-unavailable",
        status: 503,
        title: "Redis temporarily unavailable",
        retry_after: FAILURE_RETRY_S,
      }, { "Retry-After": String(FAILURE_RETRY_S) });
    }
    (c.get("log") ?? deps.log).error("unhandled error", { err });
    // Opaque on purpose: internals stay in the log, found by request id.
    return problem(c, { code: "internal", status: 500, title: "Internal server error" });
  }

  return app;
}
