/**
 * Finds what a stack may have left behind: processes that mention a directory.
 *
 * @module
 */

/** "pid: cmdline" of processes (other than us) whose command line mentions `dir`. */
export function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name) || entry.name === String(Deno.pid)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).replaceAll("\0", " ");
      if (cmdline.includes(dir)) found.push(`${entry.name}: ${cmdline.trim()}`);
    } catch {
      // the process exited while we looked
    }
  }
  return found;
}

/** True while a process with `pid` exists (and is not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Polls until none of `pids` is alive or `timeoutMs` passes; returns the survivors. */
export async function waitForExit(pids: number[], timeoutMs = 5000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(isAlive);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    alive = alive.filter(isAlive);
  }
  return alive;
}
