/**
 * The Containerfile cannot be built here; this checks what it names: files
 * that exist, a frozen install, a non-root user, and that the commands the
 * manifests run are tasks of deno.json.
 */
import assert from "node:assert/strict";
import { loadDeployYaml, podTemplates } from "./load.ts";

const root = new URL("../", import.meta.url);
const containerfile = await Deno.readTextFile(new URL("Containerfile", root));
const denoJson = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = containerfile.replace(/\\\n/g, " ").split("\n")
  .map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(new URL(path, root)).then(() => true, () => false);
}

Deno.test("every COPY source and every checked entry point exists", async () => {
  const copies = instructions.filter((i) => i.startsWith("COPY "));
  assert(copies.length >= 2);
  for (const copy of copies) {
    const sources = copy.split(/\s+/).slice(1, -1).filter((s) => !s.startsWith("--"));
    for (const source of sources) {
      assert(await exists(source), `COPY ${source}: not in the repository`);
    }
  }
  const entryPoints = [...containerfile.matchAll(/\b((?:edge|workers|shared)\/[\w/]+\.ts)\b/g)];
  assert(entryPoints.length > 0);
  for (const [, path] of entryPoints) assert(await exists(path!), `${path}: missing`);
});

Deno.test("dependencies are installed frozen at build time; the process runs as non-root", () => {
  assert(instructions.some((i) => /^RUN deno install --frozen\b/.test(i)));
  assert(!instructions.some((i) => /--frozen=false|--no-lock/.test(i)));
  const user = instructions.filter((i) => i.startsWith("USER ")).at(-1);
  assert.match(user ?? "", /^USER [1-9]\d*(:[1-9]\d*)?$/, "the last USER is a non-root uid");
  // The uid the manifests run as is the image's user.
  const uid = Number(user!.split(/[ :]/)[1]);
  return loadDeployYaml().then((docs) => {
    for (const { owner, pod } of podTemplates(docs)) {
      assert.equal(pod.securityContext.runAsUser, uid, owner);
    }
  });
});

Deno.test("every command the image and the manifests run is a task of deno.json", async () => {
  const commands: string[][] = [];
  const cmd = instructions.find((i) => i.startsWith("CMD "));
  if (cmd) commands.push(JSON.parse(cmd.slice(4)));
  for (const { pod } of podTemplates(await loadDeployYaml())) {
    for (const c of pod.containers) commands.push(c.command);
  }
  assert(commands.length >= 4);
  for (const command of commands) {
    assert.deepEqual(command.slice(0, 2), ["deno", "task"], command.join(" "));
    assert(denoJson.tasks[command[2]!], `deno.json has no task ${command[2]}`);
  }
});
