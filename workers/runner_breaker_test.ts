import assert from "node:assert/strict";
import { z } from "zod";
import { useTestStack } from "../testing/stack.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { claim } from "../shared/queue/leases.ts";
import { createQueue, type TaskInfo, type TaskQueue } from "../shared/queue/queue.ts";
import { task } from "../shared/tasks/catalog.ts";
import { Runner } from "./runner.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { testNamespace } from "../testing/namespace.ts";

// Deps hold a Neon Pool; runner and registry hold SSE subscriptions (async teardown).
const opts = noSanitizers;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const CATALOG = {
  mail: task(z.object({ n: z.number() }), { breaker: "email" }),
  echo: task(z.object({ n: z.number() })),
};

async function statuses(q: TaskQueue, ids: string[]): Promise<TaskInfo[]> {
  return (await Promise.all(ids.map((id) => q.getTask(id)))) as TaskInfo[];
}

Deno.test({
  name: "claim() parks tasks of paused types and returns them to the front, in order, when resumed",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const q = createQueue(redis, CATALOG, { namespace: testNamespace("p") });
    const [m1, e1, m2] = await q.enqueueMany([
      { type: "mail", payload: { n: 1 } },
      { type: "echo", payload: { n: 2 } },
      { type: "mail", payload: { n: 3 } },
    ]);
    const paused = await claim(q.ctx, {
      max: 10,
      leaseMs: 30_000,
      workerId: "w",
      pausedTypes: ["mail"],
    });
    assert.deepEqual(paused.tasks.map((t) => t.id), [e1!.id]);
    assert.equal(paused.parked, 2);
    assert.deepEqual((await statuses(q, [m1!.id, m2!.id])).map((t) => [t.status, t.attempts]), [[
      "pending",
      0,
    ], [
      "pending",
      0,
    ]]);
    const later = await q.enqueue("mail", { n: 4 });
    const resumed = await claim(q.ctx, { max: 10, leaseMs: 30_000, workerId: "w" });
    assert.deepEqual(resumed.tasks.map((t) => t.id), [m1!.id, m2!.id, later.id]);
  },
});

Deno.test({
  name:
    "a worker leaves tasks whose breaker is open queued (no attempts burnt) and runs them once it closes",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const ns = testNamespace("r");
    const q = createQueue(deps.redis, CATALOG, { namespace: ns });
    const breakers = createBreakerRegistry({ redis: deps.redis, namespace: ns });
    await breakers.start();
    const ran: string[] = [];
    const runner = new Runner({
      queue: q,
      deps,
      breakers,
      pollMs: 100,
      handlers: {
        mail: (p: { n: number }) => void ran.push(`mail${p.n}`),
        echo: (p: { n: number }) => void ran.push(`echo${p.n}`),
      },
    });
    try {
      await breakers.forceOpen("email");
      runner.start();
      const res = await q.enqueueMany([
        { type: "mail", payload: { n: 1 } },
        { type: "echo", payload: { n: 2 } },
        { type: "mail", payload: { n: 3 } },
      ]);
      for (let i = 0; i < 100 && !ran.includes("echo2"); i++) await sleep(10);
      await sleep(300); // several polls while the breaker stays open
      assert.deepEqual(ran, ["echo2"]);
      const parked = await statuses(q, [res[0]!.id, res[2]!.id]);
      assert.deepEqual(parked.map((t) => [t.status, t.attempts]), [["pending", 0], ["pending", 0]]);

      await breakers.reset("email");
      for (let i = 0; i < 200 && ran.length < 3; i++) await sleep(10);
      assert.deepEqual(ran, ["echo2", "mail1", "mail3"]);
      // A handler's outcome is reported with the runner's next exchange: wait for the acks.
      let done = await statuses(q, res.map((r) => r.id));
      for (let i = 0; i < 200 && done.some((t) => t.status !== "succeeded"); i++) {
        await sleep(10);
        done = await statuses(q, res.map((r) => r.id));
      }
      assert.deepEqual(done.map((t) => [t.status, t.attempts]), [
        ["succeeded", 1],
        ["succeeded", 1],
        ["succeeded", 1],
      ]);
    } finally {
      await runner.stop();
      await breakers.stop();
    }
  },
});

Deno.test({
  name:
    "a task refused by the OPEN breaker that parks its type runs as soon as the breaker half-opens, not after the reset timeout",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const ns = testNamespace("h");
    const q = createQueue(deps.redis, CATALOG, { namespace: ns });
    const breakers = createBreakerRegistry({
      redis: deps.redis,
      namespace: ns,
      policies: { email: { fail_max: 1, reset_timeout_ms: 60_000 } },
      flushMs: 5,
    });
    await breakers.start();
    const attempts: string[] = [];
    const email = breakers.get("email");
    const runner = new Runner({
      queue: q,
      deps,
      breakers,
      pollMs: 100,
      handlers: {
        // Trips the breaker inside the first attempt, then finds it OPEN (60 s to go).
        mail: async () => {
          if (attempts.length === 0) {
            await email.call(() =>
              Promise.reject(Object.assign(new Error("down"), { status: 503 }))
            )
              .catch(() => {});
            for (let i = 0; i < 200 && email.state !== "open"; i++) await sleep(10);
          }
          try {
            await email.call(() => Promise.resolve());
            attempts.push("ran");
          } catch (err) {
            attempts.push((err as Error).name);
            throw err;
          }
        },
        echo: () => {},
      },
    });
    try {
      runner.start();
      const t = await q.enqueue("mail", { n: 1 });
      for (let i = 0; i < 300 && attempts.length === 0; i++) await sleep(10);
      assert.deepEqual(attempts, ["BreakerOpenError"]);
      // The downstream answers its health check a moment later (background_probe.ts).
      await sleep(300);
      const halfOpenAt = Date.now();
      await breakers.halfOpen("email");
      for (let i = 0; i < 1_000 && !attempts.includes("ran"); i++) await sleep(10);
      assert.deepEqual(attempts, ["BreakerOpenError", "ran"]);
      const waited = Date.now() - halfOpenAt;
      assert.ok(waited < 5_000, `ran ${waited} ms after the half-open, not at the reset timeout`);
      let info = await q.getTask(t.id);
      for (let i = 0; i < 200 && info?.status !== "succeeded"; i++) {
        await sleep(10);
        info = await q.getTask(t.id);
      }
      assert.equal(info?.status, "succeeded");
      assert.equal(email.state, "closed", "the task's call was the probe that closed it");
    } finally {
      await runner.stop();
      await breakers.stop();
    }
  },
});

Deno.test({
  name: "a runner refuses a catalog that names an unknown breaker",
  // The previous test's registry tears its subscription down asynchronously.
  ...opts,
}, async () => {
  const { createRedis } = await import("../shared/deps.ts");
  const redis = createRedis({ url: "http://127.0.0.1:9", token: "t" });
  const q = createQueue(redis, { bad: task(z.object({}), { breaker: "nope" }) });
  const breakers = createBreakerRegistry({ redis });
  const { createLogger } = await import("../shared/log.ts");
  const deps = { redis, log: createLogger({ write: () => {} }) } as never;
  assert.throws(
    () => new Runner({ queue: q, deps, breakers, handlers: {} }),
    /task "bad" names unknown breaker "nope"/,
  );
});
