import assert from "node:assert/strict";

const LIFECYCLE = new URL("./lifecycle.ts", import.meta.url).href;

/** A process whose shutdown never finishes, with `options`; resolves with its exit after SIGTERM. */
async function hungStop(options: string): Promise<{ code: number; ms: number; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { onShutdownSignal } from "${LIFECYCLE}";
       onShutdownSignal(() => new Promise(() => {}), ${options});
       console.log("ready");
       setInterval(() => {}, 1000);`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  const signalled = Date.now();
  child.kill("SIGTERM");
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
  ]);
  return { code: status.code, ms: Date.now() - signalled, stderr };
}

Deno.test("onShutdownSignal() with deadlineMs exits 1 when the shutdown hangs past it", async () => {
  const out = await hungStop("{ deadlineMs: 300 }");
  assert.equal(out.code, 1);
  assert.ok(out.ms >= 300 && out.ms < 5_000, `exited after ${out.ms} ms`);
  assert.match(out.stderr, /shutdown still running after 300 ms; exiting/);
});

Deno.test("onShutdownSignal() refuses a deadline that is not a positive number", async () => {
  const { onShutdownSignal } = await import("./lifecycle.ts");
  assert.throws(() => onShutdownSignal(() => Promise.resolve(), { deadlineMs: 0 }), RangeError);
  assert.throws(() => onShutdownSignal(() => Promise.resolve(), { deadlineMs: NaN }), RangeError);
});
