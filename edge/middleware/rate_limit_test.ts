import assert from "node:assert/strict";
import { Hono, type MiddlewareHandler } from "hono";
import type { Redis } from "@upstash/redis";
import { startStack } from "../../dev/stack.ts";
import { useTestStack } from "../../testing/stack.ts";
import type { RateLimitPolicy } from "../../shared/config/mod.ts";
import { createRedis } from "../../shared/deps.ts";
import { createLogger } from "../../shared/log.ts";
import type { AppEnv } from "../app_env.ts";
import { addressResolver, clientAddress } from "../client_address.ts";
import type { TrustedProxies } from "../../shared/net/trusted_proxies.ts";
import { createMetrics, renderMetrics } from "../../shared/metrics/metrics.ts";
import { observeRateLimiter } from "../edge_metrics.ts";
import { rateLimit, type RateLimitMiddleware, type RateLimitOptions } from "./rate_limit.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";

const WINDOW_MS = 60_000;

function policy(p: Partial<RateLimitPolicy> & { limit: number }): RateLimitPolicy {
  return { algorithm: "sliding_window", window_s: 60, on_store_error: "fail_open", ...p };
}

/** Sets a user principal from `x-test-sub`, as the auth middleware would. */
const fakeAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
  const sub = c.req.header("x-test-sub");
  if (sub) c.set("principal", { kind: "user", sub, roles: [] });
  await next();
};

function testApp(
  redis: Redis,
  { trusted = { kind: "none" }, ...options }:
    & Partial<RateLimitOptions>
    & Pick<RateLimitOptions, "policies">
    & { trusted?: TrustedProxies },
): { app: Hono<AppEnv>; limiter: RateLimitMiddleware } {
  const limiter = rateLimit({
    redis,
    // A fresh namespace per app: tests share one Redis and must not share counters.
    namespace: testNamespace("t"),
    group: (c) => c.req.header("x-group") ?? "default",
    ...options,
  });
  const app = new Hono<AppEnv>();
  app.use(clientAddress(addressResolver(trusted)), fakeAuth, limiter);
  app.get("/", (c) => c.text("ok"));
  return { app, limiter };
}

/** `app.request()` env carrying a socket peer, which `getConnInfo` reads. */
function peer(hostname: string) {
  return { remoteAddr: { hostname, port: 40_000, transport: "tcp" } };
}

async function get(
  app: Hono<AppEnv>,
  headers: Record<string, string> = {},
  address = "192.0.2.1",
): Promise<Response> {
  const res = await app.request("/", { headers }, peer(address));
  await res.body?.cancel();
  return res;
}

/** Counts script calls into Redis (every store decision is one EVALSHA/EVAL). */
function countingRedis(redis: Redis): { redis: Redis; calls: () => number } {
  let calls = 0;
  const proxy: Redis = new Proxy(redis, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === "evalsha" || prop === "eval") {
        return (...args: unknown[]) => {
          calls++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      // A script object calls back into the client it was created by: this proxy.
      if (prop === "createScript") return (value as (...a: unknown[]) => unknown).bind(proxy);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { redis: proxy, calls: () => calls };
}

/** Seconds `t` for a window-aligned reset, for any instant in [before, after]. */
function windowT(before: number, after: number, windowMs = WINDOW_MS): number[] {
  return [before, after].map((n) =>
    Math.ceil(((Math.floor(n / windowMs) + 1) * windowMs - n) / 1000)
  );
}

/**
 * Counters live in one window: a burst that crossed a window edge would see
 * the previous window weighted in. Waits (rarely, < marginMs) when the edge is near.
 */
async function awayFromWindowEdge(windowMs = WINDOW_MS, marginMs = 3000): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await new Promise((r) => setTimeout(r, left + 50));
}

Deno.test("rateLimit() against the real stack", async (t) => {
  await using stack = await useTestStack();
  // Only the Upstash client: no Neon pool, so the sanitizers stay on.
  const redis = createRedis(stack.settings.redis);

  await t.step("allowed and limited responses carry exact draft-11 headers", async () => {
    await awayFromWindowEdge();
    const { app, limiter } = testApp(redis, {
      policies: { default: policy({ limit: 3 }) },
      random: () => 0.999,
    });
    for (const r of [2, 1, 0]) {
      const before = Date.now();
      const res = await get(app);
      const ts = windowT(before, Date.now());
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("ratelimit-policy"), '"default";q=3;w=60');
      const header = res.headers.get("ratelimit") ?? "";
      assert.ok(ts.some((t) => header === `"default";r=${r};t=${t}`), `${header} vs t ∈ ${ts}`);
    }
    const before = Date.now();
    const res = await app.request("/", {}, peer("192.0.2.1"));
    const ts = windowT(before, Date.now());
    assert.equal(res.status, 429);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    assert.equal(res.headers.get("ratelimit-policy"), '"default";q=3;w=60');
    const header = res.headers.get("ratelimit") ?? "";
    const t = ts.find((t) => header === `"default";r=0;t=${t}`);
    assert.ok(t !== undefined, `${header} vs t ∈ ${ts}`);
    // random() = 0.999 → the full jitter: 10 % of 60 s.
    assert.equal(res.headers.get("retry-after"), String(Math.max(1, t) + 6));
    assert.deepEqual(await res.json(), {
      type: "/problems/quota-exceeded",
      instance: "/",
      code: "quota-exceeded",
      status: 429,
      title: "Too many requests",
      detail: 'Quota of policy "default" (3 per 60 s) is used up',
      "violated-policies": ["default"],
    });
    assert.deepEqual(
      { ...limiter.metrics },
      {
        allowed: 3,
        limited: 1,
        cacheBlocked: 0,
        storeErrors: 0,
        fallbackDecisions: 0,
        unavailable: 0,
        // A limit of 3 leaves no spare: half the budget, split over one edge, is one token.
        leaseGrants: 0,
        localDecisions: 0,
        leaseTokensReturned: 0,
        byPolicy: new Map([["default", { allowed: 3, limited: 1, unavailable: 0, fail_open: 0 }]]),
      },
    );
  });

  await t.step(
    "Retry-After is never before the reset and jitters by at most 10 % of the window",
    async () => {
      await awayFromWindowEdge(20_000);
      const { app } = testApp(redis, { policies: { default: policy({ limit: 1, window_s: 20 }) } });
      await get(app);
      const seen = new Set<number>();
      for (let i = 0; i < 30; i++) {
        const before = Date.now();
        const res = await get(app);
        assert.equal(res.status, 429);
        const earliest = Math.max(1, Math.min(...windowT(before, Date.now(), 20_000)));
        const retryAfter = Number(res.headers.get("retry-after"));
        assert.ok(retryAfter >= earliest && retryAfter <= earliest + 1 + 2, `${retryAfter}`);
        seen.add(retryAfter - earliest);
      }
      assert.ok(seen.size > 1, "no jitter");
    },
  );

  await t.step(
    "principals are limited apart from each other and from their IP; anonymous callers per IP",
    async () => {
      await awayFromWindowEdge();
      const { app } = testApp(redis, { policies: { default: policy({ limit: 2 }) } });
      const alice = { "x-test-sub": "alice" };
      assert.deepEqual(
        [await get(app, alice), await get(app, alice), await get(app, alice)]
          .map((r) => r.status),
        [200, 200, 429],
      );
      // Same IP, other principal; and the IP itself: fresh buckets.
      assert.equal((await get(app, { "x-test-sub": "bob" })).status, 200);
      assert.equal((await get(app, {}, "192.0.2.1")).status, 200);
      assert.equal((await get(app, {}, "192.0.2.1")).status, 200);
      assert.equal((await get(app, {}, "192.0.2.1")).status, 429);
      assert.equal((await get(app, {}, "192.0.2.2")).status, 200);
      // X-Forwarded-For is ignored unless proxies are trusted.
      assert.equal(
        (await get(app, { "x-forwarded-for": "198.51.100.7" }, "192.0.2.1")).status,
        429,
      );
    },
  );

  await t.step(
    "with one trusted proxy hop, the address one hop from the right of X-Forwarded-For is the key",
    async () => {
      const { app } = testApp(redis, {
        policies: { default: policy({ limit: 1 }) },
        trusted: { kind: "hops", hops: 1 },
      });
      const via = (xff: string) => get(app, { "x-forwarded-for": xff }, "10.0.0.1");
      assert.equal((await via("203.0.113.9, 198.51.100.7")).status, 200);
      // A spoofed left part does not buy a new bucket.
      assert.equal((await via("203.0.113.10, 198.51.100.7")).status, 429);
      assert.equal((await via("198.51.100.8")).status, 200);
    },
  );

  await t.step(
    "IPv6 callers are keyed by their /64: rotating the interface id buys nothing",
    async () => {
      const { app } = testApp(redis, { policies: { default: policy({ limit: 2 }) } });
      const statuses = [];
      for (const host of ["::1", "::2", ":dead:beef::1", ":ffff:ffff:ffff:fffe"]) {
        statuses.push((await get(app, {}, `2001:db8:77:1${host}`)).status);
      }
      assert.deepEqual(statuses, [200, 200, 429, 429]);
      // The neighbouring /64 is another subscriber.
      assert.equal((await get(app, {}, "2001:db8:77:2::1")).status, 200);
    },
  );

  await t.step("token bucket: capacity, then the next refill as reset", async () => {
    const { app } = testApp(redis, {
      policies: {
        default: policy({ limit: 100 }),
        burst: policy({ algorithm: "token_bucket", limit: 3, window_s: 30, refill: 1 }),
      },
    });
    const g = { "x-group": "burst" };
    for (const r of [2, 1, 0]) {
      const res = await get(app, g);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("ratelimit-policy"), '"burst";q=3;w=30');
      // The bucket refills 30 s after its first use: t is 30 (or 29 once a second passed).
      assert.match(res.headers.get("ratelimit") ?? "", new RegExp(`^"burst";r=${r};t=(29|30)$`));
    }
    const res = await get(app, g);
    assert.equal(res.status, 429);
    assert.match(res.headers.get("ratelimit") ?? "", /^"burst";r=0;t=(29|30)$/);
    const retryAfter = Number(res.headers.get("retry-after"));
    assert.ok(retryAfter >= 29 && retryAfter <= 33, `${retryAfter}`);
  });

  await t.step("fixed window: limit per aligned window", async () => {
    await awayFromWindowEdge(10_000);
    const { app } = testApp(redis, {
      policies: { default: policy({ algorithm: "fixed_window", limit: 2, window_s: 10 }) },
    });
    for (const r of [1, 0]) {
      const before = Date.now();
      const res = await get(app);
      const ts = windowT(before, Date.now(), 10_000);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("ratelimit-policy"), '"default";q=2;w=10');
      const header = res.headers.get("ratelimit");
      assert.ok(ts.some((t) => header === `"default";r=${r};t=${t}`), `${header}`);
    }
    assert.equal((await get(app)).status, 429);
  });

  await t.step("an unconfigured group uses the default policy", async () => {
    const { app } = testApp(redis, { policies: { default: policy({ limit: 1 }) } });
    const res = await get(app, { "x-group": "nope" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("ratelimit-policy"), '"default";q=1;w=60');
  });

  await t.step(
    "a blocked identity is answered from memory: a flood costs no Redis calls",
    async () => {
      const counted = countingRedis(redis);
      const { app, limiter } = testApp(counted.redis, {
        policies: { default: policy({ limit: 2 }) },
      });
      for (let i = 0; i < 3; i++) await get(app);
      assert.equal(counted.calls(), 3);
      const flood = await Promise.all(Array.from({ length: 100 }, () => get(app)));
      assert.ok(flood.every((r) => r.status === 429 && r.headers.has("retry-after")));
      assert.equal(counted.calls(), 3, "the flood reached Redis");
      assert.equal(limiter.metrics.cacheBlocked, 100);
      assert.equal(limiter.metrics.limited, 101);
      // Other identities still go to the store.
      assert.equal((await get(app, {}, "192.0.2.99")).status, 200);
      assert.equal(counted.calls(), 4);
    },
  );
});

Deno.test("rateLimit() leases budget: most requests make no Redis call, and nothing leased is kept", async (t) => {
  await using stack = await useTestStack();
  const redis = createRedis(stack.settings.redis);

  await t.step("400 requests of one caller cost a handful of store calls", async () => {
    // A lease also ends with its window.
    await awayFromWindowEdge(60_000, 10_000);
    const counted = countingRedis(redis);
    const { app, limiter } = testApp(counted.redis, {
      // The default lease size; a long lifetime, so a slow machine does not
      // see leases end (and given back) mid-test.
      policies: {
        default: policy({
          limit: 10_000,
          lease: { max_tokens: 100, fraction: 0.5, ttl_ms: 30_000 },
        }),
      },
    });
    const seen: number[] = [];
    for (let i = 0; i < 300; i++) {
      const res = await get(app, { "x-test-sub": "alice" });
      assert.equal(res.status, 200);
      seen.push(Number(/r=(\d+)/.exec(res.headers.get("ratelimit") ?? "")?.[1]));
    }
    // Concurrent requests queue behind one store call instead of each making one.
    const burst = await Promise.all(
      Array.from({ length: 100 }, () => get(app, { "x-test-sub": "alice" })),
    );
    assert.ok(burst.every((r) => r.status === 200));
    // Grants of 1, 2, 4, … 64, then 100 (the default max_tokens) while the
    // caller keeps spending them: 400 requests, 10 store decisions.
    assert.ok(counted.calls() >= 10 && counted.calls() <= 12, `${counted.calls()} store calls`);
    assert.equal(limiter.metrics.allowed, 400);
    // Every store decision leased spare tokens; the rest never left the process
    // (the count of calls may include one EVAL after a NOSCRIPT).
    // The first call granted one token (no lease); the other nine leased spares.
    assert.equal(limiter.metrics.leaseGrants, 9);
    assert.equal(limiter.metrics.localDecisions, 400 - 10);
    // One edge: the remaining count is exact and falls by one per request.
    assert.deepEqual(seen, Array.from({ length: 300 }, (_, i) => 10_000 - 1 - i));
    // Mirrored for Prometheus at scrape time.
    const metrics = createMetrics();
    observeRateLimiter(metrics, limiter.metrics);
    const lines = (await renderMetrics(metrics)).split("\n");
    for (
      const line of [
        'rate_limit_lease_events_total{event="granted"} 9',
        `rate_limit_lease_events_total{event="local_decision"} ${limiter.metrics.localDecisions}`,
        'rate_limit_lease_events_total{event="tokens_returned"} 0',
      ]
    ) assert.ok(lines.includes(line), `${line} missing`);
  });

  await t.step("lease: false asks the store for every request", async () => {
    const counted = countingRedis(redis);
    const { app, limiter } = testApp(counted.redis, {
      policies: { default: policy({ limit: 10_000, lease: false }) },
    });
    for (let i = 0; i < 20; i++) assert.equal((await get(app)).status, 200);
    assert.equal(counted.calls(), 20);
    assert.equal(limiter.metrics.localDecisions, 0);
    assert.equal(limiter.metrics.leaseGrants, 0);
  });

  await t.step("close() gives the unused leased budget back for other edges", async () => {
    const namespace = testNamespace("t");
    const a = testApp(redis, { namespace, policies: { default: policy({ limit: 100 }) } });
    const b = testApp(redis, {
      namespace,
      policies: { default: policy({ limit: 100, lease: false }) },
    });
    const remaining = async (app: Hono<AppEnv>) =>
      (await get(app)).headers.get("ratelimit")?.match(/r=(\d+)/)?.[1];
    // Edge a's grants: 1, 2 (one spent locally), 4 (3 left unused): 7 counted.
    for (const r of ["99", "98", "97", "96"]) assert.equal(await remaining(a.app), r);
    assert.equal(a.limiter.metrics.localDecisions, 1);
    assert.equal(await remaining(b.app), "92");
    await a.limiter.close();
    assert.equal(a.limiter.metrics.leaseTokensReturned, 3);
    // 100 − a's 4 − b's 2.
    assert.equal(await remaining(b.app), "94");
  });

  await t.step(
    "a caller that comes back less often than a lease lives costs one call per request, as without leasing",
    async () => {
      let clock = Date.now();
      const counted = countingRedis(redis);
      const { app, limiter } = testApp(counted.redis, {
        now: () => clock,
        policies: {
          default: policy({ limit: 100, lease: { max_tokens: 10, fraction: 1, ttl_ms: 500 } }),
        },
      });
      await get(app); // the script is loaded (EVALSHA may have met NOSCRIPT)
      const before = counted.calls();
      for (let i = 0; i < 5; i++) {
        clock += 600;
        assert.equal((await get(app)).status, 200);
      }
      assert.equal(counted.calls() - before, 5);
      assert.equal(limiter.metrics.leaseGrants, 0);
      assert.equal(limiter.metrics.leaseTokensReturned, 0);
    },
  );

  await t.step("an ended lease's unused tokens go back at the next decision", async () => {
    let clock = Date.now();
    const namespace = testNamespace("t");
    const { app, limiter } = testApp(redis, {
      namespace,
      now: () => clock,
      policies: {
        default: policy({ limit: 100, lease: { max_tokens: 10, fraction: 1, ttl_ms: 500 } }),
      },
    });
    // Two requests each: grants of 1 and 2, one token of each caller unused.
    for (const sub of ["alice", "alice", "bob", "bob"]) {
      assert.equal((await get(app, { "x-test-sub": sub })).status, 200);
    }
    assert.equal(limiter.metrics.leaseTokensReturned, 0);
    clock += 500;
    // Both leases ended: the next decision (alice's) sweeps them back, beside
    // its own store call rather than before it (the request does not wait).
    assert.equal((await get(app, { "x-test-sub": "alice" })).status, 200);
    await waitUntil(() => limiter.metrics.leaseTokensReturned === 2);
    const check = testApp(redis, {
      namespace,
      policies: { default: policy({ limit: 100, lease: false }) },
    });
    // Bob: 3 counted, 1 given back, 1 more now.
    const res = await get(check.app, { "x-test-sub": "bob" });
    assert.match(res.headers.get("ratelimit") ?? "", /r=97;/);
  });
});

Deno.test("rateLimit() with redis-server stopped: fail_open limits locally and counts, fail_closed answers 503, both recover", async () => {
  // A private stack: this test stops its redis-server.
  await using stack = await startStack();
  await awayFromWindowEdge();
  const redis = createRedis(stack.settings.redis);
  const logs: string[] = [];
  let clock = Date.now();
  const { app, limiter } = testApp(redis, {
    policies: {
      default: policy({ limit: 3 }),
      strict: policy({ limit: 3, on_store_error: "fail_closed" }),
    },
    now: () => clock,
    storeRetryMs: 1000,
    log: createLogger({ write: (l) => logs.push(l) }),
  });
  const strict = { "x-group": "strict" };
  assert.equal((await get(app)).status, 200);
  assert.equal((await get(app, strict)).status, 200);

  await stack.redisServer!.stop();
  const statuses = [];
  for (let i = 0; i < 5; i++) {
    const res = await get(app);
    statuses.push(res.status);
    assert.equal(res.headers.get("ratelimit-policy"), '"default";q=3;w=60');
    assert.match(res.headers.get("ratelimit") ?? "", /^"default";r=\d;t=\d+$/);
  }
  // The local limiter has the policy's numbers (it does not know the store's count).
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  assert.equal(limiter.metrics.fallbackDecisions, 5);
  // One failed store call, then the store is skipped for storeRetryMs.
  assert.equal(limiter.metrics.storeErrors, 1);

  const closed = await app.request("/", { headers: strict }, peer("192.0.2.1"));
  assert.equal(closed.status, 503);
  assert.equal(closed.headers.get("ratelimit-policy"), '"strict";q=3;w=60');
  assert.equal(closed.headers.get("ratelimit"), null);
  assert.ok(["1", "2"].includes(closed.headers.get("retry-after") ?? ""));
  const body = await closed.json();
  assert.equal(body.code, "rate-limit-unavailable");
  assert.equal(body.status, 503);
  assert.equal(limiter.metrics.unavailable, 1);
  assert.equal(logs.filter((l) => l.includes("rate-limit store unreachable")).length, 1);

  await stack.redisServer!.restart();
  clock += 1001;
  // The store decides again and still holds the counts from before the outage.
  const back = await get(app);
  assert.equal(back.status, 200);
  assert.match(back.headers.get("ratelimit") ?? "", /^"default";r=1;/);
  assert.equal((await get(app, strict)).status, 200);
  assert.equal(limiter.metrics.fallbackDecisions, 5);
  assert.ok(logs.some((l) => l.includes("rate-limit store reachable again")));

  // The registry's output: the per-policy series beside the unchanged totals.
  const metrics = createMetrics();
  observeRateLimiter(metrics, limiter.metrics);
  const text = await renderMetrics(metrics);
  const series = (line: string) => text.split("\n").includes(line);
  for (
    const line of [
      'rate_limit_decisions_total{outcome="allowed"} 7',
      'rate_limit_decisions_total{outcome="fail_open"} 5',
      'rate_limit_policy_decisions_total{policy="default",outcome="allowed"} 5',
      'rate_limit_policy_decisions_total{policy="default",outcome="limited"} 2',
      'rate_limit_policy_decisions_total{policy="default",outcome="fail_open"} 5',
      'rate_limit_policy_decisions_total{policy="default",outcome="unavailable"} 0',
      'rate_limit_policy_decisions_total{policy="strict",outcome="allowed"} 2',
      'rate_limit_policy_decisions_total{policy="strict",outcome="unavailable"} 1',
      'rate_limit_policy_decisions_total{policy="strict",outcome="fail_open"} 0',
    ]
  ) assert.ok(series(line), `${line} missing from:\n${text}`);
});

Deno.test("rateLimit() rejects invalid options when it is built", () => {
  const redis = {} as Redis;
  assert.throws(
    () => rateLimit({ redis, policies: { api: policy({ limit: 1 }) } }),
    /a "default" policy is required/,
  );
  assert.throws(
    () =>
      rateLimit({
        redis,
        policies: {
          default: policy({ limit: 0 }),
          odd: { ...policy({ limit: 1 }), algorithm: "leaky" as "fixed_window", refill: -1 },
        },
      }),
    (err: Error) =>
      err instanceof TypeError &&
      /policy "default": limit must be a positive integer \(got 0\)/.test(err.message) &&
      /policy "odd": unknown algorithm "leaky"/.test(err.message) &&
      /policy "odd": refill must be a positive integer/.test(err.message),
  );
  assert.throws(
    () => rateLimit({ redis, policies: { default: policy({ limit: 1, window_s: 0 }) } }),
    /window_s must be at least 0.001/,
  );
  assert.throws(
    () => rateLimit({ redis, policies: { default: policy({ limit: 1 }) }, timeoutMs: 0 }),
    /timeoutMs must be positive/,
  );
  assert.throws(
    () =>
      rateLimit({
        redis,
        policies: {
          default: policy({ limit: 1, lease: { max_tokens: 0, fraction: 2, ttl_ms: 1.5 } }),
        },
      }),
    (err: Error) =>
      /lease.max_tokens must be a positive integer \(got 0\)/.test(err.message) &&
      /lease.fraction must be in \(0, 1\] \(got 2\)/.test(err.message) &&
      /lease.ttl_ms must be a positive integer \(got 1.5\)/.test(err.message),
  );
});

Deno.test("a store that does not answer within timeoutMs counts as unreachable, not as an admission", async () => {
  // A script call that never settles holds no timer or socket.
  let calls = 0;
  const hung = {
    createScript: () => ({
      exec: () => {
        calls++;
        return new Promise(() => {});
      },
    }),
  } as unknown as Redis;
  let clock = Date.now();
  const { app, limiter } = testApp(hung, {
    policies: { default: policy({ limit: 2 }) },
    timeoutMs: 20,
    storeRetryMs: 5000,
    now: () => clock,
  });
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await get(app)).status);
  assert.deepEqual(statuses, [200, 200, 429]);
  assert.equal(calls, 1, "the store was asked again inside storeRetryMs");
  assert.equal(limiter.metrics.storeErrors, 1);
  assert.equal(limiter.metrics.fallbackDecisions, 3);
  clock += 5000;
  await get(app);
  assert.equal(calls, 2);
});
