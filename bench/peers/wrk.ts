/**
 * Runs wrk (Debian package `wrk`) and reads its summary: requests, req/s,
 * latency p50/p99 (`--latency`) and errors. wrk is an event-driven C load
 * generator: its CPU per request is a small fraction of a JavaScript
 * server's, which bench/peers.ts shows as `loadgen_cpu_us_per_op`.
 *
 * @module
 */

/** wrk's summary of one run. */
export interface WrkResult {
  requests: number;
  reqPerS: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors plus non-2xx/3xx responses. */
  errors: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** `1.23ms` → 1.23; NaN when it is not a wrk duration. */
export function wrkDurationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : NaN;
}

/** Parses wrk's `--latency` report. */
export function parseWrk(out: string): WrkResult {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const pct = (p: string) =>
    wrkDurationMs(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "");
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    requests: num(/(\d+) requests in/),
    reqPerS: num(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: pctRound(pct("50")),
    p99Ms: pctRound(pct("99")),
    errors: socketErrors + (Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0)),
  };
}

const pctRound = (x: number) => Math.round(x * 1000) / 1000;

/** Runs `wrk --latency` against `url`; throws when wrk fails or prints no summary. */
export async function runWrk(
  url: string,
  o: { connections: number; threads: number; seconds: number },
): Promise<WrkResult> {
  const out = await new Deno.Command("wrk", {
    args: [`-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, "--latency", url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const result = parseWrk(text);
  if (!out.success || !Number.isFinite(result.requests)) {
    throw new Error(`wrk failed (${out.code}): ${text}${new TextDecoder().decode(out.stderr)}`);
  }
  return result;
}
