import assert from "node:assert/strict";
import { type Config, DEFAULT_RATE_LIMIT_LEASE, leaseSettingsOf, parseConfig } from "./mod.ts";
import { ConfigError } from "../errors.ts";

const VALID = {
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:8079",
  UPSTASH_REDIS_REST_TOKEN: "tok-secret-123",
  DATABASE_URL: "postgresql://app:pw-secret-456@127.0.0.1:5432/db",
};

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    return err.problems;
  }
  assert.fail("parseConfig() did not throw");
}

Deno.test("parseConfig() applies defaults that work locally", () => {
  const config: Config = parseConfig(VALID);
  assert.equal(config.env, "development");
  assert.equal(config.logLevel, "info");
  assert.deepEqual(config.edge, { host: "127.0.0.1", port: 8787 });
  assert.deepEqual(config.redis, {
    url: VALID.UPSTASH_REDIS_REST_URL,
    token: "tok-secret-123",
    tcpUrl: null,
  });
  assert.deepEqual(config.database, {
    url: VALID.DATABASE_URL,
    wsProxy: null,
    useSecureWebSocket: true,
    pipelineConnect: "password",
    poolMax: 10,
    writeTimeoutMs: 5000,
  });
  assert.equal(config.readyTimeoutMs, 1000);
  assert.equal(config.shutdownTimeoutMs, 10000);
  assert.deepEqual(config.queue, {
    idempotencyWindowMs: 3_600_000,
    maxPayloadBytes: 262_144,
    keepFinishedMs: 86_400_000,
    dlqRetentionMs: 604_800_000,
    dlqCap: 10_000,
    deadLetterAlerts: false,
    taskFeed: { origin: "queue", historyMaxLen: 10_000, historyMaxAgeMs: 120_000 },
  });
  assert.deepEqual(config.worker, {
    concurrency: 10,
    leaseMs: 30_000,
    pollMs: 1000,
    shutdownGraceMs: 25_000,
  });
});

Deno.test("parseConfig() converts types of the local-proxy settings", () => {
  const config = parseConfig({
    ...VALID,
    EDGE_PORT: "0",
    NEON_WS_PROXY: "127.0.0.1:5555/v1",
    NEON_USE_SECURE_WEBSOCKET: "false",
    NEON_PIPELINE_CONNECT: "false",
    DB_POOL_MAX: "4",
  });
  assert.equal(config.edge.port, 0);
  assert.deepEqual(config.database, {
    url: VALID.DATABASE_URL,
    wsProxy: "127.0.0.1:5555/v1",
    useSecureWebSocket: false,
    pipelineConnect: false,
    poolMax: 4,
    writeTimeoutMs: 5000,
  });
});

Deno.test("parseConfig() reports every invalid or missing variable in one error", () => {
  const problems = problemsOf(() =>
    parseConfig({
      APP_ENV: "staging",
      EDGE_PORT: "http",
      UPSTASH_REDIS_REST_URL: "redis://nope",
      DB_POOL_MAX: "-1",
      NEON_WS_PROXY: "ws://x:1/v1",
    })
  );
  const names = problems.map((p) => p.split(":")[0]);
  assert.deepEqual(names, [
    "APP_ENV",
    "EDGE_PORT",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "DATABASE_URL",
    "NEON_WS_PROXY",
    "DB_POOL_MAX",
  ]);
  assert.match(problems[1]!, /got "http"/);
  assert.match(problems[3]!, /missing .*UPSTASH_REDIS_REST_TOKEN_FILE/);
});

Deno.test("parseConfig() never echoes a secret value in its message", () => {
  const err = (() => {
    try {
      parseConfig({ ...VALID, DATABASE_URL: "mysql://root:hunter2-top-secret@db/x" });
    } catch (e) {
      return e as Error;
    }
  })();
  assert.ok(err instanceof ConfigError);
  assert.match(err.message, /DATABASE_URL: expected a postgres/);
  assert.ok(!err.message.includes("hunter2"), err.message);
});

Deno.test("parseConfig() reads secrets from NAME_FILE and strips the trailing newline", () => {
  const files: Record<string, string> = {
    "/run/secrets/token": "file-token\n",
    "/run/secrets/db": "postgresql://u:p@h:5432/d\n",
  };
  const config = parseConfig(
    {
      UPSTASH_REDIS_REST_URL: VALID.UPSTASH_REDIS_REST_URL,
      UPSTASH_REDIS_REST_TOKEN_FILE: "/run/secrets/token",
      DATABASE_URL_FILE: "/run/secrets/db",
    },
    {
      readTextFile: (p) => {
        const text = files[p];
        if (text === undefined) throw new Deno.errors.NotFound(p);
        return text;
      },
    },
  );
  assert.equal(config.redis.token, "file-token");
  assert.equal(config.database.url, "postgresql://u:p@h:5432/d");
});

Deno.test("parseConfig() reads a real secret file from disk", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "disk-token");
    const config = parseConfig({
      ...VALID,
      UPSTASH_REDIS_REST_TOKEN: undefined,
      UPSTASH_REDIS_REST_TOKEN_FILE: file,
    });
    assert.equal(config.redis.token, "disk-token");
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("parseConfig() rejects unreadable secret files and NAME together with NAME_FILE", () => {
  const problems = problemsOf(() =>
    parseConfig({
      ...VALID,
      UPSTASH_REDIS_REST_TOKEN_FILE: "/also/set",
      DATABASE_URL: undefined,
      DATABASE_URL_FILE: "/does/not/exist",
    }, {
      readTextFile: (p) => {
        throw new Deno.errors.NotFound(p);
      },
    })
  );
  assert.deepEqual(problems, [
    "UPSTASH_REDIS_REST_TOKEN: set either UPSTASH_REDIS_REST_TOKEN or UPSTASH_REDIS_REST_TOKEN_FILE, not both",
    'DATABASE_URL_FILE: cannot read "/does/not/exist" (NotFound)',
  ]);
});

Deno.test("parseConfig() merges BREAKER_POLICIES over the seed defaults and rejects bad ones", () => {
  const config = parseConfig({ ...VALID, BREAKER_POLICIES: '{"email":{"fail_max":2}}' });
  assert.equal(config.breakerPolicies.email?.fail_max, 2);
  assert.equal(config.breakerPolicies.control?.fail_max, 3, "untouched defaults stay");
  assert.equal(parseConfig(VALID).breakerPolicies.database?.fail_max, 5);
  const problems = problemsOf(() =>
    parseConfig({ ...VALID, BREAKER_POLICIES: '{"email":{"fail_max":0}}' })
  );
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^BREAKER_POLICIES: Invalid breaker policies: .*fail_max/);
  assert.match(
    problemsOf(() => parseConfig({ ...VALID, BREAKER_POLICIES: "[1]" }))[0]!,
    /expected a JSON object/,
  );
});

Deno.test("parseConfig() reads per-policy lease settings: defaults, partial overrides, false, and bad values", () => {
  const config = parseConfig({
    ...VALID,
    RATE_LIMITS: JSON.stringify({
      default: { limit: 600, window_s: 60 },
      admin: { limit: 120, window_s: 60, lease: { max_tokens: 10 } },
      strict: { limit: 5, window_s: 1, lease: false },
    }),
  });
  assert.equal(config.rateLimits.default?.lease, undefined);
  assert.deepEqual(leaseSettingsOf(config.rateLimits.default!), DEFAULT_RATE_LIMIT_LEASE);
  assert.deepEqual(config.rateLimits.admin?.lease, {
    max_tokens: 10,
    fraction: DEFAULT_RATE_LIMIT_LEASE.fraction,
    ttl_ms: DEFAULT_RATE_LIMIT_LEASE.ttl_ms,
  });
  assert.equal(leaseSettingsOf(config.rateLimits.strict!), null);
  for (
    const [lease, field] of [
      [{ fraction: 0 }, "fraction"],
      [{ fraction: 1.5 }, "fraction"],
      [{ ttl_ms: 0 }, "ttl_ms"],
      [{ max_tokens: 2.5 }, "max_tokens"],
      [{ size: 3 }, "lease"],
      [true, "lease"],
    ] as const
  ) {
    const problems = problemsOf(() =>
      parseConfig({
        ...VALID,
        RATE_LIMITS: JSON.stringify({ default: { limit: 1, window_s: 1, lease } }),
      })
    );
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, new RegExp(`^RATE_LIMITS: .*${field}`), JSON.stringify(lease));
  }
});

Deno.test("parseConfig() validates UPSTREAMS against the breaker policies", () => {
  const control = {
    name: "control",
    base_url: "http://control.internal:8080/api/",
    prefix: "/v1/control",
    principals: ["sa:minerva", "role:admin"],
  };
  const config = parseConfig({ ...VALID, UPSTREAMS: JSON.stringify([control]) });
  assert.deepEqual(config.upstreams, [{
    name: "control",
    baseUrl: "http://control.internal:8080/api",
    prefix: "/v1/control",
    methods: ["GET", "POST"],
    principals: ["sa:minerva", "role:admin"],
    timeoutMs: 5000,
    breaker: "control",
    forwardAuthorization: false,
    passSetCookie: false,
    forwardHeaders: [],
  }]);
  assert.deepEqual(parseConfig(VALID).upstreams, []);

  const bad = problemsOf(() =>
    parseConfig({
      ...VALID,
      UPSTREAMS: JSON.stringify([
        { ...control, name: "crm", breaker: "nope" },
        { ...control, name: "tasks", prefix: "/v1/tasks/sub", breaker: "control" },
        { ...control, name: "crm2", prefix: "/v1/control/deeper", breaker: "control" },
      ]),
    })
  );
  assert.equal(bad.length, 3, bad.join("\n"));
  assert.match(bad[0]!, /^UPSTREAMS\[0\] "crm": breaker "nope" has no policy/);
  assert.match(bad[1]!, /^UPSTREAMS\[1\] "tasks": prefix \/v1\/tasks\/sub overlaps \/v1\/tasks/);
  assert.match(bad[2]!, /overlaps \/v1\/control$/);
  assert.match(
    problemsOf(() =>
      parseConfig({ ...VALID, UPSTREAMS: JSON.stringify([{ ...control, principals: ["bob"] }]) })
    )[0]!,
    /^UPSTREAMS\[0\]\.principals\.0: /,
  );
  assert.match(
    problemsOf(() => parseConfig({ ...VALID, UPSTREAMS: "{not json" }))[0]!,
    /UPSTREAMS: expected a JSON array/,
  );
});

Deno.test("parseConfig() reads the analytics retention windows in days", () => {
  const DAY = 86_400_000;
  assert.deepEqual(parseConfig(VALID).analytics, {
    retentionMs: 90 * DAY,
    rollupRetentionMs: 400 * DAY,
    retentionBatchSize: 10_000,
    retentionMaxBatches: 1000,
    refreshLateWindowMs: 7 * DAY,
  });
  const config = parseConfig({
    ...VALID,
    ANALYTICS_RETENTION_DAYS: "30",
    ANALYTICS_ROLLUP_RETENTION_DAYS: "30",
    ANALYTICS_RETENTION_BATCH: "500",
    ANALYTICS_RETENTION_MAX_BATCHES: "3",
    ANALYTICS_REFRESH_LATE_WINDOW_DAYS: "29",
  });
  assert.deepEqual(config.analytics, {
    retentionMs: 30 * DAY,
    rollupRetentionMs: 30 * DAY,
    retentionBatchSize: 500,
    retentionMaxBatches: 3,
    refreshLateWindowMs: 29 * DAY,
  });
});

Deno.test("parseConfig() refuses rollups kept shorter than raw events and a late window past retention", () => {
  assert.deepEqual(
    problemsOf(() =>
      parseConfig({
        ...VALID,
        ANALYTICS_RETENTION_DAYS: "90",
        ANALYTICS_ROLLUP_RETENTION_DAYS: "30",
        ANALYTICS_REFRESH_LATE_WINDOW_DAYS: "90",
      })
    ),
    [
      "ANALYTICS_ROLLUP_RETENTION_DAYS: must be at least ANALYTICS_RETENTION_DAYS (90), got 30",
      "ANALYTICS_REFRESH_LATE_WINDOW_DAYS: must be less than ANALYTICS_RETENTION_DAYS (90), got 90",
    ],
  );
  // A longer raw retention alone trips the rule against the default rollup retention.
  assert.deepEqual(problemsOf(() => parseConfig({ ...VALID, ANALYTICS_RETENTION_DAYS: "500" })), [
    "ANALYTICS_ROLLUP_RETENTION_DAYS: must be at least ANALYTICS_RETENTION_DAYS (500), got 400",
  ]);
  // An invalid raw retention is reported once, not again by the cross-field rule.
  assert.deepEqual(
    problemsOf(() =>
      parseConfig({ ...VALID, ANALYTICS_RETENTION_DAYS: "0", ANALYTICS_RETENTION_BATCH: "x" })
    ).map((p) => p.split(":")[0]),
    ["ANALYTICS_RETENTION_DAYS", "ANALYTICS_RETENTION_BATCH"],
  );
});

Deno.test("parseConfig() reads the live feed's WS_* settings and checks them together", () => {
  const defaults = parseConfig(VALID).liveFeed;
  assert.equal(defaults.historyMaxLen, 10_000);
  assert.equal(defaults.historyMaxAgeMs, 120_000);
  assert.equal(defaults.pingIntervalMs, 25_000);
  assert.equal(defaults.reauthGraceMs, 30_000);
  assert.equal(defaults.sendQueueMaxBytes, 1_048_576);
  assert.equal(defaults.sendQueueMaxMessages, 1000);
  assert.equal(defaults.clientTtlMs, 300_000);
  const config = parseConfig({
    ...VALID,
    WS_HISTORY_MAX_LEN: "50",
    WS_HISTORY_MAX_AGE_MS: "9000",
    WS_MAX_FRAME_BYTES: "4096",
  });
  assert.equal(config.liveFeed.historyMaxLen, 50);
  assert.equal(config.liveFeed.maxFrameBytes, 4096);
  // Workers trim the tasks history with the same limits as the edge.
  assert.deepEqual(config.queue.taskFeed, {
    origin: "queue",
    historyMaxLen: 50,
    historyMaxAgeMs: 9000,
  });
  assert.equal(parseConfig({ ...VALID, QUEUE_TASK_EVENTS: "false" }).queue.taskFeed, null);
  assert.deepEqual(
    problemsOf(() =>
      parseConfig({
        ...VALID,
        WS_CLIENT_TTL_MS: "60000",
        WS_REGISTRY_REFRESH_MS: "60000",
        WS_PING_INTERVAL_MS: "0",
      })
    ),
    [
      'WS_PING_INTERVAL_MS: Too small: expected number to be >0 (got "0")',
      "WS_REGISTRY_REFRESH_MS: must be less than WS_CLIENT_TTL_MS (60000), got 60000",
    ],
  );
});

Deno.test("PUBLIC_BASE_URL defaults to the edge's own address, so dev links reach it", () => {
  assert.equal(parseConfig({ ...VALID, EDGE_PORT: "9911" }).publicBaseUrl, "http://127.0.0.1:9911");
  assert.equal(
    parseConfig({ ...VALID, EDGE_HOST: "0.0.0.0", EDGE_PORT: "8080", APP_ENV: "development" })
      .publicBaseUrl,
    "http://127.0.0.1:8080",
  );
  assert.equal(
    parseConfig({ ...VALID, EDGE_HOST: "::", EDGE_PORT: "8080", APP_ENV: "development" })
      .publicBaseUrl,
    "http://[::1]:8080",
  );
  assert.equal(
    parseConfig({ ...VALID, EDGE_PORT: "9911", PUBLIC_BASE_URL: "https://api.example/" })
      .publicBaseUrl,
    "https://api.example",
  );
});
