/**
 * A worker that cannot renew its lease must stop running the task before
 * Redis hands it to another worker: a task whose timeout is longer than the
 * lease otherwise runs twice at once. Worker A reaches Redis through a fault
 * proxy (dev/chaos/fault_proxy.ts) that starts resetting connections while
 * A's task runs; worker B then takes the task over once the lease expires.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { startFaultProxy } from "../dev/chaos/fault_proxy.ts";
import { useTestStack } from "../testing/stack.ts";
import { testQueue } from "../testing/queue.ts";
import { waitUntil } from "../testing/wait.ts";
import { task } from "../shared/tasks/catalog.ts";
import { type Handler, Runner } from "./runner.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { testNamespace } from "../testing/namespace.ts";

// Deps hold a Neon Pool and runners fetch streams that end asynchronously.
const opts = noSanitizers;

Deno.test({
  name: "a worker whose lease renewals fail abandons the task before another worker takes it",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const bridge = new URL(stack.settings.redis.url);
    await using proxy = await startFaultProxy({ upstreamPort: Number(bridge.port) });
    const depsA = stack.makeDeps({ UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${proxy.port}` });
    const depsB = stack.makeDeps();
    // Timeout far longer than the lease: only the lease fence can stop A in time.
    const catalog = { long: task(z.object({}).strict(), { timeoutMs: 60_000, maxAttempts: 3 }) };
    const namespace = testNamespace("t");
    const qA = testQueue(depsA.redis, { namespace }, catalog);
    const qB = testQueue(depsB.redis, { namespace }, catalog);
    const timeline: string[] = [];
    let releaseB!: () => void;
    const bMayFinish = new Promise<void>((r) => releaseB = r);

    const slowA: Handler = (_p, ctx) =>
      new Promise((_, reject) => {
        timeline.push("A started");
        ctx.signal.addEventListener("abort", () => {
          timeline.push(`A aborted: ${(ctx.signal.reason as Error).name}`);
          reject(ctx.signal.reason);
        }, { once: true });
      });
    const quickB: Handler = async () => {
      timeline.push("B started");
      await bMayFinish;
      return { by: "B" };
    };
    const leaseMs = 900;
    const a = new Runner({
      queue: qA,
      deps: depsA,
      handlers: { long: slowA },
      leaseMs,
      pollMs: 100,
      subscribe: false,
    });
    let b: Runner | null = null;
    try {
      const { id } = await qA.enqueue("long", {});
      a.start();
      await waitUntil(() => Promise.resolve(timeline.includes("A started")), {
        what: "A runs the task",
        timeoutMs: 20_000,
      });
      proxy.setFault({ kind: "reset" });

      b = new Runner({
        queue: qB,
        deps: depsB,
        handlers: { long: quickB },
        leaseMs,
        pollMs: 100,
        subscribe: false,
      });
      b.start();
      await waitUntil(() => Promise.resolve(timeline.includes("B started")), {
        what: "B takes the task over after the lease expired",
        timeoutMs: 20_000,
      });
      releaseB();
      await waitUntil(async () => (await qB.getTask(id))?.status === "succeeded", {
        what: "the task succeeds on B",
        timeoutMs: 20_000,
      });
      assert.deepEqual(timeline, ["A started", "A aborted: LeaseExpiredError", "B started"]);
      assert.equal((await qB.getTask(id))?.attempts, 2);
    } finally {
      releaseB();
      proxy.setFault({ kind: "pass" });
      await b?.stop();
      await a.stop();
    }
  },
});
