import assert from "node:assert/strict";
import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import { useTestStack } from "../../testing/stack.ts";
import { testNamespace } from "../../testing/namespace.ts";
import type { RateLimitPolicy } from "../../shared/config/mod.ts";
import { createRedis } from "../../shared/deps.ts";
import { rateLimitKeys } from "../../shared/redis/keys.ts";
import { createLeaseStore, type LeaseRequest, type LeaseStore } from "./lease_store.ts";

const ALGORITHMS = ["sliding_window", "fixed_window", "token_bucket"] as const;

function policy(p: Partial<RateLimitPolicy> & { limit: number }): RateLimitPolicy {
  // An hour-long window: a test never straddles two windows (the sliding
  // window would weigh the previous one in).
  return { algorithm: "sliding_window", window_s: 3600, on_store_error: "fail_open", ...p };
}

function lease(over: Partial<LeaseRequest> = {}): LeaseRequest {
  return { need: 1, spare: 50, fraction: 0.5, ttlMs: 1000, ...over };
}

/** One store per edge, all in a fresh namespace. */
function edges(redis: Redis, n: number): { stores: LeaseStore[]; namespace: string } {
  const namespace = testNamespace("t");
  const stores = Array.from(
    { length: n },
    (_, i) => createLeaseStore(redis, { namespace, timeoutMs: 5000, edgeId: `edge-${i}` }),
  );
  return { stores, namespace };
}

Deno.test("rate_limit_lease.lua on a real redis-server", async (t) => {
  await using stack = await useTestStack();
  const redis = createRedis(stack.settings.redis);

  for (const algorithm of ALGORITHMS) {
    await t.step(
      `${algorithm}: concurrent edges are granted exactly the budget, never more`,
      async () => {
        const p = policy({ algorithm, limit: 100, refill: 1 });
        const { stores } = edges(redis, 3);
        const grants = await Promise.all(
          Array.from({ length: 90 }, (_, i) => stores[i % 3]!.lease("g", p, "p:a", lease())),
        );
        const total = grants.reduce((sum, g) => sum + g.granted, 0);
        assert.equal(total, 100, `granted ${total} of 100`);
        // Every call for a request got at least its own token while any was left.
        const exhausted = grants.filter((g) => g.granted === 0).length;
        assert.ok(exhausted > 0 && exhausted < 90, `${exhausted} calls found nothing`);
        for (const g of grants) assert.ok(g.granted <= 50 + 1 && g.remaining >= 0);
      },
    );
  }

  await t.step("a lease's share of the budget is split over the edges seen", async () => {
    const p = policy({ limit: 1000 });
    const { stores: [a, b] } = edges(redis, 2);
    const req = lease({ spare: 1000, fraction: 0.5 });
    assert.equal((await a!.lease("g", p, "p:a", req)).granted, 500);
    // 500 left, two edges now: 500 × 0.5 / 2.
    assert.equal((await b!.lease("g", p, "p:a", req)).granted, 125);
    const third = await a!.lease("g", p, "p:a", req);
    assert.equal(third.granted, 93);
    assert.equal(third.remaining, 1000 - 500 - 125 - 93);
  });

  await t.step("the last tokens go one request at a time", async () => {
    const p = policy({ limit: 3 });
    const { stores: [a] } = edges(redis, 1);
    const granted = [];
    for (let i = 0; i < 4; i++) granted.push((await a!.lease("g", p, "p:a", lease())).granted);
    assert.deepEqual(granted, [1, 1, 1, 0]);
  });

  for (const algorithm of ALGORITHMS) {
    await t.step(
      `${algorithm}: given-back tokens can be leased again, and only those`,
      async () => {
        const p = policy({ algorithm, limit: 10, refill: 1 });
        const { stores: [a, b] } = edges(redis, 2);
        const all = lease({ spare: 100, fraction: 1 });
        const first = await a!.lease("g", p, "p:a", all);
        assert.equal(first.granted, 10);
        assert.equal((await b!.lease("g", p, "p:a", all)).granted, 0);
        // Edge a spent 3 of its 10 and gives the other 7 back.
        const back = await a!.lease("g", p, "p:a", {
          ...all,
          need: 0,
          giveBack: { tokens: 7, window: first.window },
        });
        assert.equal(back.granted, 0);
        // Edge b takes them in shares (two edges seen), 7 in all.
        let taken = 0;
        for (let i = 0; i < 10; i++) taken += (await b!.lease("g", p, "p:a", all)).granted;
        assert.equal(taken, 7);
      },
    );

    await t.step(`${algorithm}: a give-back never lifts a budget above its limit`, async () => {
      const p = policy({ algorithm, limit: 10, refill: 1 });
      const { stores: [a], namespace } = edges(redis, 1);
      const all = lease({ spare: 100, fraction: 1 });
      // Nothing was taken: the counter (or bucket) does not exist yet.
      await a!.lease("g", p, "p:a", { ...all, need: 0, giveBack: { tokens: 5, window: 0 } });
      const budget = rateLimitKeys(namespace).budget("g", "p:a");
      assert.equal((await redis.keys(`${budget}*`)).length, 0, "a give-back created a key");
      const taken = await a!.lease("g", p, "p:a", all);
      assert.equal(taken.granted, 10);
      // More given back than was counted: the count stops at zero.
      await a!.lease("g", p, "p:a", {
        ...all,
        need: 0,
        giveBack: { tokens: 25, window: taken.window },
      });
      assert.equal((await a!.lease("g", p, "p:a", all)).granted, 10);
    });
  }

  await t.step("a lease ends with its window, and within the longest lifetime", async () => {
    const { stores: [a] } = edges(redis, 1);
    const short = await a!.lease("g", policy({ limit: 100 }), "p:a", lease({ ttlMs: 250 }));
    assert.equal(short.ttlMs, 250);
    // A one-second window ends before a 5 s lease would.
    const windowed = await a!.lease(
      "g",
      policy({ limit: 100, window_s: 1 }),
      "p:b",
      lease({ ttlMs: 5000 }),
    );
    assert.ok(windowed.ttlMs > 0 && windowed.ttlMs <= 1000, `ttl ${windowed.ttlMs}`);
    // Redis's clock and this one are the same machine's: the lease ends at the reset.
    assert.ok(Math.abs(windowed.reset - windowed.ttlMs - Date.now()) < 250);
    const bucket = await a!.lease(
      "g",
      policy({ algorithm: "token_bucket", limit: 100, window_s: 2 }),
      "p:c",
      lease({ ttlMs: 5000 }),
    );
    assert.equal(bucket.ttlMs, 2000);
  });

  await t.step(
    "a call that cannot lease (spare ≤ need) grants exactly its need and tracks no edges",
    async () => {
      const p = policy({ limit: 100 });
      const { stores: [a], namespace } = edges(redis, 1);
      // spare 0 (leasing off) and spare 1 (a caller's first ask): one token each.
      for (let i = 0; i < 4; i++) {
        const g = await a!.lease("g", p, "p:a", lease({ spare: i % 2 }));
        assert.equal(g.granted, 1);
        assert.equal(g.remaining, 100 - (i + 1));
      }
      assert.equal(await redis.exists(rateLimitKeys(namespace).leaseEdges("g", "p:a")), 0);
    },
  );

  await t.step(
    "the counts are @upstash/ratelimit's: a limiter of the library sees the leased tokens",
    async () => {
      const p = policy({ limit: 100, window_s: 60 });
      const { stores: [a], namespace } = edges(redis, 1);
      // `spare` bounds the whole grant, the asking request's token included.
      const g = await a!.lease("g", p, "p:a", lease({ spare: 5, fraction: 1 }));
      assert.equal(g.granted, 5);
      assert.equal(g.reset, (g.window + 1) * 60_000);
      const keys = rateLimitKeys(namespace);
      const library = new Ratelimit({
        redis,
        limiter: Ratelimit.slidingWindow(100, "60000 ms"),
        prefix: keys.prefix("g"),
        ephemeralCache: false,
        analytics: false,
        enableTelemetry: false,
      });
      const seen = await library.limit(keys.identifier("p:a"));
      assert.equal(seen.success, true);
      assert.equal(seen.remaining, 100 - 5 - 1);
      assert.equal(seen.reset, g.reset);
    },
  );
});
