import assert from "node:assert/strict";
import { NO_LAG } from "../loop_lag.ts";
import { SlowCallWatch, type WatchedCall } from "./slow_call_watch.ts";
import { waitUntil } from "../../testing/wait.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

// Sanitizers on: each test halts its watch, as the registry's stop() does.

Deno.test("a call that ends before ms is not slow; one still running at ms is reported then, once", async () => {
  const slow: number[] = [];
  const watch = new SlowCallWatch(300, now, NO_LAG, (c) => slow.push(c.epoch));
  const quick = watch.start(1);
  await sleep(5);
  assert.equal(watch.end(quick), false);
  assert.equal(watch.live, 0);

  const hanging = watch.start(2);
  await waitUntil(() => slow.length > 0, { what: "the hanging call reported slow" });
  assert.deepEqual(slow, [2], "reported while it was still running");
  assert.ok(watch.elapsed(hanging) >= 300);
  assert.equal(watch.end(hanging), true, "its end says it was already counted");
  assert.equal(watch.end(hanging), true);
  assert.deepEqual(slow, [2]);
  watch.halt();
});

Deno.test("one timer serves many calls: each is reported at its own ms, in the order they started", async () => {
  const slow: number[] = [];
  const at: number[] = [];
  const watch = new SlowCallWatch(200, now, NO_LAG, (c) => {
    slow.push(c.epoch);
    at.push(watch.elapsed(c));
  });
  const calls: WatchedCall[] = [];
  for (let i = 0; i < 3; i++) {
    calls.push(watch.start(i));
    await sleep(20);
  }
  // The middle one ends in time; the others run on.
  assert.equal(watch.end(calls[1]!), false);
  await waitUntil(() => slow.length === 2, { what: "the two running calls reported" });
  assert.deepEqual(slow, [0, 2]);
  for (const ms of at) assert.ok(ms >= 200, `reported after ${ms} ms net`);
  assert.equal(watch.live, 0);
  watch.halt();
});

Deno.test("time the process itself was stalled is not counted: the call is reported once it has run ms net", async () => {
  // Three quarters of every wall-clock interval are this process's own stall.
  const t0 = now();
  const stall = { stalledMs: () => (now() - t0) * 0.75 };
  const wallAt: number[] = [];
  const watch = new SlowCallWatch(40, now, stall, () => wallAt.push(now() - started));
  const started = now();
  const call = watch.start(7);
  await waitUntil(() => wallAt.length > 0, { what: "the call reported slow" });
  assert.ok(wallAt[0]! >= 155, `40 ms net is 160 ms wall: reported after ${wallAt[0]} ms wall`);
  assert.equal(watch.end(call), true);
  watch.halt();
});
