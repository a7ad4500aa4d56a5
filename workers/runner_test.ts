import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import type { Deps } from "../shared/deps.ts";
import { PermanentTaskError } from "../shared/queue/errors.ts";
import type { TaskQueue } from "../shared/queue/queue.ts";
import { testQueue, waitForTasks } from "../testing/queue.ts";
import { type Handler, Runner, type TaskContext } from "./runner.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

// Deps hold a Neon Pool and the runner an SSE subscription whose fetch ops
// end asynchronously after unsubscribe, so the sanitizers are off here.
const opts = noSanitizers;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runner(deps: Deps, q: TaskQueue, handlers: Record<string, Handler>, extra = {}) {
  return new Runner({ queue: q, deps, handlers, pollMs: 200, random: () => 0.5, ...extra });
}

Deno.test({
  name: "Runner",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();

    await t.step(
      "runs tasks and stores their results; ctx carries id, attempt and token",
      async () => {
        const q = testQueue(deps.redis);
        const seen: TaskContext[] = [];
        const r = runner(deps, q, {
          echo: (p: { n: number }, ctx) => {
            seen.push(ctx);
            return { doubled: p.n * 2 };
          },
        }, { concurrency: 4 });
        r.start();
        const res = await q.enqueueMany(
          Array.from({ length: 20 }, (_, n) => ({ type: "echo", payload: { n } })),
        );
        const infos = await waitForTasks(q, res.map((x) => x.id), (x) => x.status === "succeeded");
        assert.deepEqual(
          infos.map((x) => x.result),
          Array.from({ length: 20 }, (_, n) => ({ doubled: n * 2 })),
        );
        await r.stop();
        assert.equal(seen.length, 20);
        assert.ok(
          seen.every((c) =>
            c.attempt === 1 && c.leaseToken.length > 10 && res.some((x) => x.id === c.taskId)
          ),
        );
      },
    );

    await t.step("an idle worker wakes on the notification, not the poll", async () => {
      const q = testQueue(deps.redis);
      const started: number[] = [];
      const r = runner(deps, q, { echo: () => void started.push(Date.now()) }, { pollMs: 60_000 });
      r.start();
      await sleep(300); // subscribed and idle
      const t0 = Date.now();
      const { id } = await q.enqueue("echo", { n: 1 });
      await waitForTasks(q, [id], (x) => x.status === "succeeded", { timeoutMs: 3000 });
      await r.stop();
      assert.ok(started[0]! - t0 < 1000, `took ${started[0]! - t0} ms with a 60 s poll`);
    });

    await t.step(
      "failures retry with backoff and then succeed; non-Errors are readable",
      async () => {
        const q = testQueue(deps.redis);
        const r = runner(deps, q, {
          echo: (_p, ctx) => {
            if (ctx.attempt === 1) throw { reason: "flaky upstream" };
            return "ok";
          },
        });
        r.start();
        const { id } = await q.enqueue("echo", { n: 1 });
        const [info] = await waitForTasks(q, [id], (x) => x.status === "succeeded");
        await r.stop();
        assert.equal(info!.attempts, 2);
        assert.equal(info!.lastError, 'Non-Error thrown: {"reason":"flaky upstream"}');
      },
    );

    await t.step(
      "PermanentTaskError, timeouts and non-JSON results end in the DLQ, the worker keeps going",
      async () => {
        const q = testQueue(deps.redis);
        const r = runner(deps, q, {
          echo: (p: { n: number }) => {
            if (p.n === 1) throw new PermanentTaskError("lead has no email");
            if (p.n === 2) return { when: 10n };
            return "fine";
          },
          slow: () => new Promise(() => {}), // never settles, ignores its signal
        });
        r.start();
        const [perm, nonJson, ok] = await q.enqueueMany([
          { type: "echo", payload: { n: 1 } },
          { type: "echo", payload: { n: 2 } },
          { type: "echo", payload: { n: 3 } },
        ]);
        const slow = await q.enqueue("slow", { ms: 0 });
        const infos = await waitForTasks(
          q,
          [perm!.id, nonJson!.id, ok!.id, slow.id],
          (x) => x.status === "dead" || x.status === "succeeded",
        );
        await r.stop();
        assert.deepEqual(infos.map((x) => x.status), ["dead", "dead", "succeeded", "dead"]);
        assert.equal(infos[0]!.dlqReason, "Permanent error: PermanentTaskError: lead has no email");
        assert.equal(infos[0]!.attempts, 1);
        assert.match(
          infos[1]!.dlqReason!,
          /result that is not JSON: when: a BigInt is not valid JSON/,
        );
        assert.equal(infos[3]!.dlqReason, "Max retries (1) exceeded");
        assert.equal(infos[3]!.lastError, "TaskTimeoutError: Timed out after 200 ms");
      },
    );

    await t.step("the heartbeat keeps a task longer than its lease on one worker", async () => {
      const q = testQueue(deps.redis);
      let runs = 0;
      // The task outlives its lease three times over. The lease is long
      // enough that a loaded CI machine's event-loop stalls do not lose it
      // (a 150 ms lease did, twice, at load 10).
      const handlers = {
        echo: async () => {
          runs++;
          await sleep(1_200);
        },
      };
      const a = runner(deps, q, handlers, { leaseMs: 400 });
      a.start();
      const { id } = await q.enqueue("echo", { n: 1 }, { timeoutMs: 5000 });
      await sleep(50);
      const b = runner(deps, q, handlers, { leaseMs: 400 });
      b.start();
      await waitForTasks(q, [id], (x) => x.status === "succeeded");
      await Promise.all([a.stop(), b.stop()]);
      assert.equal(runs, 1);
    });

    await t.step("stop() lets short tasks finish and releases long ones at once", async () => {
      const q = testQueue(deps.redis);
      const aborted: string[] = [];
      const r = runner(deps, q, {
        echo: async (p: { n: number }, ctx) => {
          if (p.n === 1) return await sleep(100);
          await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
          aborted.push(String(ctx.signal.reason?.name));
        },
      }, { shutdownGraceMs: 300 });
      r.start();
      const [short, long] = await q.enqueueMany([
        { type: "echo", payload: { n: 1 } },
        { type: "echo", payload: { n: 2 } },
      ]);
      await waitForTasks(q, [short!.id, long!.id], (x) => x.status === "running");
      const t0 = Date.now();
      const result = await r.stop();
      assert.deepEqual(result, { finished: 1, released: 1 });
      assert.ok(Date.now() - t0 < 2000);
      assert.deepEqual(aborted, ["ShutdownError"]);
      assert.equal((await q.getTask(short!.id))?.status, "succeeded");
      const released = await q.getTask(long!.id);
      assert.equal(released?.status, "pending");
      assert.equal(released?.attempts, 0);

      const next = runner(deps, q, { echo: () => "second worker" });
      next.start();
      const [info] = await waitForTasks(q, [long!.id], (x) => x.status === "succeeded");
      await next.stop();
      assert.equal(info!.result, "second worker");
    });

    await t.step("types without a handler here stay queued for a worker that has one", async () => {
      const q = testQueue(deps.redis);
      const echoOnly = runner(deps, q, { echo: () => "echo" });
      echoOnly.start();
      const [loose, echo] = await q.enqueueMany([
        { type: "loose", payload: { data: 1 } },
        { type: "echo", payload: { n: 1 } },
      ]);
      await waitForTasks(q, [echo!.id], (x) => x.status === "succeeded");
      await sleep(250); // a poll or two
      const waiting = await q.getTask(loose!.id);
      assert.deepEqual([waiting?.status, waiting?.attempts], ["pending", 0]);
      await echoOnly.stop();
      const looseWorker = runner(deps, q, { loose: () => "handled" });
      looseWorker.start();
      const [done] = await waitForTasks(q, [loose!.id], (x) => x.status === "succeeded");
      await looseWorker.stop();
      assert.equal(done!.result, "handled");
    });

    await t.step("a timed-out handler keeps its slot until it really returns", async () => {
      const q = testQueue(deps.redis);
      const events: string[] = [];
      // `slow` times out after 200 ms; this handler ignores its signal for 600 ms.
      const r = runner(deps, q, {
        slow: async (p: { ms: number }) => {
          events.push("slow:start");
          await sleep(p.ms);
          events.push("slow:end");
        },
        echo: () => void events.push("echo:start"),
      }, { concurrency: 1 });
      r.start();
      const [slow] = await q.enqueueMany([{ type: "slow", payload: { ms: 600 } }]);
      await waitForTasks(q, [slow!.id], (x) => x.status === "dead");
      const [echo] = await q.enqueueMany([{ type: "echo", payload: { n: 2 } }]);
      await waitForTasks(q, [echo!.id], (x) => x.status === "succeeded");
      await r.stop();
      // With concurrency 1 the echo could not start while the timed-out handler still ran.
      assert.deepEqual(events, ["slow:start", "slow:end", "echo:start"]);
    });

    await t.step("a handler with no catalog entry is refused at construction", () => {
      const q = testQueue(deps.redis);
      assert.throws(
        () => runner(deps, q, { mystery: () => 1 }),
        /handler for "mystery" has no catalog entry/,
      );
    });
  },
});
