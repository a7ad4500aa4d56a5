import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { claim, fail } from "../../shared/queue/leases.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

Deno.test({
  name: "GET /v1/queue shows depth by state and priority to admins and operators only",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    // A private namespace: no worker of another suite claims these tasks.
    await using h = await routeHarness(stack);
    const { queue } = h;
    for (let i = 0; i < 3; i++) {
      await queue.enqueue("noop", { echo: `h${i}` }, { priority: "high" });
    }
    await queue.enqueue("noop", { echo: "low" }, { priority: "low" });
    await queue.enqueue("noop", { echo: "later" }, { delayMs: 60_000 });
    // Two claimed (running), one of them failed for good (dead).
    const { tasks } = await claim(queue.ctx, { max: 2, leaseMs: 30_000, workerId: "w1" });
    assert.equal(tasks.length, 2);
    await fail(queue.ctx, [{
      id: tasks[0]!.id,
      leaseToken: tasks[0]!.leaseToken,
      error: "Error: boom",
      permanent: true,
      backoffMs: 0,
    }]);

    const admin = await h.token("u-admin", ["admin"]);
    for (const auth of [admin, h.tokens.operator]) {
      const res = await h.call("GET", "/v1/queue", { auth });
      assert.equal(res.status, 200, await res.clone().text());
      const body = await res.json();
      assert.deepEqual(body.ready, { high: 1, normal: 0, low: 1 });
      assert.equal(body.delayed, 1);
      assert.equal(body.running, 1);
      assert.equal(body.dead, 1);
      assert.equal(body.dead_by_type.noop, 1);
      assert.equal(body.dead_by_type.send_email, 0);
      assert.equal(body.counters.enqueued, 5);
    }
    assert.equal((await h.call("GET", "/v1/queue", { auth: h.tokens.viewer })).status, 403);
    assert.equal((await h.call("GET", "/v1/queue")).status, 403, "sa:minerva is not an operator");
    assert.equal((await h.call("GET", "/v1/queue", { auth: null })).status, 401);
  },
});
