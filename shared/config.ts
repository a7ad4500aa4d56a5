/**
 * The only module that reads the environment. `parseConfig(env)` validates
 * every variable with zod, reads secrets from `NAME` or `NAME_FILE` (mounted
 * secret files), and throws ONE `ConfigError` listing every problem. Secret
 * values never appear in messages.
 *
 * The `VARIABLES` table is also the source of the configuration reference in
 * docs/configuration.md (`deno task config:docs`), and a test checks the two
 * agree.
 *
 * @module
 */
import { z } from "zod";
import { ConfigError } from "./errors.ts";
import {
  type BreakerPolicy,
  type BreakerPolicyInput,
  DEFAULT_BREAKER_POLICIES,
  resolvePolicies,
} from "./breakers/policy.ts";
import { resolveUpstreams, type Upstream } from "./upstreams/upstream.ts";
import { parseSchedules, type Schedule } from "./schedules/schedule.ts";
import { parseTrustedProxies, type TrustedProxies } from "./net/trusted_proxies.ts";

/** Description of one environment variable. */
export interface VariableSpec {
  name: string;
  description: string;
  /** Default as written in the environment; undefined = required (unless optional). */
  default?: string;
  /** May be absent with no default. */
  optional?: boolean;
  /** Secret: may come from `NAME_FILE`; never echoed. */
  secret?: boolean;
  schema: z.ZodType;
}

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
const httpUrl = z.url({ protocol: /^https?$/ });
/** Whole days, up to 100 years (retention windows). */
const days = z.coerce.number().int().min(1).max(36_500);
/**
 * The HMAC key every local/dev setup shares (published in this repository, so
 * anyone can mint tokens with it); refused outside APP_ENV=development|test,
 * by its kid and by its secret.
 */
export const DEV_HS256_KEY = "local:pleasant-cove-local-development-key-not-for-production";
/** The kid of {@linkcode DEV_HS256_KEY}. */
export const DEV_HS256_KID = "local";
const DEV_HS256_SECRET = DEV_HS256_KEY.slice(DEV_HS256_KID.length + 1);
/** The unsubscribe-link key of local setups; refused outside development/test like the JWT key. */
export const DEV_UNSUBSCRIBE_SECRET = "local-unsubscribe-secret-not-for-production";
/** Environments that may run with the published development secrets. */
const DEV_ENVIRONMENTS: ReadonlySet<string> = new Set(["development", "test"]);

/** `sa:<name>=<azp>` pairs → service sub → the one `azp` allowed to assert it. */
const serviceClients = z.string().transform((text, ctx) => {
  const out: Record<string, string> = {};
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const m = /^(sa:[A-Za-z0-9._-]{1,64})=([\x21-\x7e]{1,255})$/.exec(part);
    if (!m || Object.hasOwn(out, m[1]!)) {
      ctx.addIssue({ code: "custom", message: "expected distinct sa:<name>=<azp> pairs" });
      return z.NEVER;
    }
    out[m[1]!] = m[2]!;
  }
  return out;
});

const hs256Keys = z.string().transform((text, ctx) => {
  const keys: { kid: string; secret: string }[] = [];
  for (const part of text.split(",").map((p) => p.trim()).filter(Boolean)) {
    const i = part.indexOf(":");
    const kid = part.slice(0, i);
    const secret = part.slice(i + 1);
    if (i <= 0 || !/^[A-Za-z0-9._-]{1,64}$/.test(kid)) {
      ctx.addIssue({ code: "custom", message: "expected kid:secret pairs separated by commas" });
      return z.NEVER;
    }
    if (new TextEncoder().encode(secret).length < 32) {
      ctx.addIssue({ code: "custom", message: `secret of kid "${kid}" is shorter than 32 bytes` });
      return z.NEVER;
    }
    if (keys.some((k) => k.kid === kid)) {
      ctx.addIssue({ code: "custom", message: `kid "${kid}" appears twice` });
      return z.NEVER;
    }
    keys.push({ kid, secret });
  }
  return keys;
});

const rateLimitPolicy = z.object({
  algorithm: z.enum(["sliding_window", "token_bucket", "fixed_window"]).default("sliding_window"),
  /** Requests per window (token bucket: capacity). */
  limit: z.number().int().positive(),
  window_s: z.number().positive().max(86_400),
  /** Token bucket only: tokens added per window. @default limit */
  refill: z.number().int().positive().optional(),
  on_store_error: z.enum(["fail_open", "fail_closed"]).default("fail_open"),
}).strict();

/** A rate-limit policy as configured. */
export type RateLimitPolicy = z.output<typeof rateLimitPolicy>;

const rateLimitPolicies = z.string().transform((text, ctx) => {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    ctx.addIssue({ code: "custom", message: "expected a JSON object of policies" });
    return z.NEVER;
  }
  const parsed = z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), rateLimitPolicy).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    ctx.addIssue({ code: "custom", message: `${issue.path.join(".")}: ${issue.message}` });
    return z.NEVER;
  }
  if (!parsed.data.default) {
    ctx.addIssue({ code: "custom", message: 'a "default" policy is required' });
    return z.NEVER;
  }
  return parsed.data;
});

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

// Checked against the task catalog by the scheduler, which logs and skips what cannot run.
const schedulesJson = z.string().transform((text, ctx) => {
  const parsed = parseSchedules(text);
  if ("problems" in parsed) {
    ctx.addIssue({ code: "custom", message: parsed.problems.join("; ") });
    return z.NEVER;
  }
  return parsed.schedules;
});

// Validated against the breaker policies in parseConfig (it needs both).
const upstreamsJson = z.string().transform((text, ctx) => {
  try {
    return JSON.parse(text.trim() === "" ? "[]" : text) as unknown;
  } catch {
    ctx.addIssue({ code: "custom", message: "expected a JSON array of upstreams" });
    return z.NEVER;
  }
});

const DEFAULT_RATE_LIMITS = JSON.stringify({
  default: { limit: 600, window_s: 60 },
  admin: { limit: 120, window_s: 60 },
  anonymous: { limit: 60, window_s: 60 },
  // Its own bucket: a token guesser spending `anonymous` must not block the
  // RFC 8058 one-click unsubscribes behind the same address.
  unsubscribe: { limit: 30, window_s: 60 },
});

// Links already sent must keep working after a rotation: every line verifies.
const unsubscribeSecrets = z.string().transform((text, ctx) => {
  const secrets = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (secrets.length === 0 || secrets.some((s) => new TextEncoder().encode(s).length < 16)) {
    ctx.addIssue({
      code: "custom",
      message: "expected secrets of at least 16 bytes, one per line",
    });
    return z.NEVER;
  }
  return secrets;
});

const postgresUrl = z.string().regex(
  /^postgres(ql)?:\/\/.+/,
  "expected a postgres:// or postgresql:// URL",
);

/** Every variable the platform reads, in the order of the configuration reference. */
export const VARIABLES = [
  {
    name: "APP_ENV",
    description:
      "Deployment environment; `development` and `test` accept the published development keys. Required when `EDGE_HOST` is not a loopback address",
    default: "development",
    schema: z.enum(["development", "test", "production"]),
  },
  {
    name: "LOG_LEVEL",
    description: "Lowest log level written",
    default: "info",
    schema: z.enum(["debug", "info", "warn", "error"]),
  },
  {
    name: "EDGE_HOST",
    description: "Interface the edge HTTP server binds",
    default: "127.0.0.1",
    schema: z.string().min(1),
  },
  {
    name: "EDGE_PORT",
    description: "Port of the edge HTTP server (0 = any free port)",
    default: "8787",
    schema: port,
  },
  {
    name: "UPSTASH_REDIS_REST_URL",
    description: "Upstash Redis REST URL (the local bridge in dev/test)",
    schema: httpUrl,
  },
  {
    name: "UPSTASH_REDIS_REST_TOKEN",
    description: "Upstash Redis REST token",
    secret: true,
    schema: z.string().min(1),
  },
  {
    name: "DATABASE_URL",
    description: "Postgres connection string (Neon in production)",
    secret: true,
    schema: postgresUrl,
  },
  {
    name: "NEON_WS_PROXY",
    description: "WebSocket proxy `host:port/path` for the Neon driver; unset for real Neon",
    optional: true,
    schema: z.string().regex(/^[^\s/:]+:\d+\/\S*$/, "expected host:port/path without a scheme"),
  },
  {
    name: "NEON_USE_SECURE_WEBSOCKET",
    description: "Use wss:// to reach Postgres (false only for the local proxy)",
    default: "true",
    schema: bool,
  },
  {
    name: "NEON_PIPELINE_CONNECT",
    description: "Neon pipelined connect: `password` (Neon) or `false` (scram/trust servers)",
    default: "password",
    schema: z.enum(["password", "false"]).transform((
      v,
    ) => (v === "false" ? false : "password" as const)),
  },
  {
    name: "DB_POOL_MAX",
    description: "Maximum Postgres connections per process",
    default: "10",
    schema: positiveInt,
  },
  {
    name: "DB_WRITE_TIMEOUT_MS",
    description:
      "Deadline of a lead write's transaction; past it the connection is destroyed and the write fails as a database failure (docs/reliability.md)",
    default: "5000",
    schema: z.coerce.number().int().min(100).max(120_000),
  },
  {
    name: "READY_TIMEOUT_MS",
    description: "Time budget of each dependency check in `GET /ready`",
    default: "1000",
    schema: positiveInt,
  },
  {
    name: "SHUTDOWN_TIMEOUT_MS",
    description: "How long SIGTERM waits for in-flight work before exiting",
    default: "10000",
    schema: positiveInt,
  },
  {
    name: "QUEUE_IDEMPOTENCY_WINDOW_MS",
    description: "A repeated enqueue idempotency key within this window returns the first task",
    default: "3600000",
    schema: positiveInt,
  },
  {
    name: "QUEUE_MAX_PAYLOAD_BYTES",
    description: "Largest serialised task payload accepted at enqueue",
    default: "262144",
    schema: positiveInt,
  },
  {
    name: "QUEUE_KEEP_FINISHED_MS",
    description: "How long succeeded tasks stay readable before they expire",
    default: "86400000",
    schema: positiveInt,
  },
  {
    name: "QUEUE_DLQ_RETENTION_MS",
    description: "How long dead-lettered tasks are kept",
    default: "604800000",
    schema: positiveInt,
  },
  {
    name: "QUEUE_DLQ_CAP",
    description: "Dead-letter cap; beyond it the oldest entries are evicted with an alert",
    default: "10000",
    schema: positiveInt,
  },
  {
    name: "QUEUE_TASK_EVENTS",
    description:
      "Publish every task status change on the live feed's `tasks` topic, in the queue's own scripts (its cost is in docs/benchmarks.md; `false` turns it off)",
    default: "true",
    schema: bool,
  },
  {
    name: "WORKER_CONCURRENCY",
    description: "Tasks one worker process runs at once",
    default: "10",
    schema: positiveInt,
  },
  {
    name: "WORKER_LEASE_MS",
    description: "Task lease (visibility timeout); renewed by heartbeat while a task runs",
    default: "30000",
    schema: positiveInt,
  },
  {
    name: "WORKER_POLL_MS",
    description: "Safety-net poll interval of an idle worker (pub/sub wakes it sooner)",
    default: "1000",
    schema: positiveInt,
  },
  {
    name: "WORKER_SHUTDOWN_GRACE_MS",
    description: "On SIGTERM, how long in-flight tasks may finish before they are released",
    default: "25000",
    schema: positiveInt,
  },
  {
    name: "METRICS_ENABLED",
    description:
      "Prometheus metrics: the edge's request metrics and `/metrics` on the admin listeners (docs/observability.md)",
    default: "true",
    schema: bool,
  },
  {
    name: "EDGE_ADMIN_HOST",
    description:
      "Interface of the edge's admin listener (`/metrics`, `/health`, `/ready`; no JWT): keep it off the public network",
    default: "127.0.0.1",
    schema: z.string().min(1),
  },
  {
    name: "EDGE_ADMIN_PORT",
    description: "Port of the edge's admin listener (0 = any free port)",
    default: "9464",
    schema: port,
  },
  {
    name: "WORKER_ADMIN_HOST",
    description:
      "Interface of the worker's admin listener (`/health`, `/ready`, `/metrics`; no JWT): keep it off the public network",
    default: "127.0.0.1",
    schema: z.string().min(1),
  },
  {
    name: "WORKER_ADMIN_PORT",
    description: "Port of the worker's admin listener (0 = any free port)",
    default: "9465",
    schema: port,
  },
  {
    name: "ALERT_WEBHOOK_URL",
    description:
      "Alert webhook (docs/observability.md, Alert webhook): DLQ arrivals, breaker openings and model deployments are POSTed here by `deliver_alert` tasks; unset = off. `https:` outside development/test; link-local/metadata addresses always and private ones outside development/test are refused",
    optional: true,
    secret: true,
    schema: httpUrl,
  },
  {
    name: "ALERT_WEBHOOK_FORMAT",
    description:
      "Body of each alert webhook call: `alertmanager` (the Alertmanager webhook receiver payload, version 4) or `generic` (one JSON object per event)",
    default: "alertmanager",
    schema: z.enum(["alertmanager", "generic"]),
  },
  {
    name: "ALERT_WEBHOOK_AUTHORIZATION",
    description:
      "`Authorization` header value sent with every alert webhook call (e.g. `Bearer <token>`); optional",
    optional: true,
    secret: true,
    schema: z.string().min(1).max(4096).regex(/^[\x20-\x7e]+$/, "printable ASCII only"),
  },
  {
    name: "ALERT_WEBHOOK_TIMEOUT_MS",
    description: "Time budget of one alert webhook call (DNS check, connect and response)",
    default: "5000",
    schema: z.coerce.number().int().min(100).max(25_000),
  },
  {
    name: "SCHEDULES",
    description:
      'Recurring tasks as JSON, merged per name over the defaults in shared/schedules/schedule.ts (`refresh_lead_metrics` every 60 s, `apply_retention` daily at 03:00 UTC, `retrain_lead_model` weekly on Sundays at 04:00 UTC), e.g. `{"apply_retention":{"enabled":false},"ping":{"task_type":"noop","every_ms":300000}}`; fields task_type, payload, every_ms, offset_ms (slots are aligned to the epoch), enabled',
    default: "{}",
    schema: schedulesJson,
  },
  {
    name: "ANALYTICS_RETENTION_DAYS",
    description:
      "Raw lead events older than this many days are removed by the daily `apply_retention` task (TimescaleDB with policies: the retention policy's `drop_after`)",
    default: "90",
    schema: days,
  },
  {
    name: "ANALYTICS_ROLLUP_RETENTION_DAYS",
    description:
      "Hourly and daily lead-metrics rollup buckets older than this many days are removed; at least `ANALYTICS_RETENTION_DAYS` (rollups outlive raw events)",
    default: "400",
    schema: days,
  },
  {
    name: "ANALYTICS_RETENTION_BATCH",
    description:
      "Plain PostgreSQL: rows per `DELETE` statement of `apply_retention` (short transactions and locks)",
    default: "10000",
    schema: z.coerce.number().int().min(1).max(1_000_000),
  },
  {
    name: "ANALYTICS_RETENTION_MAX_BATCHES",
    description:
      "Plain PostgreSQL: `DELETE` statements per `apply_retention` task at most; when old rows remain the task enqueues its own continuation",
    default: "1000",
    schema: z.coerce.number().int().min(1).max(100_000),
  },
  {
    name: "ANALYTICS_REFRESH_LATE_WINDOW_DAYS",
    description:
      "TimescaleDB with continuous aggregates: how many days back `refresh_lead_metrics` re-materialises for late events; less than `ANALYTICS_RETENTION_DAYS`",
    default: "7",
    schema: days,
  },
  {
    name: "JWT_HS256_KEYS",
    description:
      "HMAC keys for HS256 tokens as `kid:secret` pairs, comma-separated (several for rotation); the default is a local development key",
    default: DEV_HS256_KEY,
    secret: true,
    schema: hs256Keys,
  },
  {
    name: "JWT_JWKS_URL",
    description:
      "JWKS URL for RS256/ES256/EdDSA tokens (optional); `https:` outside development/test",
    optional: true,
    schema: httpUrl,
  },
  {
    name: "JWT_JWKS_SERVICE_CLIENTS",
    description:
      "Services a JWKS-signed token may speak for, as `sa:<name>=<azp>` pairs, comma-separated: a JWKS token with `sub: sa:<name>` is accepted only when its `azp` is that client (HS256 keyring tokens are the platform's own and may name any service)",
    optional: true,
    schema: serviceClients,
  },
  {
    name: "JWT_JWKS_GRACE_MS",
    description: "Keep verifying with the last good JWKS this long while the JWKS URL is down",
    default: "3600000",
    schema: positiveInt,
  },
  {
    name: "JWT_JWKS_COOLDOWN_MS",
    description: "An unknown `kid` triggers at most one JWKS refetch per this interval",
    default: "30000",
    schema: positiveInt,
  },
  {
    name: "JWT_ISSUER",
    description: "Required `iss` claim",
    default: "pleasant-cove",
    schema: z.string().min(1),
  },
  {
    name: "JWT_AUDIENCE",
    description: "Required `aud` claim",
    default: "pleasant-cove-api",
    schema: z.string().min(1),
  },
  {
    name: "JWT_CLOCK_TOLERANCE_S",
    description: "Clock skew allowed on `exp`/`nbf`/`iat` (at most 30)",
    default: "30",
    schema: z.coerce.number().int().min(0).max(30),
  },
  {
    name: "RATE_LIMITS",
    description:
      'Rate-limit policies per route group as JSON: `{"default":{"limit":600,"window_s":60}, …}`; fields algorithm (`sliding_window`, `token_bucket`, `fixed_window`), limit, window_s, refill, on_store_error (`fail_open`, `fail_closed`)',
    default: DEFAULT_RATE_LIMITS,
    schema: rateLimitPolicies,
  },
  {
    name: "RATE_LIMIT_TIMEOUT_MS",
    description:
      "How long a rate-limit decision waits for Redis before the policy's on_store_error applies (too low over-admits under load)",
    default: "1500",
    schema: positiveInt,
  },
  {
    name: "BREAKER_POLICIES",
    description:
      'Circuit-breaker overrides as JSON, merged per breaker over the defaults in shared/breakers/policy.ts, e.g. `{"email":{"fail_max":3}}`',
    default: "{}",
    schema: breakerPolicies,
  },
  {
    name: "IDEMPOTENCY_TTL_MS",
    description: "How long a stored Idempotency-Key response is replayed",
    default: "86400000",
    schema: positiveInt,
  },
  {
    name: "MAX_BODY_BYTES",
    description: "Largest request body the edge accepts (413 above)",
    default: "1048576",
    schema: positiveInt,
  },
  {
    name: "MAX_JSON_DEPTH",
    description:
      "Deepest nesting of arrays/objects in a JSON request body (400 `json-too-deep` above), checked before anything parses it",
    default: "64",
    schema: z.coerce.number().int().min(1).max(1000),
  },
  {
    name: "CORS_ORIGINS",
    description: "Comma-separated origins allowed by CORS (empty: no cross-origin access)",
    default: "",
    optional: true,
    schema: z.string().transform((t) => t.split(",").map((o) => o.trim()).filter(Boolean)),
  },
  {
    name: "TRUSTED_PROXIES",
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
  {
    name: "DEGRADED_CACHE_MAX_ENTRIES",
    description:
      "Degraded-read answers kept per breaker; the least recently stored are evicted beyond it",
    default: "1000",
    schema: z.coerce.number().int().min(1).max(100_000),
  },
  {
    name: "IDEMPOTENCY_MAX_RESPONSE_BYTES",
    description:
      "Largest response an Idempotency-Key stores for replay; a larger one is passed through and its key marked not replayable",
    default: "262144",
    schema: z.coerce.number().int().min(1024).max(16_777_216),
  },
  {
    name: "WS_MAX_SOCKETS_PER_SUB",
    description: "Live feed: open sockets one principal (`sub`) may hold on one edge instance",
    default: "8",
    schema: positiveInt,
  },
  {
    name: "WS_MAX_SOCKETS_PER_INSTANCE",
    description: "Live feed: open sockets one edge instance accepts in all",
    default: "20000",
    schema: positiveInt,
  },
  {
    name: "WS_UPGRADES_PER_MINUTE",
    description:
      "Live feed: upgrade attempts one principal may make per minute on one instance (an in-process limiter; no Redis call)",
    default: "30",
    schema: positiveInt,
  },
  {
    name: "UPSTREAMS",
    description:
      'Upstream HTTP services the gateway forwards to, as a JSON array of `{"name","base_url","prefix","methods","principals","timeout_ms","breaker","forward_authorization","forward_headers","pass_set_cookie"}` (see docs/breakers.md, Upstream proxy routes)',
    default: "[]",
    schema: upstreamsJson,
  },
  {
    name: "DEGRADED_CACHE_TTL_MS",
    description:
      "How long the last good answer of a breaker-guarded read is kept to serve while its breaker is open (short on purpose: at most a day)",
    default: "600000",
    schema: z.coerce.number().int().positive().max(86_400_000),
  },
  {
    name: "PUBLIC_BASE_URL",
    description:
      "Public URL of the edge, used in links sent to people (unsubscribe). Default: the edge's own address, `http://EDGE_HOST:EDGE_PORT` (a wildcard host becomes 127.0.0.1); `deno task dev` passes the edge's real address when EDGE_PORT is 0",
    optional: true,
    schema: httpUrl.transform((u) => u.replace(/\/+$/, "")),
  },
  {
    name: "EMAIL_PROVIDER",
    description: "How send_email delivers: `file` (.eml files in EMAIL_DIR), `smtp` or `http_api`",
    default: "file",
    schema: z.enum(["file", "smtp", "http_api"]),
  },
  {
    name: "EMAIL_DIR",
    description: "Folder the `file` email provider writes .eml files to",
    default: ".tmp/outbox",
    schema: z.string().min(1),
  },
  {
    name: "SMTP_URL",
    description:
      "SMTP server for the `smtp` provider, e.g. `smtp://user:pass@mail.example:587`; with credentials, `smtp://` must upgrade with STARTTLS (`smtps://` is TLS from the start)",
    optional: true,
    secret: true,
    schema: z.string().regex(/^smtps?:\/\/.+/, "expected smtp:// or smtps://"),
  },
  {
    name: "EMAIL_API_URL",
    description: "Endpoint of the `http_api` email provider (POST JSON, honours Idempotency-Key)",
    optional: true,
    schema: httpUrl,
  },
  {
    name: "EMAIL_API_KEY",
    description: "Bearer key for the `http_api` email provider",
    optional: true,
    secret: true,
    schema: z.string().min(1),
  },
  {
    name: "EMAIL_FROM",
    description: "From address of outreach email",
    default: "Pleasant Cove <hello@pleasantcove.local>",
    schema: z.string().min(3).max(300),
  },
  {
    name: "EMAIL_MESSAGE_ID_DOMAIN",
    description: "Domain of the deterministic Message-IDs (`<ledger-id@domain>`)",
    default: "pleasantcove.local",
    schema: z.string().regex(/^[a-z0-9.-]+$/i),
  },
  {
    name: "UNSUBSCRIBE_SECRET",
    description:
      "HMAC key of unsubscribe links (at least 16 bytes); several, one per line, during a rotation: the first signs, every one verifies",
    default: DEV_UNSUBSCRIBE_SECRET,
    secret: true,
    schema: unsubscribeSecrets,
  },
  {
    name: "PLACES_API_KEY",
    description: "Google Places API key for the `places` lead provider",
    optional: true,
    secret: true,
    schema: z.string().min(1),
  },
  {
    name: "PLACES_BASE_URL",
    description: "Places API base URL (tests point it at a local replay server)",
    default: "https://places.googleapis.com",
    schema: httpUrl,
  },
  {
    name: "PLACES_QPS",
    description: "Requests per second the places provider sends at most",
    default: "5",
    schema: z.coerce.number().positive().max(1000),
  },
  {
    name: "DEFAULT_PHONE_REGION",
    description: "Region for phone numbers without a country code (ISO 3166 alpha-2)",
    default: "US",
    schema: z.string().regex(/^[A-Z]{2}$/),
  },
  {
    name: "WS_HISTORY_MAX_LEN",
    description:
      "Live feed: messages kept per topic for reconnecting clients (edge and workers append)",
    default: "10000",
    schema: positiveInt,
  },
  {
    name: "WS_HISTORY_MAX_AGE_MS",
    description:
      "Live feed: history older than this is trimmed; a `since` further back gets `recovered: false`",
    default: "120000",
    schema: positiveInt,
  },
  {
    name: "WS_PING_INTERVAL_MS",
    description:
      "Live feed: a silent socket is pinged after this long and dropped after as long again",
    default: "25000",
    schema: positiveInt,
  },
  {
    name: "WS_REAUTH_GRACE_MS",
    description:
      'Live feed: time to answer `{"type":"reauth"}` after the token expired, before the close with 4001',
    default: "30000",
    schema: positiveInt,
  },
  {
    name: "WS_SEND_QUEUE_MAX_BYTES",
    description:
      "Live feed: per-socket send queue limit in bytes; beyond it the socket is closed with 4008 (slow consumer)",
    default: "1048576",
    schema: positiveInt,
  },
  {
    name: "WS_SEND_QUEUE_MAX_MESSAGES",
    description: "Live feed: per-socket send queue limit in messages (4008 beyond it)",
    default: "1000",
    schema: positiveInt,
  },
  {
    name: "WS_SEND_HIGH_WATER_BYTES",
    description:
      "Live feed: frames go straight to a socket while its runtime buffer holds less than this",
    default: "65536",
    schema: positiveInt,
  },
  {
    name: "WS_MAX_FRAME_BYTES",
    description: "Live feed: largest client frame; larger ones get an `error` frame",
    default: "16384",
    schema: positiveInt,
  },
  {
    name: "WS_MAX_VIOLATIONS",
    description: "Live feed: protocol violations of one socket before the close with 1008",
    default: "10",
    schema: positiveInt,
  },
  {
    name: "WS_MAX_KEYS_PER_TOPIC",
    description: "Live feed: keyed subscriptions (`tasks:<id>`) per topic per socket",
    default: "100",
    schema: positiveInt,
  },
  {
    name: "WS_CLIENT_TTL_MS",
    description:
      "Live feed: lifetime of a client's registry entry (GET /v1/ws/clients) unless refreshed",
    default: "300000",
    schema: positiveInt,
  },
  {
    name: "WS_REGISTRY_REFRESH_MS",
    description:
      "Live feed: how often an edge refreshes its clients' registry entries; less than `WS_CLIENT_TTL_MS`",
    default: "60000",
    schema: positiveInt,
  },
  {
    name: "WS_HEARTBEAT_MS",
    description:
      "Live feed: period of each edge's subscription check (a silent subscription is reopened and its gap filled)",
    default: "1000",
    schema: positiveInt,
  },
  {
    name: "WS_BUS_TIMEOUT_MS",
    description: "Live feed: longest wait for a Redis call of the feed's subscription",
    default: "2000",
    schema: positiveInt,
  },
  {
    name: "WS_LEAD_EVENTS_POLL_MS",
    description:
      "Live feed: how often the leader edge publishes newly committed lead events on `leads`",
    default: "250",
    schema: positiveInt,
  },
  {
    name: "SECRETS_SOURCE",
    description:
      "Where secret variables come from: `env` (`NAME` or a mounted `NAME_FILE`, re-read every `SECRETS_RELOAD_MS`) or `aws` (AWS Secrets Manager, see docs/deploying.md)",
    default: "env",
    schema: z.enum(["env", "aws"]),
  },
  {
    name: "SECRETS_RELOAD_MS",
    description:
      "How often rotated secrets are picked up without a restart (`NAME_FILE` files re-read; the AWS cache consulted)",
    default: "5000",
    schema: positiveInt,
  },
  {
    name: "SECRETS_AWS_REGION",
    description: "AWS region of the secrets (`SECRETS_SOURCE=aws`); unset: the SDK's default chain",
    optional: true,
    schema: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "expected an AWS region like us-east-1"),
  },
  {
    name: "SECRETS_AWS_ENDPOINT",
    description:
      "Secrets Manager endpoint override (a VPC endpoint; tests point it at a local server)",
    optional: true,
    schema: httpUrl,
  },
  {
    name: "SECRETS_AWS_PREFIX",
    description:
      "Name prefix of the AWS secrets: `<prefix>database`, `<prefix>jwt`, `<prefix>api-keys`",
    default: "pleasant-cove/",
    schema: z.string().regex(/^[A-Za-z0-9/_+=.@-]*$/),
  },
  {
    name: "SECRETS_AWS_TTL_MS",
    description:
      "Cached AWS secret values are refreshed in the background once older than this; the last good value is served while AWS is unreachable",
    default: "300000",
    schema: positiveInt,
  },
  {
    name: "ML_TRAINING_WINDOW_DAYS",
    description:
      "Lead scoring: training reads the labelled leads whose last status change lies within this many days (docs/lead-scoring.md)",
    default: "90",
    schema: days,
  },
  {
    name: "ML_LABEL_SETTLE_DAYS",
    description:
      "Lead scoring: a `responded` or `meeting_scheduled` lead counts as not converted only once its status has not moved for this many days",
    default: "14",
    schema: z.coerce.number().int().min(0).max(365),
  },
  {
    name: "ML_MIN_ROWS",
    description: "Lead scoring: training is refused with fewer labelled leads than this",
    default: "100",
    schema: z.coerce.number().int().min(10).max(10_000_000),
  },
  {
    name: "ML_MIN_CLASS_EXAMPLES",
    description:
      "Lead scoring: training is refused when the training, calibration or holdout split has fewer converted or not-converted leads than this",
    default: "10",
    schema: z.coerce.number().int().min(1).max(1_000_000),
  },
  {
    name: "ML_SEED",
    description: "Lead scoring: the forest's random seed (same data and seed give the same model)",
    default: "42",
    schema: z.coerce.number().int().min(0).max(0xffffffff),
  },
  {
    name: "ML_GATE_MIN_ROC_AUC",
    description:
      "Lead scoring gate: the least holdout ROC AUC a candidate needs to become the champion (it must also beat the majority-class baseline's log loss and the champion's AUC on the same holdout)",
    default: "0.75",
    schema: z.coerce.number().min(0.5).max(1),
  },
  {
    name: "ML_GATE_CHAMPION_TOLERANCE",
    description:
      "Lead scoring gate: how much lower than the current champion's holdout ROC AUC a candidate's may be",
    default: "0",
    schema: z.coerce.number().min(0).max(0.5),
  },
  {
    name: "ML_THRESHOLD",
    description:
      "Lead scoring: the calibrated probability at which accuracy, precision and recall count a lead as converting",
    default: "0.5",
    schema: z.coerce.number().gt(0).lt(1),
  },
  {
    name: "ML_AUTO_ACTIVATE",
    description:
      "Lead scoring: a candidate that passes the gate becomes the champion at once (false: an admin activates it)",
    default: "true",
    schema: bool,
  },
  {
    name: "ML_CHAMPION_CHECK_MS",
    description:
      "Lead scoring: how often every edge and worker checks the registry for a new champion",
    default: "2000",
    schema: z.coerce.number().int().min(100).max(600_000),
  },
  {
    name: "ML_RESCORE_CHUNK",
    description: "Lead scoring: open leads rescored per transaction after an activation",
    default: "1000",
    schema: z.coerce.number().int().min(1).max(50_000),
  },
  {
    name: "MLFLOW_TRACKING_URI",
    description:
      "MLflow tracking server (http/https); when set, every training run is also logged there through its REST API",
    optional: true,
    schema: httpUrl,
  },
  {
    name: "MLFLOW_TRACKING_TOKEN",
    description: "Bearer token for `MLFLOW_TRACKING_URI`",
    optional: true,
    secret: true,
    schema: z.string().min(1),
  },
  {
    name: "MLFLOW_EXPERIMENT_NAME",
    description: "MLflow experiment the runs are logged under (created when missing)",
    default: "pleasant-cove-lead-scoring",
    schema: z.string().min(1).max(500),
  },
] as const satisfies readonly VariableSpec[];

type ParsedValues = {
  [S in (typeof VARIABLES)[number] as S["name"]]: S extends { optional: true }
    ? z.output<S["schema"]> | undefined
    : z.output<S["schema"]>;
};

/** Where Postgres is and how the Neon driver reaches it (config and dev stack alike). */
export interface DatabaseTarget {
  url: string;
  /** neonConfig.wsProxy string form (`host:port/path`); null for real Neon. */
  wsProxy: string | null;
  useSecureWebSocket: boolean;
  pipelineConnect: "password" | false;
}

/** The validated configuration, built once per process and passed down. */
export interface Config {
  env: "development" | "test" | "production";
  logLevel: "debug" | "info" | "warn" | "error";
  edge: { host: string; port: number };
  redis: { url: string; token: string };
  database: DatabaseTarget & { poolMax: number; writeTimeoutMs: number };
  readyTimeoutMs: number;
  shutdownTimeoutMs: number;
  queue: {
    idempotencyWindowMs: number;
    maxPayloadBytes: number;
    keepFinishedMs: number;
    dlqRetentionMs: number;
    dlqCap: number;
    /** Dead-lettered tasks queue an alert (on when the alert webhook is set). */
    deadLetterAlerts: boolean;
    /** Task status changes on the live feed (see shared/queue/queue.ts). */
    taskFeed: { origin: string; historyMaxLen: number; historyMaxAgeMs: number } | null;
  };
  worker: { concurrency: number; leaseMs: number; pollMs: number; shutdownGraceMs: number };
  /** Metrics and the admin listeners (shared/metrics/). */
  observability: {
    metricsEnabled: boolean;
    edgeAdmin: { host: string; port: number };
    workerAdmin: { host: string; port: number };
  };
  /** The alert webhook (shared/alerts/); `webhookUrl` null = off. */
  alerts: {
    webhookUrl: string | null;
    format: "alertmanager" | "generic";
    authorization: string | null;
    timeoutMs: number;
  };
  /** Recurring tasks (shared/schedules/); every worker runs the scheduler. */
  schedules: Schedule[];
  /** The analytics maintenance tasks (refresh_lead_metrics, apply_retention). */
  analytics: {
    /** Raw lead events older than this are removed. */
    retentionMs: number;
    /** Rollup buckets older than this are removed; at least retentionMs. */
    rollupRetentionMs: number;
    /** Plain PostgreSQL: rows per DELETE. */
    retentionBatchSize: number;
    /** Plain PostgreSQL: DELETE statements per apply_retention task. */
    retentionMaxBatches: number;
    /** Tier 1: how far back a refresh re-materialises for late events. */
    refreshLateWindowMs: number;
  };
  auth: {
    hs256Keys: { kid: string; secret: string }[];
    jwksUrl: string | null;
    /** Service sub → the `azp` allowed to assert it in a JWKS token (edge/auth/verify.ts). */
    jwksServiceClients: Record<string, string>;
    jwksGraceMs: number;
    jwksCooldownMs: number;
    issuer: string;
    audience: string;
    clockToleranceS: number;
  };
  rateLimits: Record<string, RateLimitPolicy>;
  rateLimitTimeoutMs: number;
  breakerPolicies: Record<string, BreakerPolicy>;
  idempotencyTtlMs: number;
  maxBodyBytes: number;
  maxJsonDepth: number;
  corsOrigins: string[];
  upstreams: Upstream[];
  degradedCacheTtlMs: number;
  /** Client address, caches and socket caps (docs/security.md, Perimeter). */
  perimeter: {
    trustedProxies: TrustedProxies;
    degradedCacheMaxEntries: number;
    idempotencyMaxResponseBytes: number;
    wsMaxSocketsPerSub: number;
    wsMaxSocketsPerInstance: number;
    wsUpgradesPerMinute: number;
  };
  publicBaseUrl: string;
  email: {
    provider: "file" | "smtp" | "http_api";
    dir: string;
    smtpUrl: string | null;
    apiUrl: string | null;
    apiKey: string | null;
    from: string;
    messageIdDomain: string;
    /** Signs unsubscribe links (the first UNSUBSCRIBE_SECRET line). */
    unsubscribeSecret: string;
    /** Every UNSUBSCRIBE_SECRET line: links signed with any of them verify. */
    unsubscribeVerifySecrets: string[];
  };
  places: { apiKey: string | null; baseUrl: string; qps: number };
  defaultPhoneRegion: string;
  /** Where secrets come from and how rotations are picked up (shared/secrets/). */
  secrets: {
    source: "env" | "aws";
    reloadMs: number;
    aws: { region: string | null; endpoint: string | null; prefix: string; ttlMs: number };
  };
  /** The WebSocket live feed (edge/ws/, shared/ws/); names match the hub's options. */
  liveFeed: {
    historyMaxLen: number;
    historyMaxAgeMs: number;
    pingIntervalMs: number;
    reauthGraceMs: number;
    sendQueueMaxBytes: number;
    sendQueueMaxMessages: number;
    sendHighWaterBytes: number;
    maxFrameBytes: number;
    maxViolations: number;
    maxKeysPerTopic: number;
    clientTtlMs: number;
    registryRefreshMs: number;
    heartbeatMs: number;
    busTimeoutMs: number;
    leadEventsPollMs: number;
  };
  /** Lead scoring (shared/scoring/, docs/lead-scoring.md). */
  ml: {
    windowMs: number;
    settleDays: number;
    minRows: number;
    minClassExamples: number;
    seed: number;
    gate: { minRocAuc: number; championTolerance: number };
    threshold: number;
    autoActivate: boolean;
    championCheckMs: number;
    rescoreChunk: number;
    mlflow: { trackingUri: string; token: string | null; experimentName: string } | null;
  };
}

/** Options for {@linkcode parseConfig}. */
export interface ParseConfigOptions {
  /** Reads a `NAME_FILE` secret. @default Deno.readTextFileSync */
  readTextFile?: (path: string) => string;
}

function describeIssue(issue: z.core.$ZodIssue, raw: string, secret: boolean): string {
  const shown = secret
    ? ""
    : ` (got ${JSON.stringify(raw.length > 80 ? raw.slice(0, 80) + "…" : raw)})`;
  return `${issue.message}${shown}`;
}

const DAY_MS = 86_400_000;

/**
 * The analytics windows depend on each other: rollups must outlive the raw
 * events they summarise (shared/analytics/retention.ts refuses otherwise, at
 * 03:00, in a worker), and the tier-1 late-event window must lie inside the
 * raw retention (a refresh over dropped chunks would empty their buckets).
 */
function analyticsProblems(values: Record<string, unknown>): string[] {
  const raw = values.ANALYTICS_RETENTION_DAYS as number | undefined;
  const rollup = values.ANALYTICS_ROLLUP_RETENTION_DAYS as number | undefined;
  const late = values.ANALYTICS_REFRESH_LATE_WINDOW_DAYS as number | undefined;
  if (raw === undefined) return [];
  const problems: string[] = [];
  if (rollup !== undefined && rollup < raw) {
    problems.push(
      `ANALYTICS_ROLLUP_RETENTION_DAYS: must be at least ANALYTICS_RETENTION_DAYS (${raw}), got ${rollup}`,
    );
  }
  if (late !== undefined && late >= raw) {
    problems.push(
      `ANALYTICS_REFRESH_LATE_WINDOW_DAYS: must be less than ANALYTICS_RETENTION_DAYS (${raw}), got ${late}`,
    );
  }
  return problems;
}

/** True for a host name or address that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * What a deployment outside development/test must not run with (see
 * docs/security.md): the published development secrets (the JWT key by kid
 * and by value, the unsubscribe key), a JWKS fetched over plain HTTP (whoever
 * can answer it mints tokens). `APP_ENV` unset on a reachable `EDGE_HOST` is
 * refused rather than defaulted: defaulting to production would fail anyway
 * on the development keys, with a less useful message, and defaulting to
 * development is how a published key goes live.
 */
function deploymentProblems(
  env: Record<string, string | undefined>,
  values: Record<string, unknown>,
): string[] {
  const problems: string[] = [];
  const appEnv = values.APP_ENV as string | undefined;
  const host = values.EDGE_HOST as string | undefined;
  if ((env.APP_ENV ?? "").trim() === "" && host !== undefined && !isLoopbackHost(host)) {
    problems.push(
      `APP_ENV: required when EDGE_HOST (${
        JSON.stringify(host)
      }) is not a loopback address; set production, or development/test on a trusted network`,
    );
  }
  if (appEnv === undefined || DEV_ENVIRONMENTS.has(appEnv)) return problems;
  const keys = values.JWT_HS256_KEYS as { kid: string; secret: string }[] | undefined;
  if (keys?.some((k) => k.kid === DEV_HS256_KID || k.secret === DEV_HS256_SECRET)) {
    problems.push(
      `JWT_HS256_KEYS: the development key (kid "${DEV_HS256_KID}" or its secret) is refused with APP_ENV=${appEnv}; set your own keys`,
    );
  }
  // Every line verifies, so the development key is refused on any of them.
  if ((values.UNSUBSCRIBE_SECRET as string[] | undefined)?.includes(DEV_UNSUBSCRIBE_SECRET)) {
    problems.push(
      `UNSUBSCRIBE_SECRET: the development key is refused with APP_ENV=${appEnv}; set your own`,
    );
  }
  const jwks = values.JWT_JWKS_URL as string | undefined;
  if (jwks !== undefined && !jwks.startsWith("https:")) {
    problems.push(`JWT_JWKS_URL: must be https: with APP_ENV=${appEnv}`);
  }
  // The URL is a secret (it may carry a token): the message never shows it.
  const alertUrl = values.ALERT_WEBHOOK_URL as string | undefined;
  if (alertUrl !== undefined && !alertUrl.startsWith("https:")) {
    problems.push(`ALERT_WEBHOOK_URL: must be https: with APP_ENV=${appEnv}`);
  }
  return problems;
}

/**
 * The published development secrets `config` runs with (empty outside
 * development/test, where parseConfig refuses them): the processes log one
 * loud warning at startup while any is active.
 */
export function activeDevSecrets(config: Config): string[] {
  const active: string[] = [];
  if (
    config.auth.hs256Keys.some((k) => k.kid === DEV_HS256_KID || k.secret === DEV_HS256_SECRET)
  ) {
    active.push("JWT_HS256_KEYS");
  }
  if (config.email.unsubscribeVerifySecrets.includes(DEV_UNSUBSCRIBE_SECRET)) {
    active.push("UNSUBSCRIBE_SECRET");
  }
  return active;
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

/**
 * Validates `env` and returns the typed configuration; throws one
 * {@linkcode ConfigError} naming every invalid or missing variable.
 */
export function parseConfig(
  env: Record<string, string | undefined>,
  options: ParseConfigOptions = {},
): Config {
  const readTextFile = options.readTextFile ?? ((p: string) => Deno.readTextFileSync(p));
  const problems: string[] = [];
  const values: Record<string, unknown> = {};

  for (const spec of VARIABLES as readonly VariableSpec[]) {
    let raw = env[spec.name];
    if (spec.secret) {
      const file = env[`${spec.name}_FILE`];
      if (file !== undefined && raw !== undefined) {
        problems.push(`${spec.name}: set either ${spec.name} or ${spec.name}_FILE, not both`);
        continue;
      }
      if (file !== undefined) {
        try {
          // Mounted secrets usually end with a newline that is not part of the value.
          raw = readTextFile(file).replace(/\r?\n$/, "");
        } catch (err) {
          const reason = err instanceof Error ? err.name : "unreadable";
          problems.push(`${spec.name}_FILE: cannot read ${JSON.stringify(file)} (${reason})`);
          continue;
        }
      }
      // A secret set to nothing (an empty variable, an empty mounted file) is
      // a deployment mistake where there is a default to fall back to: that
      // would silently put a published development key in charge. An optional
      // secret without a default (a provider key a deployment does not use)
      // has nothing to fall back to: empty is unset, which is how a mounted
      // secret with every key says "not used" (docs/deploying.md).
      const nothingToFallBackTo = spec.optional === true && spec.default === undefined;
      if (raw !== undefined && raw.trim() === "" && nothingToFallBackTo) raw = "";
      else if (raw !== undefined && raw.trim() === "") {
        problems.push(
          `${spec.name}${
            file !== undefined ? "_FILE" : ""
          }: empty (a secret must have a value; unset it to use the default)`,
        );
        continue;
      }
    }
    if (raw === undefined || raw === "") {
      if (spec.default !== undefined) raw = spec.default;
      else if (spec.optional) {
        values[spec.name] = undefined;
        continue;
      } else {
        problems.push(
          `${spec.name}: missing (${spec.description}${
            spec.secret ? `; or set ${spec.name}_FILE` : ""
          })`,
        );
        continue;
      }
    }
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) values[spec.name] = parsed.data;
    else {
      problems.push(`${spec.name}: ${describeIssue(parsed.error.issues[0]!, raw, !!spec.secret)}`);
    }
  }
  problems.push(...deploymentProblems(env, values));
  if (values.EMAIL_PROVIDER === "smtp" && values.SMTP_URL === undefined) {
    problems.push("SMTP_URL: required when EMAIL_PROVIDER=smtp");
  }
  if (
    values.EMAIL_PROVIDER === "http_api" &&
    (values.EMAIL_API_URL === undefined || values.EMAIL_API_KEY === undefined)
  ) {
    problems.push("EMAIL_API_URL/EMAIL_API_KEY: both required when EMAIL_PROVIDER=http_api");
  }
  problems.push(...analyticsProblems(values));
  const ttl = values.WS_CLIENT_TTL_MS as number | undefined;
  const refresh = values.WS_REGISTRY_REFRESH_MS as number | undefined;
  if (ttl !== undefined && refresh !== undefined && refresh >= ttl) {
    // Entries would expire between refreshes and clients vanish from the registry.
    problems.push(
      `WS_REGISTRY_REFRESH_MS: must be less than WS_CLIENT_TTL_MS (${ttl}), got ${refresh}`,
    );
  }
  let upstreams: Upstream[] = [];
  if (values.UPSTREAMS !== undefined && values.BREAKER_POLICIES !== undefined) {
    const resolved = resolveUpstreams(
      values.UPSTREAMS,
      Object.keys(values.BREAKER_POLICIES as Record<string, unknown>),
    );
    if ("problems" in resolved) problems.push(...resolved.problems.map((p) => `UPSTREAMS${p}`));
    else upstreams = resolved.upstreams;
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const v = values as ParsedValues;
  return {
    env: v.APP_ENV,
    logLevel: v.LOG_LEVEL,
    edge: { host: v.EDGE_HOST, port: v.EDGE_PORT },
    redis: { url: v.UPSTASH_REDIS_REST_URL, token: v.UPSTASH_REDIS_REST_TOKEN },
    database: {
      url: v.DATABASE_URL,
      wsProxy: v.NEON_WS_PROXY ?? null,
      useSecureWebSocket: v.NEON_USE_SECURE_WEBSOCKET,
      pipelineConnect: v.NEON_PIPELINE_CONNECT,
      poolMax: v.DB_POOL_MAX,
      writeTimeoutMs: v.DB_WRITE_TIMEOUT_MS,
    },
    readyTimeoutMs: v.READY_TIMEOUT_MS,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    queue: {
      idempotencyWindowMs: v.QUEUE_IDEMPOTENCY_WINDOW_MS,
      maxPayloadBytes: v.QUEUE_MAX_PAYLOAD_BYTES,
      keepFinishedMs: v.QUEUE_KEEP_FINISHED_MS,
      dlqRetentionMs: v.QUEUE_DLQ_RETENTION_MS,
      dlqCap: v.QUEUE_DLQ_CAP,
      deadLetterAlerts: v.ALERT_WEBHOOK_URL !== undefined,
      taskFeed: v.QUEUE_TASK_EVENTS
        ? {
          origin: "queue",
          historyMaxLen: v.WS_HISTORY_MAX_LEN,
          historyMaxAgeMs: v.WS_HISTORY_MAX_AGE_MS,
        }
        : null,
    },
    worker: {
      concurrency: v.WORKER_CONCURRENCY,
      leaseMs: v.WORKER_LEASE_MS,
      pollMs: v.WORKER_POLL_MS,
      shutdownGraceMs: v.WORKER_SHUTDOWN_GRACE_MS,
    },
    observability: {
      metricsEnabled: v.METRICS_ENABLED,
      edgeAdmin: { host: v.EDGE_ADMIN_HOST, port: v.EDGE_ADMIN_PORT },
      workerAdmin: { host: v.WORKER_ADMIN_HOST, port: v.WORKER_ADMIN_PORT },
    },
    alerts: {
      webhookUrl: v.ALERT_WEBHOOK_URL ?? null,
      format: v.ALERT_WEBHOOK_FORMAT,
      authorization: v.ALERT_WEBHOOK_AUTHORIZATION ?? null,
      timeoutMs: v.ALERT_WEBHOOK_TIMEOUT_MS,
    },
    schedules: v.SCHEDULES,
    analytics: {
      retentionMs: v.ANALYTICS_RETENTION_DAYS * DAY_MS,
      rollupRetentionMs: v.ANALYTICS_ROLLUP_RETENTION_DAYS * DAY_MS,
      retentionBatchSize: v.ANALYTICS_RETENTION_BATCH,
      retentionMaxBatches: v.ANALYTICS_RETENTION_MAX_BATCHES,
      refreshLateWindowMs: v.ANALYTICS_REFRESH_LATE_WINDOW_DAYS * DAY_MS,
    },
    auth: {
      hs256Keys: v.JWT_HS256_KEYS,
      jwksUrl: v.JWT_JWKS_URL ?? null,
      jwksServiceClients: v.JWT_JWKS_SERVICE_CLIENTS ?? {},
      jwksGraceMs: v.JWT_JWKS_GRACE_MS,
      jwksCooldownMs: v.JWT_JWKS_COOLDOWN_MS,
      issuer: v.JWT_ISSUER,
      audience: v.JWT_AUDIENCE,
      clockToleranceS: v.JWT_CLOCK_TOLERANCE_S,
    },
    rateLimits: v.RATE_LIMITS,
    rateLimitTimeoutMs: v.RATE_LIMIT_TIMEOUT_MS,
    breakerPolicies: v.BREAKER_POLICIES,
    idempotencyTtlMs: v.IDEMPOTENCY_TTL_MS,
    maxBodyBytes: v.MAX_BODY_BYTES,
    maxJsonDepth: v.MAX_JSON_DEPTH,
    corsOrigins: v.CORS_ORIGINS ?? [],
    upstreams,
    degradedCacheTtlMs: v.DEGRADED_CACHE_TTL_MS,
    perimeter: {
      trustedProxies: v.TRUSTED_PROXIES ?? { kind: "none" },
      degradedCacheMaxEntries: v.DEGRADED_CACHE_MAX_ENTRIES,
      idempotencyMaxResponseBytes: v.IDEMPOTENCY_MAX_RESPONSE_BYTES,
      wsMaxSocketsPerSub: v.WS_MAX_SOCKETS_PER_SUB,
      wsMaxSocketsPerInstance: v.WS_MAX_SOCKETS_PER_INSTANCE,
      wsUpgradesPerMinute: v.WS_UPGRADES_PER_MINUTE,
    },
    publicBaseUrl: v.PUBLIC_BASE_URL ?? edgeBaseUrl(v.EDGE_HOST, v.EDGE_PORT),
    email: {
      provider: v.EMAIL_PROVIDER,
      dir: v.EMAIL_DIR,
      smtpUrl: v.SMTP_URL ?? null,
      apiUrl: v.EMAIL_API_URL ?? null,
      apiKey: v.EMAIL_API_KEY ?? null,
      from: v.EMAIL_FROM,
      messageIdDomain: v.EMAIL_MESSAGE_ID_DOMAIN,
      unsubscribeSecret: v.UNSUBSCRIBE_SECRET[0]!,
      unsubscribeVerifySecrets: v.UNSUBSCRIBE_SECRET,
    },
    places: {
      apiKey: v.PLACES_API_KEY ?? null,
      baseUrl: v.PLACES_BASE_URL,
      qps: v.PLACES_QPS,
    },
    defaultPhoneRegion: v.DEFAULT_PHONE_REGION,
    secrets: {
      source: v.SECRETS_SOURCE,
      reloadMs: v.SECRETS_RELOAD_MS,
      aws: {
        region: v.SECRETS_AWS_REGION ?? null,
        endpoint: v.SECRETS_AWS_ENDPOINT ?? null,
        prefix: v.SECRETS_AWS_PREFIX,
        ttlMs: v.SECRETS_AWS_TTL_MS,
      },
    },
    ml: {
      windowMs: v.ML_TRAINING_WINDOW_DAYS * DAY_MS,
      settleDays: v.ML_LABEL_SETTLE_DAYS,
      minRows: v.ML_MIN_ROWS,
      minClassExamples: v.ML_MIN_CLASS_EXAMPLES,
      seed: v.ML_SEED,
      gate: { minRocAuc: v.ML_GATE_MIN_ROC_AUC, championTolerance: v.ML_GATE_CHAMPION_TOLERANCE },
      threshold: v.ML_THRESHOLD,
      autoActivate: v.ML_AUTO_ACTIVATE,
      championCheckMs: v.ML_CHAMPION_CHECK_MS,
      rescoreChunk: v.ML_RESCORE_CHUNK,
      mlflow: v.MLFLOW_TRACKING_URI === undefined ? null : {
        trackingUri: v.MLFLOW_TRACKING_URI,
        token: v.MLFLOW_TRACKING_TOKEN ?? null,
        experimentName: v.MLFLOW_EXPERIMENT_NAME,
      },
    },
    liveFeed: {
      historyMaxLen: v.WS_HISTORY_MAX_LEN,
      historyMaxAgeMs: v.WS_HISTORY_MAX_AGE_MS,
      pingIntervalMs: v.WS_PING_INTERVAL_MS,
      reauthGraceMs: v.WS_REAUTH_GRACE_MS,
      sendQueueMaxBytes: v.WS_SEND_QUEUE_MAX_BYTES,
      sendQueueMaxMessages: v.WS_SEND_QUEUE_MAX_MESSAGES,
      sendHighWaterBytes: v.WS_SEND_HIGH_WATER_BYTES,
      maxFrameBytes: v.WS_MAX_FRAME_BYTES,
      maxViolations: v.WS_MAX_VIOLATIONS,
      maxKeysPerTopic: v.WS_MAX_KEYS_PER_TOPIC,
      clientTtlMs: v.WS_CLIENT_TTL_MS,
      registryRefreshMs: v.WS_REGISTRY_REFRESH_MS,
      heartbeatMs: v.WS_HEARTBEAT_MS,
      busTimeoutMs: v.WS_BUS_TIMEOUT_MS,
      leadEventsPollMs: v.WS_LEAD_EVENTS_POLL_MS,
    },
  };
}

/**
 * Validates a new value of secret variable `name` (a rotation picked up at run
 * time) with the same schema as at start. The problem never includes the value.
 */
export function parseSecretValue(
  name: string,
  text: string,
  appEnv: Config["env"],
): { ok: true; value: unknown } | { ok: false; problem: string } {
  const spec = (VARIABLES as readonly VariableSpec[]).find((s) => s.name === name && s.secret);
  if (!spec) return { ok: false, problem: `${name}: not a secret variable` };
  const parsed = spec.schema.safeParse(text.replace(/\r?\n$/, ""));
  if (!parsed.success) {
    return { ok: false, problem: `${name}: ${describeIssue(parsed.error.issues[0]!, "", true)}` };
  }
  // The same refusals as at start (e.g. a development key in production).
  const [problem] = deploymentProblems({ APP_ENV: appEnv }, {
    APP_ENV: appEnv,
    [name]: parsed.data,
  });
  return problem === undefined ? { ok: true, value: parsed.data } : { ok: false, problem };
}

/** Reads the process environment; the one place that calls `Deno.env`. */
export function loadConfig(): Config {
  return parseConfig(Deno.env.toObject());
}

/**
 * The configuration reference of docs/configuration.md, one list entry per
 * variable, rendered from {@linkcode VARIABLES}.
 */
export function renderConfigReference(): string {
  return (VARIABLES as readonly VariableSpec[]).map((s) => {
    const def = s.default === undefined
      ? (s.optional ? "Unset by default." : "**Required.**")
      : s.default === ""
      ? "Default: empty."
      : `Default: \`${s.default}\`.`;
    const secret = s.secret ? ` Secret: may come from the file named by \`${s.name}_FILE\`.` : "";
    return `- \`${s.name}\` — ${s.description}. ${def}${secret}`;
  }).join("\n");
}

/** Externally configured services, as the dev stack needs to know them. */
export interface ConfiguredServices {
  redis: { url: string; token: string };
  databaseUrl: string;
  /** How to reach it: the `NEON_*` settings (a local WebSocket proxy, or real Neon). */
  database: DatabaseTarget;
}

/**
 * The services named by `UPSTASH_REDIS_REST_URL`/`_TOKEN` and `DATABASE_URL`
 * (secrets may come from `_FILE`), or null when none is set — then the dev
 * stack starts its own. Some but not all set, or invalid values, throw a
 * ConfigError.
 */
export function configuredServices(
  env: Record<string, string | undefined>,
  options: ParseConfigOptions = {},
): ConfiguredServices | null {
  const has = (name: string) => !!env[name] || !!env[`${name}_FILE`];
  const names = ["UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN", "DATABASE_URL"];
  const missing = names.filter((n) => !has(n));
  if (missing.length === names.length) return null;
  if (missing.length > 0) {
    // Half-configured is almost always a mistake; starting a local Redis next
    // to a production database would be worse than failing.
    throw new ConfigError(
      missing.map((n) => `${n}: missing (set all of ${names.join(", ")} or none of them)`),
    );
  }
  const config = parseConfig(env, options);
  const { url, wsProxy, useSecureWebSocket, pipelineConnect } = config.database;
  return {
    redis: config.redis,
    databaseUrl: url,
    database: { url, wsProxy, useSecureWebSocket, pipelineConnect },
  };
}

/** A copy of the process environment, for tools that pass it to parseConfig or child processes. */
export function readEnvironment(): Record<string, string> {
  return Deno.env.toObject();
}
