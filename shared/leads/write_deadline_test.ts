/**
 * A lead write on a Postgres connection that silently stops answering (the
 * fault proxy's blackhole between the pool and dev/neon_proxy.ts): the
 * transaction's deadline fails it, its connection is destroyed, and the
 * retry with the same Idempotency-Key applies once.
 */
import assert from "node:assert/strict";
import { startFaultProxy } from "../../dev/chaos/fault_proxy.ts";
import { useTestStack } from "../../testing/stack.ts";
import { waitUntil } from "../../testing/wait.ts";
import { createPool } from "../db/pool.ts";
import { writeKey } from "./idempotent_write.ts";
import { createLead } from "./repository.ts";
import { TransactionDeadlineError, withTransaction } from "./transaction.ts";
import { createLoopLagMeter, type LoopLag } from "../loop_lag.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { runTag } from "../../testing/namespace.ts";

// The Neon Pool keeps WebSocket ops alive between queries (neon-local.md §5): sanitizers off.
const opts = noSanitizers;

Deno.test({
  name: "a write on a blackholed connection fails at its deadline and its retry applies once",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { sql } = stack.makeDeps();
    const target = stack.settings.database;
    assert.ok(target.wsProxy, "the test stack serves Postgres through dev/neon_proxy.ts");
    const [address, ...path] = target.wsProxy.split("/");
    await using proxy = await startFaultProxy({ upstreamPort: Number(address!.split(":")[1]) });
    // One connection: a write after the failure can only run on a new one.
    const pool = createPool({
      databaseUrl: target.url,
      wsProxy: `127.0.0.1:${proxy.port}/${path.join("/")}`,
      useSecureWebSocket: target.useSecureWebSocket,
      pipelineConnect: target.pipelineConnect,
      max: 1,
      onError: () => {},
    });
    const run = runTag();
    const city = `Deadline-${run}`;
    const input = { name: "Stalled", city, source: "test" };
    const key = await writeKey(`test-${run} POST /v1/leads`, "k1", input);
    const leadsInCity = async () =>
      (await sql.query("SELECT id FROM businesses WHERE city = $1", [city])).rows.length;
    try {
      await pool.query("SELECT 1");
      assert.equal(pool.totalCount, 1, "the pooled connection is open through the proxy");

      proxy.setFault({ kind: "blackhole" });
      await assert.rejects(
        createLead(pool, input, "test", { writeKey: key, deadlineMs: 300 }),
        TransactionDeadlineError,
      );
      // Destroyed, not returned to the pool: its socket closes while the blackhole lasts.
      assert.equal(pool.totalCount, 0, "the stalled connection left the pool");
      await waitUntil(() => proxy.connections === 0, {
        timeoutMs: 30_000,
        what: "the stalled connection's socket to close",
      });
      assert.equal(await leadsInCity(), 0, "nothing reached the server through the blackhole");

      proxy.setFault({ kind: "pass" });
      let replays = 0;
      const lead = await createLead(pool, input, "test", {
        writeKey: key,
        deadlineMs: 30_000,
        onReplay: () => replays++,
      });
      assert.equal(replays, 0, "the failed write did not commit: the retry applies");
      const again = await createLead(pool, input, "test", {
        writeKey: key,
        deadlineMs: 30_000,
        onReplay: () => replays++,
      });
      assert.equal(again.id, lead.id);
      assert.equal(replays, 1, "a second retry replays the first's answer");
      assert.equal(await leadsInCity(), 1, "one lead");
    } finally {
      await pool.end();
    }
  },
});

Deno.test({
  name: "withTransaction without a deadline, or within it, commits; a bad deadline is refused",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { sql } = stack.makeDeps();
    const one = async (options: { deadlineMs?: number }) =>
      await withTransaction(sql, async (c) => (await c.query("SELECT 1 AS n")).rows[0].n, options);
    assert.equal(await one({}), 1);
    assert.equal(await one({ deadlineMs: 30_000 }), 1);
    await assert.rejects(one({ deadlineMs: 0 }), RangeError);
    await assert.rejects(one({ deadlineMs: 1.5 }), RangeError);
  },
});

Deno.test({
  name:
    "the deadline counts time net of this process's own stall: a stalled process does not fail a write Postgres answered",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { sql } = stack.makeDeps();
    const lag = createLoopLagMeter();
    lag.start();
    try {
      // The event loop blocked for 500 ms inside a 200 ms deadline: what a
      // CPU-starved machine does to a write whose connection keeps answering.
      const stalled = (options: { deadlineMs: number; lag?: LoopLag }) =>
        withTransaction(sql, async (c) => {
          const n = (await c.query("SELECT 1 AS n")).rows[0].n;
          const until = performance.now() + 500;
          while (performance.now() < until) { /* stalled */ }
          return (await c.query("SELECT $1::int AS n", [n])).rows[0].n;
        }, options);
      assert.equal(await stalled({ deadlineMs: 200, lag }), 1, "net of the stall: committed");
      await assert.rejects(
        stalled({ deadlineMs: 200 }),
        TransactionDeadlineError,
        "on wall time the same write fails",
      );
      // A connection that really stops answering still fails at its deadline.
      const silent = withTransaction(
        sql,
        (c) => c.query("SELECT pg_sleep(5)"),
        { deadlineMs: 200, lag },
      );
      const started = performance.now();
      await assert.rejects(silent, TransactionDeadlineError);
      assert.ok(performance.now() - started < 2_000, "failed at its deadline, not after 5 s");
    } finally {
      lag.stop();
    }
  },
});
