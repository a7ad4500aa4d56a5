import assert from "node:assert/strict";
import { restartDelay, supervise } from "./supervisor.ts";
import { waitUntil } from "../testing/wait.ts";

/** A child that runs until killed (or exits at once with `code`). */
function child(code: number | null) {
  const script = code === null ? "await new Promise(() => {})" : `Deno.exit(${code})`;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test("restart delays double per quick exit up to the cap", () => {
  assert.deepEqual([0, 1, 2, 3, 10].map((n) => restartDelay(n, 500, 4_000)), [
    500,
    1_000,
    2_000,
    4_000,
    4_000,
  ]);
});

Deno.test("a supervised child killed with SIGKILL is restarted and logged; stop() ends it", async () => {
  const logs: string[] = [];
  const s = supervise({
    name: "worker",
    spawn: () => child(null),
    log: (m) => logs.push(m),
    baseMs: 10,
  });
  try {
    await waitUntil(() => s.pid !== null, { what: "first incarnation", timeoutMs: 20_000 });
    const first = s.pid!;
    Deno.kill(first, "SIGKILL");
    await waitUntil(() => s.pid !== null && s.pid !== first, {
      what: "a new incarnation",
      timeoutMs: 20_000,
    });
    assert.equal(s.restarts, 1);
    assert.match(logs[0]!, /^worker was killed by SIGKILL; restarting in 10 ms \(restart #1\)$/);
  } finally {
    await s.stop();
  }
  assert.equal(s.pid, null);
});

Deno.test("a child that keeps exiting backs off", async () => {
  const logs: string[] = [];
  const s = supervise({
    name: "edge",
    spawn: () => child(3),
    log: (m) => logs.push(m),
    baseMs: 5,
    maxMs: 20,
  });
  try {
    await waitUntil(() => logs.length >= 4, { what: "four exits", timeoutMs: 30_000 });
  } finally {
    await s.stop();
  }
  assert.match(logs[0]!, /^edge exited with code 3; restarting in 5 ms/);
  assert.match(logs[1]!, /restarting in 10 ms/);
  assert.match(logs[2]!, /restarting in 20 ms/);
  assert.match(logs[3]!, /restarting in 20 ms/);
});

Deno.test("stop() kills a child that ignores SIGTERM", async () => {
  let ready: Promise<unknown> = Promise.resolve();
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const stubborn = () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        'Deno.addSignalListener("SIGTERM", () => {}); console.log("ready"); await new Promise(() => {})',
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    // Asked to stop only once its SIGTERM listener is installed.
    reader = child.stdout.getReader();
    ready = reader.read();
    return child;
  };
  const s = supervise({ name: "edge", spawn: stubborn, log: () => {}, killAfterMs: 200 });
  await waitUntil(() => s.pid !== null, { what: "started", timeoutMs: 20_000 });
  const pid = s.pid!;
  await ready;
  await s.stop();
  await (reader as ReadableStreamDefaultReader<Uint8Array> | null)?.cancel();
  assert.equal(s.pid, null);
  assert.throws(() => Deno.kill(pid, "SIGCONT"), "the process is gone");
});
