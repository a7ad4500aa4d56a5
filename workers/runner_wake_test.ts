import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { testQueue } from "../testing/queue.ts";
import { Runner } from "./runner.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { TcpScriptTransport } from "../shared/redis/tcp_scripts.ts";

for (const transport of ["rest", "tcp"] as const) {
  Deno.test({
    name:
      `Runner (${transport}): work enqueued while the previous task's ack-and-claim is in flight is not missed`,
    // Deps hold a Neon Pool and the runner a notification subscription (async teardown).
    ...noSanitizers,
    async fn() {
      await using stack = await useTestStack();
      const deps = stack.makeDeps();
      // Over TCP the notification stream is a SUBSCRIBE on a connection of its own.
      await using tcp = transport === "tcp"
        ? new TcpScriptTransport({ url: stack.settings.redis.tcpUrl! })
        : null;
      const q = tcp ? testQueue(deps.redis, {}, undefined, tcp) : testQueue(deps.redis);
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
}

Deno.test({
  name: "Runner: with a backlog it claims half its slots per exchange, two exchanges in flight",
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const q = testQueue(deps.redis);
    // Every claim's `max` (ARGV[2]) and how many claims were in flight at once.
    const asked: number[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const claim = q.ctx.scripts.claim;
    q.ctx.scripts.claim = {
      run: async <T>(keys: string[], args: (string | number)[]) => {
        asked.push(Number(args[1]));
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        try {
          return await claim.run<T>(keys, args);
        } finally {
          inFlight--;
        }
      },
    };
    const done = new Set<number>();
    const runner = new Runner({
      queue: q,
      deps,
      concurrency: 10,
      pollMs: 60_000,
      handlers: { echo: (p: { n: number }) => void done.add(p.n) },
    });
    runner.start();
    try {
      await new Promise((r) => setTimeout(r, 300)); // subscribed and idle
      // No backlog yet: one claim asks for every free slot.
      await q.enqueue("echo", { n: 0 });
      while (!done.has(0)) await new Promise((r) => setTimeout(r, 5));
      assert.equal(asked[0], 10);
      asked.length = 0;
      await q.enqueueMany(Array.from({ length: 200 }, (_, i) => ({
        type: "echo",
        payload: { n: i + 1 },
      })));
      while (done.size < 201) await new Promise((r) => setTimeout(r, 5));
      // Draining the backlog: claims of at most 5 (half of 10), two at a time.
      assert.ok(asked.filter((n) => n === 5).length > 10, `claims asked for ${asked}`);
      assert.ok(asked.every((n) => n <= 10), `claims asked for ${asked}`);
      assert.equal(mostInFlight, 2);
    } finally {
      await runner.stop();
    }
  },
});

Deno.test({
  name: "Runner: a claim that never answers is given up after a lease; the worker claims again",
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const q = testQueue(deps.redis);
    // The first claim hangs forever (a request stuck on a dead connection).
    const claim = q.ctx.scripts.claim;
    let calls = 0;
    q.ctx.scripts.claim = {
      run: <T>(keys: string[], args: (string | number)[]) =>
        ++calls === 1 ? new Promise<T>(() => {}) : claim.run<T>(keys, args),
    };
    const done = new Set<number>();
    const runner = new Runner({
      queue: q,
      deps,
      concurrency: 2,
      leaseMs: 500,
      pollMs: 100,
      handlers: { echo: (p: { n: number }) => void done.add(p.n) },
    });
    runner.start();
    try {
      await q.enqueueMany([1, 2, 3].map((n) => ({ type: "echo", payload: { n } })));
      const t0 = performance.now();
      while (done.size < 3 && performance.now() - t0 < 10_000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(done.size, 3, `ran ${[...done]} after ${calls} claims`);
      assert.ok(
        deps.logs.some((l) => l.includes("claim failed") && l.includes("took longer than 500ms")),
        deps.logs.join("\n"),
      );
    } finally {
      await runner.stop();
    }
  },
});
