/**
 * CPU and memory accounting for the benchmarks, from Linux's /proc (NaN where
 * it cannot be read): this process, another process, a whole process tree
 * (a server with its workers), and the machine as a whole. One snapshot type
 * and one "per unit of work" split serve every benchmark that reports where
 * the CPU went (`cpu_us_per_*` fields).
 *
 * @module
 */
import { round3 } from "./report.ts";

/** Microseconds per /proc CPU tick (USER_HZ is 100 on Linux). */
export const TICK_US = 1_000_000 / 100;

/** user + system ticks of one `/proc/<pid>/stat` line, optionally with reaped children. */
function statTicks(stat: string, withChildren: boolean): number {
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const own = Number(f[11]) + Number(f[12]);
  return withChildren ? own + Number(f[13]) + Number(f[14]) : own;
}

/** CPU time (user + system) of process `pid` in µs; NaN when it cannot be read. */
export function processCpuMicros(pid: number | "self"): number {
  try {
    return statTicks(Deno.readTextFileSync(`/proc/${pid}/stat`), false) * TICK_US;
  } catch {
    return NaN;
  }
}

/** CPU time (user + system) of this process in µs. */
export function cpuMicros(): number {
  return processCpuMicros("self");
}

/** Resident memory of `pid` in bytes; NaN when it cannot be read. */
export function rssBytes(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
  } catch {
    return NaN;
  }
}

/** ppid and CPU ticks (own + reaped children) of every process. */
export function processTable(): Map<number, { ppid: number; ticks: number }> {
  const table = new Map<number, { ppid: number; ticks: number }>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      table.set(Number(entry.name), { ppid: Number(f[1]), ticks: statTicks(stat, true) });
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

/** The machine's CPU ticks so far (the first line of /proc/stat). */
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

/** CPU so far of this process (`bench`), of named process trees, and of the machine. */
export interface CpuSnapshot {
  /** µs by name: `bench` (this process) and one entry per named tree. */
  processes: Record<string, number>;
  machine: MachineTicks;
}

/**
 * Snapshot of this process and of each named process tree (several roots are
 * added up, e.g. every worker process; null = not running here → NaN).
 */
export function cpuSnapshot(trees: Record<string, number | number[] | null>): CpuSnapshot {
  const table = processTable();
  const processes: Record<string, number> = { bench: cpuMicros() };
  for (const [name, roots] of Object.entries(trees)) {
    processes[name] = roots === null
      ? NaN
      : [roots].flat().reduce((sum, pid) => sum + treeCpuMicros(table, pid), 0);
  }
  return { processes, machine: machineTicks() };
}

/** Where the CPU went between two snapshots, per unit of work. */
export interface CpuSplit {
  /** µs per unit by process name (NaN for processes not running here). */
  perUnit: Record<string, number>;
  /** Sum of the finite entries of `perUnit`. */
  totalPerUnit: number;
  /** Busy machine time per unit not spent by the processes above (other work on the cores). */
  otherPerUnit: number;
  /** Shares of the machine's time, percent. */
  busyPct: number;
  iowaitPct: number;
  stealPct: number;
}

/** CPU µs per unit of work (`units`) between snapshots `a` and `b`, and the machine's shares. */
export function cpuSplit(a: CpuSnapshot, b: CpuSnapshot, units: number): CpuSplit {
  const perUnit: Record<string, number> = {};
  for (const name of Object.keys(a.processes)) {
    perUnit[name] = round3((b.processes[name]! - a.processes[name]!) / units);
  }
  const totalPerUnit = round3(
    Object.values(perUnit).filter(Number.isFinite).reduce((x, y) => x + y, 0),
  );
  const total = b.machine.total - a.machine.total;
  const pct = (k: keyof MachineTicks) =>
    Math.round(((b.machine[k] - a.machine[k]) / total) * 1000) / 10;
  const busyUs = (b.machine.busy - a.machine.busy) * TICK_US;
  return {
    perUnit,
    totalPerUnit,
    otherPerUnit: round3(Math.max(0, busyUs / units - totalPerUnit)),
    busyPct: pct("busy"),
    iowaitPct: pct("iowait"),
    stealPct: pct("steal"),
  };
}
