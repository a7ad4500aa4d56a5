/**
 * "No environment reads outside the configuration module": the application
 * (edge/, workers/, shared/) reads the environment only in shared/config/ and
 * gets everything else from the typed `Config` passed down. Tools in dev/,
 * bench/ and tests/ that start child processes may read it themselves.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
// `Deno.env`, `process.env`, or the node:process module that carries it.
const ENV_READ = /\bDeno\s*\.\s*env\b|\bprocess\s*\.\s*env\b|["']node:process["']/;

async function* sourceFiles(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* sourceFiles(url);
    else if (/\.(ts|tsx|js|mjs)$/.test(entry.name)) yield url;
  }
}

Deno.test("only shared/config/ reads the environment in edge/, workers/ and shared/", async () => {
  const configDir = new URL("shared/config/", ROOT).href;
  const offenders: string[] = [];
  let scanned = 0;
  for (const folder of ["edge/", "workers/", "shared/"]) {
    for await (const file of sourceFiles(new URL(folder, ROOT))) {
      scanned++;
      if (file.href.startsWith(configDir)) continue;
      if (ENV_READ.test(await Deno.readTextFile(file))) {
        offenders.push(file.href.slice(ROOT.href.length));
      }
    }
  }
  assert.ok(scanned > 100, `scanned only ${scanned} files: wrong root?`);
  assert.deepEqual(offenders, [], "read the value in shared/config/ and pass it down in Config");
});

Deno.test("the pattern catches the forms it is meant to", () => {
  for (
    const text of [
      'Deno.env.get("X")',
      "Deno.env.toObject()",
      "process.env.X",
      'import p from "node:process"',
    ]
  ) {
    assert.ok(ENV_READ.test(text), text);
  }
  assert.ok(!ENV_READ.test("const environment = config.env;"));
});
