import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createMetrics, renderMetrics } from "../../shared/metrics/metrics.ts";
import { observeLiveHub } from "../edge_metrics.ts";
import { rawUpgrade, startPair, TestClient, token } from "../../testing/live_feed.ts";
import { waitUntil } from "../../testing/wait.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The SDK's SSE streams are torn down asynchronously (the aborted fetch's body
// settles a tick later), and the stack's deps hold a Neon Pool.
const opts = noSanitizers;

Deno.test({
  name: "live feed backpressure and liveness",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = [stack.makeDeps(), stack.makeDeps()] as const;
    const viewer = await token(deps[0].config.auth, "vera", { roles: ["viewer"] });

    await t.step(
      "a client that stops reading is closed with 4008 while the others keep receiving",
      async () => {
        await using pair = await startPair([deps[0], deps[1]], {
          historyMaxLen: 50,
          sendQueueMaxMessages: 100,
          sendQueueMaxBytes: 512 * 1024,
        });
        const [a, b] = pair;
        // Never reads: the kernel buffers fill (a few MB on loopback), then the runtime's, then the queue.
        const slow = await rawUpgrade(a.port, `/v1/ws?access_token=${viewer}&topics=broadcast`);
        const fast = [
          await TestClient.connect(a, viewer, { topics: ["broadcast"] }),
          await TestClient.connect(b, viewer, { topics: ["broadcast"] }),
        ];
        try {
          assert.equal(slow.status, 101);
          for (const c of fast) await c.waitFor((f) => f.type === "subscribed");
          await waitUntil(() => a.hub.connections().length === 2);
          const blob = "x".repeat(16 * 1024);
          let n = 0;
          while (a.hub.metrics.slowConsumers === 0) {
            assert.ok(n < 2000, "the slow client was never closed");
            await Promise.all(
              Array.from({ length: 20 }, () => b.hub.publish("broadcast", { n: n++, blob })),
            );
            // Let the fast clients keep up, as a real one would.
            await waitUntil(() => fast.every((c) => c.messages().length === n), {
              timeoutMs: 10_000,
            });
          }
          assert.equal(a.hub.metrics.slowConsumers, 1);
          await waitUntil(() => a.hub.connections().length === 1, {
            what: "the slow socket to go",
          });
          for (let i = 0; i < 20; i++) await b.hub.publish("broadcast", { n: n++ });
          for (const c of fast) {
            await waitUntil(() => c.messages().length === n, { what: `${n} messages` });
            assert.deepEqual(c.messages().map((m) => (m.data as { n: number }).n), [
              ...Array(n).keys(),
            ]);
          }
          // Reading everything now, the slow peer finds the close frame at the end.
          const closed = await slow.readUntilClose();
          assert.deepEqual([closed.code, closed.reason], [4008, "slow consumer"]);
          assert.ok(closed.frames < n, `${closed.frames} frames before the close, of ${n}`);
          // What the overflow discarded is counted as dropped, read from the registry's output.
          const discarded = a.hub.metrics.dropped.slow_consumer;
          assert.ok(discarded > 0, "the overflow discarded frames");
          const lines = await exported(a.hub.metrics);
          assert.ok(
            lines.includes(`ws_messages_dropped_total{reason="slow_consumer"} ${discarded}`),
            lines.join("\n"),
          );
        } finally {
          slow.close();
          await Promise.all(fast.map((c) => c.close()));
        }
      },
    );

    await t.step(
      "frames still queued for a peer that went away are counted as dropped (closed)",
      async () => {
        await using pair = await startPair([deps[0], deps[1]], {
          // Room to queue without overflowing: this peer goes away, it is not slow.
          sendQueueMaxMessages: 100_000,
          sendQueueMaxBytes: 256 * 1024 * 1024,
        });
        const [a, b] = pair;
        const gone = await rawUpgrade(a.port, `/v1/ws?access_token=${viewer}&topics=broadcast`);
        try {
          assert.equal(gone.status, 101);
          await waitUntil(() => a.hub.connections()[0]?.topics.includes("broadcast") ?? false, {
            what: "the peer to follow broadcast",
          });
          const conn = a.hub.connections()[0]!;
          const blob = "x".repeat(16 * 1024);
          let n = 0;
          // It never reads: once the kernel's and the runtime's buffers are full, frames queue.
          while (conn.queued === 0) {
            assert.ok(n < 20_000, "no frame ever queued");
            await Promise.all(
              Array.from({ length: 20 }, () => b.hub.publish("broadcast", { n: n++, blob })),
            );
            await waitUntil(() => a.hub.metrics.sent >= n, { what: `${n} frames handed over` });
          }
          assert.equal(a.hub.metrics.dropped.closed, 0);
          gone.close();
          await waitUntil(() => a.hub.connections().length === 0, { what: "the socket to go" });
          const dropped = a.hub.metrics.dropped.closed;
          assert.ok(dropped > 0, "the frames queued at the close are dropped");
          assert.equal(a.hub.metrics.dropped.slow_consumer, 0);
          const lines = await exported(a.hub.metrics);
          for (
            const line of [
              `ws_messages_dropped_total{reason="closed"} ${dropped}`,
              'ws_messages_dropped_total{reason="slow_consumer"} 0',
            ]
          ) assert.ok(lines.includes(line), `${line} missing from:\n${lines.join("\n")}`);
        } finally {
          gone.close();
        }
      },
    );

    await t.step("a peer that never answers pings is dropped; one that does stays", async () => {
      await using pair = await startPair([deps[0], deps[1]], { pingIntervalMs: 100 });
      const [a] = pair;
      const dead = await rawUpgrade(a.port, `/v1/ws?access_token=${viewer}`);
      const alive = await TestClient.connect(a, viewer);
      try {
        assert.equal(dead.status, 101);
        await waitUntil(() => a.hub.connections().length === 1, {
          timeoutMs: 2000,
          what: "the silent peer to be dropped",
        });
        await new Promise((r) => setTimeout(r, 300)); // several ping periods
        assert.equal(alive.closeEvent, null);
        assert.deepEqual(a.hub.connections().map((c) => c.id), [alive.clientId]);
      } finally {
        dead.close();
        await alive.close();
      }
    });
  },
});

/** The hub's counters as the edge's registry exports them. */
async function exported(counters: Parameters<typeof observeLiveHub>[1]): Promise<string[]> {
  const metrics = createMetrics();
  observeLiveHub(metrics, counters);
  return (await renderMetrics(metrics)).split("\n");
}
