import assert from "node:assert/strict";

const PRELOAD = new URL("./uncaught_location.ts", import.meta.url).pathname;

/** Runs `code` with the preload; its exit code and stderr. */
async function run(code: string): Promise<{ code: number; stderr: string }> {
  const dir = await Deno.makeTempDir({ prefix: "uncaught_" });
  try {
    await Deno.writeTextFile(`${dir}/main.ts`, code);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", `--preload=${PRELOAD}`, `${dir}/main.ts`],
      stdout: "null",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("uncaught_location: a timer that throws null is logged with where it was scheduled, and still ends the process", async () => {
  const out = await run(
    "function arm() { setTimeout(() => { throw null; }, 5); }\narm();\n",
  );
  assert.equal(out.code, 1);
  const line = out.stderr.split("\n").find((l) => l.includes("threw a non-Error"));
  assert.ok(line, out.stderr);
  const logged = JSON.parse(line);
  assert.equal(logged.thrown, "null");
  assert.match(logged.scheduled, /at arm \(.*main\.ts:1:/);
  assert.match(out.stderr, /Uncaught null/);
});

Deno.test("uncaught_location: an Error thrown by an event listener is logged with its file and line", async () => {
  const out = await run(
    'const t = new EventTarget();\nt.addEventListener("x", () => { throw new Error("boom"); });\nt.dispatchEvent(new Event("x"));\n',
  );
  const line = out.stderr.split("\n").find((l) => l.includes("uncaught exception"));
  assert.ok(line, out.stderr);
  const logged = JSON.parse(line);
  assert.match(logged.file, /main\.ts$/);
  assert.equal(logged.line, 2);
  assert.match(logged.error, /Error: boom/);
});

Deno.test("uncaught_location: removeEventListener still removes a wrapped listener", async () => {
  const out = await run(
    'const t = new EventTarget();\nconst f = () => { throw null; };\nt.addEventListener("x", f);\nt.removeEventListener("x", f);\nt.dispatchEvent(new Event("x"));\nconsole.error("survived");\n',
  );
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /survived/);
});

Deno.test("uncaught_location: process.nextTick and setImmediate callbacks that throw null are logged with where they were scheduled", async () => {
  for (const schedule of ["process.nextTick", "setImmediate"]) {
    const out = await run(
      `import process from "node:process";\nfunction arm() { ${schedule}(() => { throw null; }); }\narm();\n`,
    );
    assert.equal(out.code, 1, schedule);
    const line = out.stderr.split("\n").find((l) => l.includes("callback threw a non-Error"));
    assert.ok(line, `${schedule}: ${out.stderr}`);
    const logged = JSON.parse(line);
    assert.equal(logged.thrown, "null");
    assert.match(logged.scheduled, new RegExp(`^Error: ${schedule} scheduled here`));
    assert.match(logged.scheduled, /at arm \(.*main\.ts:2:/);
  }
});

Deno.test("uncaught_location: a Node stream's listener that throws null is logged with the emitter and event", async () => {
  const out = await run(
    'import { PassThrough } from "node:stream";\nconst s = new PassThrough();\ns.on("end", function onEnd() { throw null; });\ns.resume();\ns.end("x");\n',
  );
  assert.equal(out.code, 1);
  const line = out.stderr.split("\n").find((l) => l.includes("listener threw a non-Error"));
  assert.ok(line, out.stderr);
  const logged = JSON.parse(line);
  assert.deepEqual([logged.thrown, logged.emitter, logged.event], ["null", "PassThrough", "end"]);
  assert.deepEqual(logged.listeners, ["onEnd"]);
  assert.match(logged.emitted, /^Error: emitted here/);
});

Deno.test("uncaught_location: once() and removeListener() keep their meaning", async () => {
  const out = await run(
    'import { EventEmitter } from "node:events";\nconst e = new EventEmitter();\nlet n = 0;\nconst f = () => { n++; };\ne.once("x", f);\ne.emit("x");\ne.emit("x");\ne.on("y", f);\ne.removeListener("y", f);\ne.emit("y");\nconsole.error(`count ${n}`);\n',
  );
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /count 1/);
});
