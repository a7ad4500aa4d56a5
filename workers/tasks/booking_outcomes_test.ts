import assert from "node:assert/strict";
import { createMetrics, renderMetrics } from "../../shared/metrics/metrics.ts";
import { DeferredTaskError, PermanentTaskError } from "../../shared/queue/errors.ts";
import type { TaskContext } from "../runner.ts";
import { countBookingOutcomes } from "./booking_outcomes.ts";

Deno.test("every book_appointment outcome is counted under its status", async () => {
  const metrics = createMetrics();
  // Only deps.metrics is read by the wrapper; the wrapped handler gets the ctx untouched.
  const ctx = { deps: { metrics } } as unknown as TaskContext;
  const outcomes: (() => unknown)[] = [
    () => ({ status: "booked" }),
    () => ({ status: "booked" }),
    () => ({ status: "duplicate_prevented" }),
    () => {
      throw new PermanentTaskError("lead not found");
    },
    () => {
      throw new DeferredTaskError("breaker open", 1000);
    },
    () => {
      throw new Error("connection reset");
    },
  ];
  for (const outcome of outcomes) {
    const handler = countBookingOutcomes((_payload, seen) => {
      assert.equal(seen, ctx);
      return outcome();
    });
    await Promise.resolve(handler({}, ctx)).catch(() => {});
  }
  const text = await renderMetrics(metrics);
  for (
    const [status, n] of [
      ["success", 2],
      ["duplicate_prevented", 1],
      ["rejected", 1],
      ["deferred", 1],
      ["failed", 1],
    ] as const
  ) {
    assert.match(text, new RegExp(`appointment_bookings_total\\{status="${status}"\\} ${n}\\n`));
  }
});

Deno.test("a failed booking is rethrown unchanged for the runner to retry", async () => {
  const ctx = { deps: { metrics: createMetrics() } } as unknown as TaskContext;
  const boom = new Error("boom");
  const handler = countBookingOutcomes(() => Promise.reject(boom));
  await assert.rejects(async () => await handler({}, ctx), (err) => err === boom);
});
