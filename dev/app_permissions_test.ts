import assert from "node:assert/strict";
import { APP_PERMISSIONS, denoRunArgs } from "./app_permissions.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** deno.json's task commands, by task name. */
function taskCommands(): Record<string, string> {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const out: Record<string, string> = {};
  for (const [name, task] of Object.entries(config.tasks as Record<string, unknown>)) {
    out[name] = typeof task === "string" ? task : (task as { command: string }).command;
  }
  return out;
}

Deno.test("the entry points' deno.json tasks grant exactly APP_PERMISSIONS (plus the worker's write access)", () => {
  const tasks = taskCommands();
  const expected: Record<string, string> = {
    edge: "edge/main.ts",
    worker: "workers/main.ts",
    migrate: "workers/migrate.ts",
    seed: "dev/seed.ts",
  };
  for (const [name, entry] of Object.entries(expected)) {
    const words = tasks[name]?.split(/\s+/) ?? [];
    assert.deepEqual(words.slice(0, 2), ["deno", "run"], `task ${name}`);
    const flags = words.slice(2, words.indexOf(entry));
    assert.ok(words.includes(entry), `task ${name} runs ${entry}`);
    // The worker's file email provider writes its outbox; nothing else writes.
    const extra = name === "worker" ? ["--allow-write"] : [];
    assert.deepEqual(flags, [...APP_PERMISSIONS, ...extra], `task ${name}'s permissions`);
  }
});

Deno.test("denoRunArgs() puts the permissions and extra flags before the entry and its arguments after", () => {
  assert.deepEqual(denoRunArgs("edge/main.ts"), ["run", ...APP_PERMISSIONS, "edge/main.ts"]);
  assert.deepEqual(
    denoRunArgs("workers/main.ts", ["--allow-write=/tmp/x"], ["--once"]),
    ["run", ...APP_PERMISSIONS, "--allow-write=/tmp/x", "workers/main.ts", "--once"],
  );
});
