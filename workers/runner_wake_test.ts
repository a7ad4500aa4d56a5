import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { testQueue } from "../testing/queue.ts";
import { Runner } from "./runner.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

Deno.test({
  name: "Runner: work enqueued while the previous task's ack-and-claim is in flight is not missed",
  // Deps hold a Neon Pool and the runner an SSE subscription (async teardown).
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const q = testQueue(deps.redis);
    const started = new Map<number, number>();
    const runner = new Runner({
      queue: q,
      deps,
      // Only a notification (or a claim after it) can pick tasks up in time.
      pollMs: 60_000,
      handlers: { echo: (p: { n: number }) => void started.set(p.n, performance.now()) },
    });
    runner.start();
    try {
      await new Promise((r) => setTimeout(r, 300)); // subscribed and idle
      const pickups: number[] = [];
      for (let n = 1; n <= 5; n++) {
        const t0 = performance.now();
        // Enqueued the moment the previous handler ran: its ack (with a claim
        // for the freed slot) goes out around now, maybe before this enqueue.
        await q.enqueue("echo", { n });
        while (!started.has(n) && performance.now() - t0 < 5000) {
          await new Promise((r) => setTimeout(r, 1));
        }
        pickups.push(Math.round((started.get(n) ?? Infinity) - t0));
      }
      assert.ok(pickups.every((ms) => ms < 1000), `pickups ${pickups} ms with a 60 s poll`);
    } finally {
      await runner.stop();
    }
  },
});
