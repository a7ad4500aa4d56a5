/**
 * Found by the chaos campaign (docs/reliability.md): with Redis unreachable
 * the Idempotency-Key check answered 503 `dependency-unavailable` WITHOUT
 * Retry-After, which is not the documented degraded answer (clients and the
 * campaign treat a 503 without it as an outage of unknown length), and
 * routes that only read Redis answered 500.
 */
import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { freePort } from "../dev/ports.ts";
import { routeHarness } from "../testing/route_harness.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

Deno.test({
  name: "a 503 for an unreachable dependency always carries Retry-After",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    // Nothing listens there: every Redis call fails at once.
    await using h = await routeHarness(stack, {
      env: { UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${freePort()}` },
    });
    const res = await h.call("POST", "/v1/leads", {
      json: { name: "Unreachable Deli", city: `Nowhere-${h.run}` },
      headers: { "idempotency-key": `k-${h.run}` },
    });
    const body = await res.json();
    assert.equal(res.status, 503, JSON.stringify(body));
    assert.equal(body.code, "dependency-unavailable");
    const retryAfter = Number(res.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter > 0, `Retry-After: ${retryAfter}`);

    // Reading a task needs only Redis: it answered 500 `internal` before.
    const task = await h.call("GET", "/v1/tasks/5b0c3f9e-7d1c-4a8e-9d55-0f3c2a1b9e77");
    const problem = await task.json();
    assert.equal(task.status, 503, JSON.stringify(problem));
    assert.equal(problem.code, "dependency-unavailable");
    assert.ok(Number(task.headers.get("retry-after")) > 0);
  },
});
