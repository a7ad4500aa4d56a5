import assert from "node:assert/strict";
import {
  devEnvFilePath,
  formatDevEnvFile,
  parseDevEnvFile,
  processAlive,
  removeDevEnvFile,
  withDevEnvFile,
  writeDevEnvFile,
} from "./dev_env_file.ts";

const VARS = {
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:40001",
  UPSTASH_REDIS_REST_TOKEN: "t0k'en",
  DATABASE_URL: "postgresql://app:pw@127.0.0.1:40002/pleasant_cove",
  NEON_WS_PROXY: "127.0.0.1:40003/v1",
};

Deno.test("formatDevEnvFile() text parses back to the same variables and writer", () => {
  const text = formatDevEnvFile(VARS, 4242, new Date("2026-12-07T14:00:00Z"));
  assert.match(text, /^# written by deno task dev, pid 4242, 2026-12-07T14:00:00.000Z/);
  // Shell-sourceable: single quotes, an embedded quote escaped the POSIX way.
  assert.match(text, /^UPSTASH_REDIS_REST_TOKEN='t0k'\\''en'$/m);
  assert.deepEqual(parseDevEnvFile(text), { pid: 4242, vars: VARS });
  assert.deepEqual(parseDevEnvFile("A=1\n# x\nB='two'\n"), {
    pid: null,
    vars: { A: "1", B: "two" },
  });
});

Deno.test("devEnvFilePath() is DEV_ENV_FILE, relative to the repository root", () => {
  const root = new URL("../../", import.meta.url).pathname;
  assert.equal(devEnvFilePath({}), `${root}.dev.env`);
  assert.equal(devEnvFilePath({ DEV_ENV_FILE: "x/y.env" }), `${root}x/y.env`);
  assert.equal(devEnvFilePath({ DEV_ENV_FILE: "/tmp/z.env" }), "/tmp/z.env");
});

Deno.test("withDevEnvFile(): used only without a target; the environment wins per variable", () => {
  const text = formatDevEnvFile(VARS, 7, new Date());
  const read = () => text;
  const alive = () => true;
  const used = withDevEnvFile({ LOG_LEVEL: "warn", NEON_WS_PROXY: "mine:1/v1" }, { read, alive });
  assert.equal(used.env.DATABASE_URL, VARS.DATABASE_URL);
  assert.equal(used.env.NEON_WS_PROXY, "mine:1/v1");
  assert.equal(used.env.LOG_LEVEL, "warn");
  assert.match(used.note!, /^Using the dev stack of deno task dev \(pid 7\) from \/.*\.dev\.env$/);
  // An explicit target is never mixed with the dev stack's settings.
  const targets: Record<string, string>[] = [
    { DATABASE_URL: "postgresql://x/y" },
    { UPSTASH_REDIS_REST_URL: "http://r" },
  ];
  for (const target of targets) {
    const skipped = withDevEnvFile(target, { read, alive });
    assert.deepEqual(skipped, { env: target, file: null, note: null });
  }
  // No file: nothing to say.
  const none = withDevEnvFile({}, {
    read: () => {
      throw new Deno.errors.NotFound("no");
    },
  });
  assert.deepEqual(none, { env: {}, file: null, note: null });
});

Deno.test("withDevEnvFile() ignores a file whose dev task is gone, and says so", () => {
  const text = formatDevEnvFile(VARS, 7, new Date());
  const stale = withDevEnvFile({}, { read: () => text, alive: (pid) => pid !== 7 });
  assert.deepEqual(stale.env, {});
  assert.equal(stale.file, null);
  assert.match(stale.note!, /^Ignoring .*: the deno task dev that wrote it is no longer running$/);
  // Without the header no writer can be checked: not trusted either.
  assert.equal(
    withDevEnvFile({}, { read: () => "DATABASE_URL=x\n", alive: () => true }).file,
    null,
  );
});

Deno.test("processAlive() tells a running process from a finished one", async () => {
  assert.equal(processAlive(Deno.pid), true);
  const child = new Deno.Command("true").spawn();
  const { pid } = child;
  await child.status;
  assert.equal(processAlive(pid), false);
});

Deno.test("writeDevEnvFile() writes mode 0600; removeDevEnvFile() removes only its own", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pcenv-" });
  try {
    const path = `${dir}/dev.env`;
    await writeDevEnvFile(path, VARS, { pid: 11 });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual(parseDevEnvFile(await Deno.readTextFile(path)).vars, VARS);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["dev.env"]);
    // Another dev task replaced it: not ours to remove.
    assert.equal(await removeDevEnvFile(path, 12), false);
    assert.equal(await removeDevEnvFile(path, 11), true);
    assert.deepEqual([...Deno.readDirSync(dir)], []);
    assert.equal(await removeDevEnvFile(path, 11), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
