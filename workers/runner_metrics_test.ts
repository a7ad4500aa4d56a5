import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { renderMetrics } from "../shared/metrics/metrics.ts";
import { PermanentTaskError } from "../shared/queue/errors.ts";
import { testQueue } from "../testing/queue.ts";
import { Runner } from "./runner.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { waitForValue } from "../testing/wait.ts";

// Deps hold a Neon Pool and the runner an SSE subscription (see runner_test.ts).
const opts = noSanitizers;

/** Renders until `pattern` shows up (outcomes are counted when the next exchange returns). */
function metricsMatching(render: () => Promise<string>, patterns: RegExp[]): Promise<string> {
  let text = "";
  return waitForValue(async () => {
    text = await render();
    return patterns.every((p) => p.test(text)) ? text : undefined;
  }, {
    timeoutMs: 20_000,
    everyMs: 20,
    what: "the metrics",
    detail: () => `missing ${patterns.filter((p) => !p.test(text)).join(", ")}:\n${text}`,
  });
}

Deno.test({
  name: "the runner counts claims and outcomes per type and times runs and first waits",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const q = testQueue(deps.redis);
    const runner = new Runner({
      queue: q,
      deps,
      pollMs: 100,
      random: () => 0.5,
      handlers: {
        echo: (p: { n: number }) => {
          if (p.n === 1) throw new PermanentTaskError("bad input");
          return { n: p.n };
        },
        loose: () => {
          throw new Error("flaky downstream");
        },
      },
    });
    runner.start();
    try {
      await q.enqueueMany([0, 1, 2].map((n) => ({ type: "echo", payload: { n } })));
      await q.enqueue("loose", { data: 1 }, { delayMs: 0 });
      const text = await metricsMatching(() => renderMetrics(deps.metrics), [
        /task_outcomes_total\{type="echo",outcome="succeeded"\} 2\n/,
        /task_outcomes_total\{type="echo",outcome="dead_lettered"\} 1\n/,
        /task_outcomes_total\{type="loose",outcome="retried"\} 1\n/,
        /task_outcomes_total\{type="loose",outcome="dead_lettered"\} 1\n/,
      ]);
      assert.match(text, /tasks_claimed_total\{type="echo"\} 3\n/);
      assert.match(text, /tasks_claimed_total\{type="loose"\} 2\n/);
      assert.match(text, /task_run_duration_seconds_count\{type="echo"\} 3\n/);
      assert.match(text, /task_run_duration_seconds_count\{type="loose"\} 2\n/);
      // Queue wait is recorded on first attempts only (a retry's wait is its backoff).
      assert.match(text, /task_queue_wait_seconds_count\{type="echo"\} 3\n/);
      assert.match(text, /task_queue_wait_seconds_count\{type="loose"\} 1\n/);
    } finally {
      await runner.stop();
    }
  },
});
