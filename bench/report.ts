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

/** Process CPU time (user + system) in microseconds. */
export function cpuMicros(): number {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1_000_000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
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

// --- CPU accounting from /proc (Linux; NaN elsewhere) ----------------------

/** Microseconds per /proc CPU tick (USER_HZ is 100 on Linux). */
export const TICK_US = 1_000_000 / 100;

/** ppid and CPU ticks (own + reaped children) of every process. */
export function processTable(): Map<number, { ppid: number; ticks: number }> {
  const table = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      table.set(Number(entry.name), {
        ppid: Number(f[1]),
        ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
      });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

/** CPU µs of `root` and all its live descendants (with their reaped children). */
export function treeCpuMicros(
  table: Map<number, { ppid: number; ticks: number }>,
  root: number,
): number {
  let ticks = 0;
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    const p = table.get(pid);
    if (!p) continue;
    ticks += p.ticks;
    for (const [child, c] of table) if (c.ppid === pid) todo.push(child);
  }
  return ticks * TICK_US;
}

/** Jiffies of the whole machine (all cores): busy, iowait, steal and total. */
export interface MachineTicks {
  busy: number;
  iowait: number;
  steal: number;
  total: number;
}

export function machineTicks(): MachineTicks {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
    // user nice system idle iowait irq softirq steal
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - v[3]! - v[4]!, iowait: v[4]!, steal: v[7]!, total };
  } catch {
    return { busy: NaN, iowait: NaN, steal: NaN, total: NaN };
  }
}
