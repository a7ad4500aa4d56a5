import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { AppProcess } from "../testing/process.ts";

const LIMIT = 50;
const WINDOW_S = 60;

Deno.test("two edge processes sharing Redis, leasing on, admit at most the limit of a 10× burst", async () => {
  await using stack = await useTestStack();
  const env = {
    ...stack.env(),
    APP_ENV: "test",
    EDGE_PORT: "0",
    RATE_LIMITS: JSON.stringify({ default: { limit: LIMIT, window_s: WINDOW_S } }),
  };
  const edges = [
    new AppProcess("tests/fixtures/rate_limited_edge.ts", env),
    new AppProcess("tests/fixtures/rate_limited_edge.ts", env),
  ];
  try {
    const urls = await Promise.all(
      edges.map(async (e) => (await e.waitForLog("edge listening")).url as string),
    );
    // The sliding window weighs in the previous window: a burst that crossed
    // a window edge could legitimately admit a few more. Start well inside one.
    const left = WINDOW_S * 1000 - (Date.now() % (WINDOW_S * 1000));
    if (left < 5000) await new Promise((r) => setTimeout(r, left + 50));

    // One identity (a fresh one, so no earlier window counts), both processes.
    // A fresh /64 (IPv6 callers are keyed by their /64, edge/client_address.ts).
    const client = `2001:db8:${crypto.randomUUID().slice(0, 4)}::1`;
    const statuses = await Promise.all(
      Array.from({ length: LIMIT * 10 }, async (_, i) => {
        const res = await fetch(`${urls[i % 2]}/limited`, {
          headers: { "x-forwarded-for": client },
        });
        await res.body?.cancel();
        return res.status;
      }),
    );
    const metrics = await Promise.all(
      urls.map(async (u) => await (await fetch(`${u}/metrics`)).json()),
    );
    const admitted = statuses.filter((s) => s === 200).length;
    const limited = statuses.filter((s) => s === 429).length;
    assert.equal(admitted + limited, LIMIT * 10, `unexpected statuses: ${statuses}`);
    // Exact: the store never grants more than the budget it counts.
    assert.ok(admitted <= LIMIT, `admitted ${admitted} of limit ${LIMIT}`);
    assert.ok(admitted >= LIMIT * 0.9, `admitted only ${admitted} of limit ${LIMIT}`);

    // Every decision came from the shared store or the blocked cache: a
    // fallback to the per-process limiters would have admitted up to 2×.
    for (const m of metrics) {
      assert.equal(m.fallbackDecisions, 0);
      assert.equal(m.storeErrors, 0);
    }
    assert.equal(metrics[0].allowed + metrics[1].allowed, admitted);
    // Leasing is on (the default): admissions were spent from leases, most
    // without a store call, and still never above the limit across both.
    assert.ok(metrics[0].localDecisions + metrics[1].localDecisions > 0, JSON.stringify(metrics));
    assert.ok(metrics[0].leaseGrants + metrics[1].leaseGrants > 0, JSON.stringify(metrics));
    for (const m of metrics) {
      assert.equal(m.allowed + m.limited, LIMIT * 5);
      // Each process was refused by the shared count at least once, not only
      // by its own cache (one process may well admit the whole quota).
      assert.ok(m.limited - m.cacheBlocked >= 1, JSON.stringify(m));
    }
  } finally {
    await Promise.all(edges.map((e) => e.kill()));
  }
});
