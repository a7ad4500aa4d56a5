/**
 * What the edge's request metrics cost per request, measured in process and
 * side by side: the `metrics_overhead` scenario of `deno task bench:gateway`.
 *
 * The end-to-end `me_metrics` scenario compares two edges over HTTP, and on a
 * 2-core machine that shares its cores with the load client, the bridge and
 * redis-server, run-to-run noise (±50 µs of edge CPU per request) is ten
 * times the target it is meant to check (≤ 5 µs). Here the only thing that
 * differs between A and B is the metrics middleware (`httpMetrics`, the one
 * piece of per-request work METRICS_ENABLED adds; the other counters are
 * plain numbers mirrored at scrape time, see edge/edge_metrics.ts), mounted
 * as edge/app.ts mounts it (wrapping the request span): the same
 * Hono app with the app's own route shapes, called through `app.fetch` in
 * alternating blocks, CPU read with `process.cpuUsage()` (µs resolution).
 * The figure is the median over rounds of (B − A) per request, so drift and
 * a busy neighbour hit both sides of each pair alike.
 *
 * A scrape renders the registry (`renderMetrics`): its CPU is reported per
 * scrape and, amortised over a 15 s scrape interval at the `me` scenario's
 * measured rate, per request.
 *
 * @module
 */
import process from "node:process";
import { Hono } from "hono";
import { httpMetrics } from "../edge/middleware/http_metrics.ts";
import { requestSpan } from "../edge/middleware/tracing.ts";
import { createMetrics, renderMetrics } from "../shared/metrics/metrics.ts";
import { percentile, round3 } from "./lib/report.ts";

/** Requests per block, blocks per side. */
const BLOCK = 20_000;
const ROUNDS = 15;
const SCRAPES = 50;
/** A usual Prometheus scrape interval (deploy/prometheus: 15 s). */
const SCRAPE_INTERVAL_S = 15;

/** The figures of one run. */
export interface MetricsOverhead {
  /** Median over rounds of the CPU the middleware adds per request (µs). */
  metrics_cpu_us_per_op: number;
  /** Smallest and largest per-round difference (µs), to show the spread. */
  metrics_cpu_us_min: number;
  metrics_cpu_us_max: number;
  /** CPU per request of the app without the middleware (µs), for scale. */
  base_cpu_us_per_op: number;
  rounds: number;
  requests_per_round: number;
  /** Series in the registry when scraped, and the CPU of one scrape (ms). */
  series: number;
  scrape_cpu_ms: number;
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** The same app shape on both sides; only `metrics` differs. */
function app(metrics: ReturnType<typeof createMetrics> | null): Hono {
  const a = new Hono();
  // As edge/app.ts mounts them: the request span alone, or inside the metrics.
  a.use(metrics ? httpMetrics(metrics, requestSpan()) : requestSpan());
  a.get("/v1/me", (c) => c.json({ sub: "sa:minerva", roles: [] }));
  a.get("/v1/leads/:id", (c) => c.json({ id: c.req.param("id") }));
  a.post("/v1/tasks", (c) => c.json({ id: "t" }, 202));
  a.notFound((c) => c.json({ code: "not-found" }, 404));
  return a;
}

/** A mix of matched, parameterised and unmatched requests, as an edge sees. */
function requests(n: number): Request[] {
  const out: Request[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % 10;
    if (k < 6) out.push(new Request("http://edge/v1/me"));
    else if (k < 8) out.push(new Request(`http://edge/v1/leads/${crypto.randomUUID()}`));
    else if (k < 9) out.push(new Request("http://edge/v1/tasks", { method: "POST" }));
    else out.push(new Request(`http://edge/v1/nope/${i}`));
  }
  return out;
}

async function block(a: Hono, reqs: Request[]): Promise<number> {
  const start = cpuMicros();
  for (const r of reqs) {
    const res = await a.fetch(r.clone());
    await res.arrayBuffer();
  }
  return (cpuMicros() - start) / reqs.length;
}

/** Runs the A/B rounds and the scrape measurement. */
export async function measureMetricsOverhead(): Promise<MetricsOverhead> {
  const metrics = createMetrics({ service: "edge" });
  const off = app(null);
  const on = app(metrics);
  const reqs = requests(BLOCK);
  // Warm both paths (JIT) before measuring.
  await block(off, reqs.slice(0, 2_000));
  await block(on, reqs.slice(0, 2_000));
  const deltas: number[] = [];
  const bases: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which side goes first so ordering effects cancel.
    const first = round % 2 === 0;
    const a1 = first ? await block(off, reqs) : 0;
    const b = await block(on, reqs);
    const a = first ? a1 : await block(off, reqs);
    deltas.push(b - a);
    bases.push(a);
  }
  let scrapeCpu = 0;
  let text = "";
  for (let i = 0; i < SCRAPES; i++) {
    const start = cpuMicros();
    text = await renderMetrics(metrics);
    scrapeCpu += cpuMicros() - start;
  }
  const series = text.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length;
  return {
    metrics_cpu_us_per_op: round3(percentile(deltas, 50)),
    metrics_cpu_us_min: round3(Math.min(...deltas)),
    metrics_cpu_us_max: round3(Math.max(...deltas)),
    base_cpu_us_per_op: round3(percentile(bases, 50)),
    rounds: ROUNDS,
    requests_per_round: BLOCK,
    series,
    scrape_cpu_ms: round3(scrapeCpu / SCRAPES / 1000),
  };
}

/**
 * The per-request share of scraping at `reqPerS` with one scrape every
 * SCRAPE_INTERVAL_S (µs).
 */
export function scrapeCpuPerRequest(scrapeCpuMs: number, reqPerS: number): number {
  return round3((scrapeCpuMs * 1000) / (reqPerS * SCRAPE_INTERVAL_S));
}
