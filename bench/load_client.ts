/**
 * HTTP load generator for the gateway bench, run as its own process so its
 * CPU is not the server's: `deno run -A bench/load_client.ts --url
 * http://127.0.0.1:8787/health [options]` (-A because Deno reads
 * `/proc/<pid>/stat`, for the CPU figures, only with all permissions; without
 * it they are null).
 *
 * Two engines (`--engine`): `raw` (default), prebuilt HTTP/1.1 requests
 * written to keep-alive TCP connections (bench/lib/raw_http.ts), a few µs of
 * this process's CPU per request; `fetch`, what this client used before
 * (90–113 µs per request, too much to hold a 1,000 req/s schedule on the
 * bench's 2 shared cores, docs/benchmarks.md). Two modes, both with at most
 * `--connections` keep-alive connections:
 *
 * - closed loop (default): `--connections` callers each send requests back to
 *   back for `--duration` seconds; latency is send → response body read;
 * - paced (`--rate R`): an open-loop schedule of R requests per second,
 *   request i due at start + i/R, at most `--connections` in flight (later
 *   ones wait for a slot). Latency is measured from the DUE time, not the
 *   actual send, so a stall (server or client) shows up in the percentiles
 *   instead of silently delaying the schedule (no coordinated omission).
 *
 * Both modes first run `--warmup` seconds the same way, unmeasured (JIT,
 * connections). `--unique-header NAME` sets header NAME to a value unique per
 * request (e.g. Idempotency-Key). Prints ONE JSON object on stdout (see
 * {@linkcode LoadSummary}); progress and usage errors go to stderr.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { cpuMicros, processCpuMicros } from "./lib/cpu.ts";
import { percentile, round3 } from "./lib/report.ts";
import { buildRequest, RawPool } from "./lib/raw_http.ts";

/** What one run measured. */
export interface LoadSummary {
  mode: "closed" | "paced";
  /** How requests were sent: `raw` (bench/lib/raw_http.ts) or `fetch`. */
  engine: Engine;
  url: string;
  method: string;
  connections: number;
  duration_s: number;
  /** Paced mode: the requested rate; null in closed loop. */
  rate: number | null;
  /** Requests completed (any status) or failed at the network level. */
  requests: number;
  /** 2xx responses. */
  ok: number;
  /** Non-2xx responses by status; network failures under "network". */
  errors: Record<string, number>;
  /** Completed requests per second of wall time, from the first send to the last answer. */
  req_per_s: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Paced mode: how late requests were actually sent (client lag or a full window). */
  send_lag_p99_ms?: number;
  send_lag_max_ms?: number;
  /** Highest number of requests in flight at once. */
  max_in_flight: number;
  /** CPU time of this client process per request (user + system). */
  client_cpu_us_per_req: number;
  /** CPU per request of each `--cpu-pid name=PID` process over the measured phase. */
  cpu_us_per_req?: Record<string, number>;
}

/** How requests are sent. */
export type Engine = "raw" | "fetch";

/** Parsed command line. */
export interface LoadOptions {
  /** @default "raw" */
  engine?: Engine;
  url: string;
  method: string;
  headers: [string, string][];
  body: string | null;
  uniqueHeader: string | null;
  connections: number;
  durationS: number;
  warmupS: number;
  rate: number | null;
  /** Extra time after the run for answers still in flight before they are aborted. */
  graceS: number;
  /** Other processes whose CPU to measure over the measured phase, by name. */
  cpuPids: Record<string, number>;
}

const USAGE = "usage: load_client.ts --url URL [--method GET] [--header 'Name: value']… " +
  "[--body TEXT] [--unique-header NAME] [--connections 64] [--duration 10] [--warmup 1] " +
  "[--rate REQ_PER_S] [--grace 5] [--cpu-pid NAME=PID]… [--engine raw|fetch]";

function positive(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!(Number.isFinite(n) && n > 0)) throw new Error(`--${name} must be a positive number`);
  return n;
}

/** Parses the command line; throws with a one-line message on bad input. */
export function parseLoadArgs(args: string[]): LoadOptions {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      url: { type: "string" },
      method: { type: "string", default: "GET" },
      header: { type: "string", multiple: true, default: [] },
      body: { type: "string" },
      "unique-header": { type: "string" },
      connections: { type: "string" },
      duration: { type: "string" },
      warmup: { type: "string" },
      rate: { type: "string" },
      grace: { type: "string" },
      "cpu-pid": { type: "string", multiple: true, default: [] },
      engine: { type: "string", default: "raw" },
    },
  });
  if (!values.url || !/^https?:\/\//.test(values.url)) throw new Error(`--url is required`);
  const headers = (values.header ?? []).map((h): [string, string] => {
    const i = h.indexOf(":");
    if (i <= 0) throw new Error(`--header must look like "Name: value", got ${JSON.stringify(h)}`);
    return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
  });
  const connections = positive("connections", values.connections, 64);
  if (!Number.isInteger(connections)) throw new Error("--connections must be an integer");
  const cpuPids: Record<string, number> = {};
  for (const entry of values["cpu-pid"] ?? []) {
    const m = /^([\w.-]+)=(\d+)$/.exec(entry);
    if (!m) throw new Error(`--cpu-pid must look like NAME=PID, got ${JSON.stringify(entry)}`);
    cpuPids[m[1]!] = Number(m[2]);
  }
  const warmupS = values.warmup === "0" ? 0 : positive("warmup", values.warmup, 1);
  const engine = values.engine;
  if (engine !== "raw" && engine !== "fetch") throw new Error("--engine must be raw or fetch");
  return {
    engine,
    url: values.url,
    method: values.method!.toUpperCase(),
    headers,
    body: values.body ?? null,
    uniqueHeader: values["unique-header"] ?? null,
    connections,
    durationS: positive("duration", values.duration, 10),
    warmupS,
    rate: values.rate === undefined ? null : positive("rate", values.rate, 0),
    graceS: positive("grace", values.grace, 5),
    cpuPids,
  };
}

function cpuOf(pids: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(pids).map(([name, pid]) => [name, processCpuMicros(pid)]),
  );
}

/** One request's outcome: the status, or "network" when fetch threw. */
type Outcome = number | "network";

/** Sends request number `i` and reads its body. */
type Sender = (i: number) => Promise<Outcome>;

/** A sender with its connections: opened ahead (`warm`) and closed at the end. */
interface Senders extends Disposable {
  send: Sender;
  warm(): Promise<void>;
}

function fetchSender(o: LoadOptions, runId: string, signal: AbortSignal): Senders {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: o.connections });
  const base = new Headers(o.headers);
  const send: Sender = async (i) => {
    let headers = base;
    if (o.uniqueHeader !== null) {
      headers = new Headers(base);
      headers.set(o.uniqueHeader, `bench-${runId}-${i}`);
    }
    try {
      const res = await fetch(o.url, { method: o.method, headers, body: o.body, client, signal });
      await res.arrayBuffer();
      return res.status;
    } catch {
      return "network";
    }
  };
  return { send, warm: () => Promise.resolve(), [Symbol.dispose]: () => client.close() };
}

function rawSender(o: LoadOptions, runId: string, signal: AbortSignal): Senders {
  const pool = new RawPool(new URL(o.url));
  const bytes = buildRequest({ ...o, url: new URL(o.url) });
  // Past the guard time, pending answers end as network errors.
  signal.addEventListener("abort", () => pool.close(), { once: true });
  const send: Sender = async (i) => {
    try {
      return await pool.send(bytes(`bench-${runId}-${i}`));
    } catch {
      return "network";
    }
  };
  return { send, warm: () => pool.warm(o.connections), [Symbol.dispose]: () => pool.close() };
}

/** Samples and counters of one phase. */
class Tally {
  readonly latencies: number[] = [];
  readonly lags: number[] = [];
  readonly errors: Record<string, number> = {};
  ok = 0;
  inFlight = 0;
  maxInFlight = 0;

  started(): void {
    if (++this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
  }

  finished(outcome: Outcome, latencyMs: number): void {
    this.inFlight--;
    this.latencies.push(latencyMs);
    if (typeof outcome === "number" && outcome >= 200 && outcome < 300) this.ok++;
    else this.errors[String(outcome)] = (this.errors[String(outcome)] ?? 0) + 1;
  }
}

/** `connections` callers sending back to back until `durationS` has passed. */
async function closedLoop(
  send: Sender,
  connections: number,
  durationS: number,
  firstIndex: number,
): Promise<{ tally: Tally; elapsedMs: number }> {
  const tally = new Tally();
  let next = firstIndex;
  const t0 = performance.now();
  const deadline = t0 + durationS * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < deadline) {
        const start = performance.now();
        tally.started();
        const outcome = await send(next++);
        tally.finished(outcome, performance.now() - start);
      }
    }),
  );
  return { tally, elapsedMs: performance.now() - t0 };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

/** Open-loop schedule of `rate` req/s, at most `connections` in flight; latency from due time. */
async function paced(
  send: Sender,
  rate: number,
  connections: number,
  durationS: number,
  firstIndex: number,
): Promise<{ tally: Tally; elapsedMs: number }> {
  const tally = new Tally();
  const total = Math.max(1, Math.round(rate * durationS));
  const intervalMs = 1000 / rate;
  const waiting: number[] = []; // due offsets of requests waiting for a slot
  const running = new Set<Promise<void>>();
  const t0 = performance.now();

  const fire = (k: number) => {
    const due = t0 + k * intervalMs;
    tally.lags.push(performance.now() - due);
    tally.started();
    const p = send(firstIndex + k).then((outcome) => {
      tally.finished(outcome, performance.now() - due);
      running.delete(p);
      const queued = waiting.shift();
      if (queued !== undefined) fire(queued);
    });
    running.add(p);
  };

  let k = 0;
  while (k < total) {
    const now = performance.now();
    while (k < total && t0 + k * intervalMs <= now) {
      if (tally.inFlight < connections) fire(k);
      else waiting.push(k);
      k++;
    }
    if (k < total) await sleep(t0 + k * intervalMs - performance.now());
  }
  while (running.size > 0 || waiting.length > 0) await Promise.all(running);
  return { tally, elapsedMs: performance.now() - t0 };
}

/** Runs the warm-up and the measured phase; returns the summary. */
export async function runLoad(o: LoadOptions): Promise<LoadSummary> {
  const engine = o.engine ?? "raw";
  const abort = new AbortController();
  // Bounded in time whatever the server does: answers later than this are aborted.
  const totalS = o.warmupS + o.durationS + o.graceS;
  const guard = setTimeout(() => abort.abort(), totalS * 1000);
  const runId = crypto.randomUUID().slice(0, 8);
  using senders = engine === "raw"
    ? rawSender(o, runId, abort.signal)
    : fetchSender(o, runId, abort.signal);
  const { send } = senders;
  try {
    // Connections opened ahead; one that fails is opened again by its first request.
    await senders.warm().catch(() => {});
    const phase = (s: number, first: number) =>
      o.rate === null
        ? closedLoop(send, o.connections, s, first)
        : paced(send, o.rate, o.connections, s, first);
    if (o.warmupS > 0) await phase(o.warmupS, 1_000_000_000);
    const others0 = cpuOf(o.cpuPids);
    const cpu0 = cpuMicros();
    const { tally, elapsedMs } = await phase(o.durationS, 0);
    const cpuUs = cpuMicros() - cpu0;
    const others1 = cpuOf(o.cpuPids);
    const n = tally.latencies.length;
    const summary: LoadSummary = {
      mode: o.rate === null ? "closed" : "paced",
      engine,
      url: o.url,
      method: o.method,
      connections: o.connections,
      duration_s: o.durationS,
      rate: o.rate,
      requests: n,
      ok: tally.ok,
      errors: tally.errors,
      req_per_s: Math.round(n / (elapsedMs / 1000)),
      p50_ms: round3(percentile(tally.latencies, 50)),
      p90_ms: round3(percentile(tally.latencies, 90)),
      p99_ms: round3(percentile(tally.latencies, 99)),
      max_ms: round3(percentile(tally.latencies, 100)),
      max_in_flight: tally.maxInFlight,
      client_cpu_us_per_req: round3(cpuUs / Math.max(1, n)),
    };
    if (Object.keys(o.cpuPids).length > 0) {
      summary.cpu_us_per_req = Object.fromEntries(
        Object.keys(o.cpuPids).map((name) => [
          name,
          round3((others1[name]! - others0[name]!) / Math.max(1, n)),
        ]),
      );
    }
    if (o.rate !== null) {
      summary.send_lag_p99_ms = round3(percentile(tally.lags, 99));
      summary.send_lag_max_ms = round3(percentile(tally.lags, 100));
    }
    return summary;
  } finally {
    clearTimeout(guard);
  }
}

if (import.meta.main) {
  let options: LoadOptions;
  try {
    options = parseLoadArgs(Deno.args);
  } catch (err) {
    console.error(`load_client: ${(err as Error).message}; ${USAGE}`);
    Deno.exit(2);
  }
  console.log(JSON.stringify(await runLoad(options)));
}
