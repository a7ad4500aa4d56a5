/**
 * Child processes of the benchmarks. Load generators and workers run in
 * processes of their own, so that their CPU is not charged to the process
 * under test and can be measured separately (lib/cpu.ts). Two shapes:
 *
 * - a helper module run to completion that prints one JSON summary
 *   ({@linkcode runJsonChild}: the gateway and WebSocket load clients);
 * - the benchmark module itself started again in another mode
 *   ({@linkcode spawnMode}, dispatched by {@linkcode runModes}: the analytics
 *   load process, the outreach workers), talking over stdin/stdout lines.
 *
 * @module
 */

/** Variables a child keeps when it starts from an empty environment. */
const KEPT_VARIABLES = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"];

/**
 * Runs `deno <args>` to completion and parses its stdout as one JSON value;
 * its stderr passes through. Throws, with `what` and the output, when it fails.
 */
export async function runJsonChild<T>(args: string[], what: string): Promise<T> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) throw new Error(`${what} exited with ${out.code}: ${text}`);
  return JSON.parse(text) as T;
}

/** Options of {@linkcode spawnMode}. */
export interface SpawnModeOptions {
  /** Extra environment (e.g. the mode's spec as JSON). */
  env?: Record<string, string>;
  /**
   * Start from an empty environment (keeping PATH, HOME and Deno's cache
   * settings), so the child reads only what `env` gives it.
   * @default false
   */
  clearEnv?: boolean;
  /** @default "null" */
  stdin?: "piped" | "null";
  /** Flags for `deno run` before the module (e.g. `--cpu-prof`). @default none */
  denoFlags?: string[];
}

/**
 * Starts `module` (a benchmark's `import.meta.url`) again as
 * `deno run -A [denoFlags] <module> --<mode>`, stdout piped for its reply lines, stderr
 * passed through.
 */
export function spawnMode(
  module: string,
  mode: string,
  options: SpawnModeOptions = {},
): Deno.ChildProcess {
  const base: Record<string, string> = { NO_COLOR: "1" };
  if (options.clearEnv) {
    for (const name of KEPT_VARIABLES) {
      const value = Deno.env.get(name);
      if (value !== undefined) base[name] = value;
    }
  }
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...(options.denoFlags ?? []), new URL(module).pathname, `--${mode}`],
    env: { ...base, ...options.env },
    clearEnv: options.clearEnv ?? false,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/**
 * A benchmark module's entry point: runs the mode named by a `--<mode>` flag
 * on the command line (see {@linkcode spawnMode}), or `main` without one.
 */
export function runModes(
  main: () => Promise<void>,
  modes: Record<string, () => Promise<void>>,
): Promise<void> {
  const mode = Object.keys(modes).find((m) => Deno.args.includes(`--${m}`));
  return mode === undefined ? main() : modes[mode]!();
}
