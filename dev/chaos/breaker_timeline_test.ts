import assert from "node:assert/strict";
import type { BreakerTransition } from "../../shared/breakers/types.ts";
import { summariseBreakers, timeline } from "./breaker_timeline.ts";

function tr(
  at: number,
  from: BreakerTransition["from"],
  to: BreakerTransition["to"],
  source: BreakerTransition["source"] = "redis",
): BreakerTransition {
  return { name: "database", from, to, epoch: 1, at, reason: "r", source, by: null };
}

Deno.test("summariseBreakers() adds up the time out of CLOSED and dates the last close from the last fault's end", () => {
  const list = [
    tr(1_000, "closed", "open"),
    tr(3_000, "open", "half_open"),
    tr(4_000, "half_open", "closed"),
    tr(10_000, "closed", "open"),
    tr(12_000, "open", "half_open", "local"), // one instance's view: not counted
    tr(15_000, "open", "half_open"),
    tr(16_000, "half_open", "closed"),
  ];
  const [s] = summariseBreakers(list, 0, 13_000, 20_000);
  assert.deepEqual(s, {
    name: "database",
    opens: 2,
    not_closed_ms: 3_000 + 6_000,
    closed_after_last_fault_ms: 3_000,
    open_at_end: false,
  });
});

Deno.test("summariseBreakers() counts a breaker still open at the end until the end, with no recovery time", () => {
  const [s] = summariseBreakers([tr(5_000, "closed", "open")], 0, 4_000, 9_000);
  assert.ok(s);
  assert.equal(s.not_closed_ms, 4_000);
  assert.equal(s.closed_after_last_fault_ms, null);
  assert.equal(s.open_at_end, true);
});

Deno.test("timeline() lists transitions after t0 in order, in seconds, capped", () => {
  const list = [
    tr(2_500, "open", "half_open"),
    tr(1_000, "closed", "open"),
    tr(-5, "open", "closed"),
  ];
  const t = timeline(list, 0, 1);
  assert.deepEqual(t, [{
    t_s: 1,
    name: "database",
    from: "closed",
    to: "open",
    reason: "r",
    source: "redis",
  }]);
});
