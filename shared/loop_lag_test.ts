import assert from "node:assert/strict";
import { createLoopLagMeter, type LoopLag, netTimer } from "./loop_lag.ts";

/** Blocks this process's event loop (what a CPU-starved machine or a long GC pause does to it). */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* the event loop is stalled */ }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("the loop-lag meter counts a stall of the event loop, in progress and afterwards, and nothing while idle", async () => {
  const meter = createLoopLagMeter({ everyMs: 20, graceMs: 5 });
  meter.start();
  try {
    await sleep(200);
    const idle = meter.stalledMs();
    assert.ok(idle < 60, `an idle loop is barely late: ${idle} ms`);
    const before = meter.stalledMs();
    block(300);
    const during = meter.stalledMs() - before;
    assert.ok(during >= 250, `the stall in progress is counted: ${during} ms`);
    await sleep(50);
    const after = meter.stalledMs() - before;
    assert.ok(after >= during && after < 400, `kept, not counted twice: ${after} ms`);
  } finally {
    meter.stop();
  }
  const stopped = meter.stalledMs();
  block(100);
  assert.equal(meter.stalledMs(), stopped, "a stopped meter counts nothing");
});

Deno.test("netTimer() fires after its time net of the stall: a stall does not use up the wait", async () => {
  let stall = 0;
  const lag: LoopLag = { stalledMs: () => stall };
  const now = () => performance.now();
  const started = now();
  let firedAt = 0;
  const fired = new Promise<void>((resolve) => {
    netTimer(100, now, lag, () => {
      firedAt = now() - started;
      resolve();
    });
  });
  // 80 ms of the first 100 were the process's own stall: 80 ms more to wait.
  await sleep(50);
  stall += 80;
  await fired;
  assert.ok(firedAt >= 170, `fired after ${firedAt} ms, not at 100`);

  // Without a stall it fires on time; a cancelled one never fires.
  let plain = 0;
  const t0 = now();
  await new Promise<void>((resolve) =>
    netTimer(60, now, lag, () => {
      plain = now() - t0;
      resolve();
    })
  );
  assert.ok(plain >= 55 && plain < 160, `fired after ${plain} ms`);
  let cancelledFired = false;
  const cancel = netTimer(10, now, lag, () => cancelledFired = true);
  cancel();
  await sleep(40);
  assert.equal(cancelledFired, false);
});
