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
