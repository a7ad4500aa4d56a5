import assert from "node:assert/strict";
import { createMetrics, renderMetrics } from "../../shared/metrics/metrics.ts";
import { DeferredTaskError, PermanentTaskError } from "../../shared/queue/errors.ts";
import type { TaskContext } from "../runner.ts";
import { countEmailOutcomes } from "./email_outcomes.ts";

Deno.test("every send_email outcome is counted per provider", async () => {
  const metrics = createMetrics();
  // Only deps.metrics is read by the wrapper.
  const ctx = { deps: { metrics } } as unknown as TaskContext;
  const outcomes: (() => unknown)[] = [
    () => ({ status: "sent" }),
    () => ({ status: "already_sent", skipped: true }),
    () => ({ status: "suppressed" }),
    () => ({ status: "lead_not_interested", skipped: true }),
    () => {
      throw new PermanentTaskError("invalid address");
    },
    () => {
      throw new DeferredTaskError("breaker open", 1000);
    },
    () => {
      throw new Error("SMTP 451");
    },
  ];
  for (const outcome of outcomes) {
    await Promise.resolve(countEmailOutcomes(outcome, "smtp")({}, ctx)).catch(() => {});
  }
  const text = await renderMetrics(metrics);
  for (
    const outcome of [
      "sent",
      "already_sent",
      "suppressed",
      "lead_not_interested",
      "rejected",
      "deferred",
      "failed",
    ]
  ) {
    assert.match(text, new RegExp(`emails_total\\{provider="smtp",outcome="${outcome}"\\} 1\\n`));
  }
});
