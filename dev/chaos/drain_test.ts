import assert from "node:assert/strict";
import type { TaskInfo } from "../../shared/queue/queue.ts";
import { Drain, unappliedWrite } from "./drain.ts";

const bounds = { baseMs: 90, extendMs: 120, stallMs: 30 };

Deno.test("Drain waits its base time, then only while work keeps landing, and never past base + extend", () => {
  const d = new Drain(bounds, 0);
  assert.equal(d.observe(10, 0), true);
  assert.equal(d.observe(10, 89), true, "within the base time, progress or not");
  assert.equal(d.observe(10, 91), false, "past it with nothing landed for 30 ms: judged");

  const p = new Drain(bounds, 0);
  p.observe(10, 0);
  assert.equal(p.observe(9, 80), true);
  assert.equal(p.observe(9, 105), true, "landed 25 ms ago: keeps waiting");
  assert.equal(p.observe(9, 111), false, "nothing for 31 ms");
  assert.equal(p.extendedMs(111), 21);

  const slow = new Drain(bounds, 0);
  let left = 1000;
  let t = 0;
  for (; slow.observe(left, t); t += 10) left--;
  assert.equal(t, 210, "steady progress is cut at base + extend");
  assert.equal(new Drain(bounds, 0).observe(0, 5), false, "nothing outstanding: done");
});

function task(status: TaskInfo["status"], lastError: string | null = null): TaskInfo {
  return {
    id: "t1",
    type: "apply_lead_write",
    status,
    payload: null,
    priority: "normal",
    attempts: 3,
    maxAttempts: 8,
    timeoutMs: 30_000,
    idempotencyKey: "k",
    createdAt: 0,
    updatedAt: 0,
    runAt: null,
    startedAt: null,
    finishedAt: null,
    failedAt: null,
    lastError,
    dlqReason: null,
    result: null,
    principal: null,
    traceparent: null,
    replays: 0,
  } as TaskInfo;
}

Deno.test("unappliedWrite() calls a queued write whose task is still alive late, anything else lost", () => {
  const retrying = unappliedWrite(
    { op: "L0-1", status: 202 },
    [task("retrying", 'BreakerOpenError: Circuit breaker "database" is open')],
  );
  assert.equal(retrying.verdict, "late");
  assert.match(
    retrying.description,
    /^L0-1 \(answered 202; task retrying, attempt 3\/8, last error/,
  );
  for (const status of ["pending", "running"] as const) {
    assert.equal(unappliedWrite({ op: "x", status: 202 }, [task(status)]).verdict, "late");
  }
  for (const status of ["dead", "succeeded"] as const) {
    assert.equal(unappliedWrite({ op: "x", status: 202 }, [task(status)]).verdict, "lost");
  }
  const noTask = unappliedWrite({ op: "x", status: 202 }, [null]);
  assert.deepEqual(noTask, { verdict: "lost", description: "x (answered 202; no task)" });
  assert.deepEqual(unappliedWrite({ op: "y", status: 201 }, [null]), {
    verdict: "lost",
    description: "y (answered 201)",
  });
});
