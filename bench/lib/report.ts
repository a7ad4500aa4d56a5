/**
 * The benchmark output convention: ONE JSON object per line per scenario on
 * stdout (human text goes to stderr), so runs can be compared by scripts.
 *
 * @module
 */

/** Fields every benchmark line may carry; `bench` and `scenario` are required. */
export interface BenchLine {
  bench: string;
  scenario: string;
  ops_per_s?: number;
  p50_ms?: number;
  p99_ms?: number;
  cpu_us_per_op?: number;
  lost?: number;
  duplicates?: number;
  n?: number;
  concurrency?: number;
  [extra: string]: unknown;
}

/**
 * RATE_LIMITS for the edges a benchmark starts: far above anything a bench
 * sends, so every request (and WebSocket upgrade) is decided but none limited.
 */
export const UNLIMITED_RATE_LIMITS = JSON.stringify({
  default: { limit: 100_000_000, window_s: 60 },
});

/** The machine's 1-minute load average, or null where /proc is not available. */
export function load1(): number | null {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return null;
  }
}

/** Percentile (0..100) of `samples` by nearest rank; NaN for no samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Rounds to 3 decimals so lines stay readable. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * Runs `scenario`, then prints its line with `load1_start`/`load1_end` added.
 */
export async function runScenario(
  fn: () => Promise<BenchLine>,
): Promise<BenchLine> {
  const load1_start = load1();
  const line = await fn();
  const out = { ...line, load1_start, load1_end: load1() };
  console.log(JSON.stringify(out));
  return out;
}

/**
 * The scenarios selected by `--only=a,b` among `args` (every scenario when the
 * flag is absent), so bench:peers can run just the ones it compares.
 */
export function selectedScenarios(args: string[] = Deno.args): (scenario: string) => boolean {
  const flag = args.find((a) => a.startsWith("--only="));
  if (flag === undefined) return () => true;
  const names = new Set(flag.slice("--only=".length).split(","));
  return (scenario) => names.has(scenario);
}
