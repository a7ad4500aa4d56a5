/**
 * `deno task test`: starts one shared stack (migrated), runs every suite with
 * `deno test --parallel` pointed at it, tears the stack down, then checks that
 * no server process and no temp directory were left behind. Prints deno's own
 * output, then one plain `N passed, N failed` line; exits non-zero on any
 * failure.
 *
 * Every temp directory of the run (this stack's and those of tests that start
 * their own servers) is created under one run directory via TMPDIR, which is
 * what makes the leftover check exact.
 *
 * @module
 */
import { readEnvironment } from "../shared/config/mod.ts";
import { MissingBinaryError } from "./binaries.ts";
import { forEachLine } from "./lines.ts";
import { migrateStack } from "./migrate_stack.ts";
import { settingsToEnv, startStack } from "./stack.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const SUMMARY = /^(?:ok|FAILED) \| (\d+) passed.*?\| (\d+) failed/;

/** Runs `deno test` with `args`, mirroring its output; returns its counts. */
async function denoTest(
  args: string[],
  env: Record<string, string>,
): Promise<{ passed: number; failed: number; success: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", ...args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let passed = 0;
  let failed = 0;
  let sawSummary = false;
  const encoder = new TextEncoder();
  await forEachLine(child.stdout, (line) => {
    Deno.stdout.writeSync(encoder.encode(line + "\n"));
    const m = SUMMARY.exec(line);
    if (m) {
      passed = Number(m[1]);
      failed = Number(m[2]);
      sawSummary = true;
    }
  });
  const status = await child.status;
  // A crash before the summary (type error, aborted run) must count as a failure.
  if (!status.success && failed === 0) failed = 1;
  if (!sawSummary && status.success) failed = 1;
  return { passed, failed, success: status.success };
}

async function main(): Promise<number> {
  const runDir = await Deno.makeTempDir({ prefix: "pct-" });
  await Deno.chmod(runDir, 0o755);
  const baseEnv = { ...readEnvironment(), TMPDIR: runDir, NO_COLOR: "1" };
  // The stack's own temp dir must be inside runDir too.
  Deno.env.set("TMPDIR", runDir);
  let totals = { passed: 0, failed: 0 };
  try {
    let stack;
    try {
      stack = await startStack({ onProgress: (m) => console.error(`[test] ${m}`) });
    } catch (err) {
      if (err instanceof MissingBinaryError) {
        console.error(err.message);
        return 2;
      }
      throw err;
    }
    try {
      await migrateStack(stack.settings);
      const env = {
        ...baseEnv,
        APP_ENV: "test",
        ...settingsToEnv(stack.settings),
        PCOVE_SHARED_STACK: "1",
      };
      const suite = await denoTest(
        [
          "-A",
          "--parallel",
          "--permit-no-files",
          "edge/",
          "workers/",
          "shared/",
          "dev/",
          "tests/",
          "bench/",
          "deploy/",
        ],
        env,
      );
      totals = { passed: suite.passed, failed: suite.failed };
    } finally {
      await stack.stop();
    }
    const leftovers = await denoTest(["-A", "dev/leftover_check.ts"], {
      ...baseEnv,
      PCOVE_TEST_RUN_DIR: runDir,
    });
    totals.passed += leftovers.passed;
    totals.failed += leftovers.failed;
  } finally {
    Deno.env.delete("TMPDIR");
    await Deno.remove(runDir, { recursive: true }).catch(() => {});
  }
  console.log(`${totals.passed} passed, ${totals.failed} failed`);
  return totals.failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
