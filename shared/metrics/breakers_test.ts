import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createBreakerRegistry } from "../breakers/registry.ts";
import { observeBreakers } from "./breakers.ts";
import { createMetrics, renderMetrics } from "./metrics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { testNamespace } from "../../testing/namespace.ts";

// Deps hold a Neon Pool and the registry a subscription (async teardown).
const opts = noSanitizers;

Deno.test({
  name: "breaker metrics show each breaker's state, since when, its reset timeout and transitions",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    let t = 1_700_000_000_000;
    const registry = createBreakerRegistry({
      redis: deps.redis,
      policies: deps.config.breakerPolicies,
      // Private: other suites' breakers must not move these.
      namespace: testNamespace("b"),
      now: () => t,
    });
    await registry.start();
    try {
      const metrics = createMetrics();
      observeBreakers(metrics, registry, { policies: deps.config.breakerPolicies, now: () => t });
      const before = await renderMetrics(metrics);
      assert.match(before, /breaker_state\{breaker="email"\} 0\n/);
      assert.match(before, /breaker_state_since_timestamp_seconds\{breaker="email"\} 1700000000\n/);
      const reset = deps.config.breakerPolicies.email!.reset_timeout_ms / 1000;
      assert.match(
        before,
        new RegExp(`breaker_reset_timeout_seconds\\{breaker="email"\\} ${reset}\\n`),
      );

      t += 5_000;
      await registry.forceOpen("email");
      const after = await renderMetrics(metrics);
      assert.match(after, /breaker_state\{breaker="email"\} 3\n/);
      assert.match(after, /breaker_state_since_timestamp_seconds\{breaker="email"\} 1700000005\n/);
      assert.match(after, /breaker_transitions_total\{breaker="email",to="forced_open"\} 1\n/);
      assert.match(after, /breaker_state\{breaker="database"\} 0\n/);
    } finally {
      await registry.stop();
    }
  },
});
