/**
 * The live-feed load generator (bench/ws.ts runs it as its own process):
 * opens WebSocket clients split over the edge URLs, publishes broadcasts
 * straight into the feed (the publisher a worker would use), and measures
 * what the clients receive. Prints ONE JSON summary on stdout.
 *
 * Scenarios: `burst` (N broadcasts as fast as 64 concurrent publishes go,
 * published from a Worker thread: ws_publish_worker.ts),
 * `paced` (RATE broadcasts/s for DURATION s), `idle` (open CLIENTS
 * connections that do nothing; the parent measures the edge's memory).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Redis } from "@upstash/redis";
import { createFeedPublisher } from "../shared/ws/publisher.ts";
import { processCpuMicros, rssBytes } from "./lib/cpu.ts";
import { percentile, round3 } from "./lib/report.ts";

const args = parseArgs({
  options: {
    urls: { type: "string" },
    token: { type: "string" },
    "redis-url": { type: "string" },
    "redis-token": { type: "string" },
    scenario: { type: "string" },
    clients: { type: "string", default: "200" },
    n: { type: "string", default: "2000" },
    rate: { type: "string", default: "200" },
    duration: { type: "string", default: "10" },
    "hold-ms": { type: "string", default: "3000" },
    /** Edge process ids: CPU (paced) and memory (idle) are read from /proc. */
    "edge-pids": { type: "string", default: "" },
    /** Other processes whose CPU over the burst is reported, as name=pid,… (bridge, redis). */
    "other-pids": { type: "string", default: "" },
  },
}).values;

const urls = args.urls!.split(",");
const CLIENTS = Number(args.clients);

interface Client {
  ws: WebSocket;
  /** Deliveries per message number. */
  seen: Uint16Array;
  closeCode: number | null;
}

const edgePids = args["edge-pids"]!.split(",").filter(Boolean).map(Number);
const otherPids = args["other-pids"]!.split(",").filter(Boolean).map((kv) => kv.split("="))
  .map(([name, pid]) => [name!, Number(pid)] as const);

const latencies: number[] = [];
/** Paced only: Redis's publish time (the frame's `ts`, ms) → received here, by Date.now(). */
const fanOutLatencies: number[] = [];
let delivered = 0;
let lastDelivery = 0;

async function open(count: number, size: number, subscribe: boolean): Promise<Client[]> {
  const out: Client[] = [];
  for (let from = 0; from < count; from += 200) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(200, count - from) }, (_, i) => {
        const base = urls[(from + i) % urls.length]!.replace(/^http/, "ws");
        const url = `${base}/v1/ws${subscribe ? "?topics=broadcast" : ""}`;
        const ws = new WebSocket(url, ["bearer", args.token!]);
        const client: Client = { ws, seen: new Uint16Array(size), closeCode: null };
        const ready = Promise.withResolvers<void>();
        ws.onmessage = (e) => {
          const now = performance.now();
          const text = e.data as string;
          if (text.startsWith('{"type":"message"')) {
            const { data, ts } = JSON.parse(text) as { data: { n: number; t: number }; ts: string };
            client.seen[data.n]!++;
            // burst: `t` is epoch ms from the publishing Worker (ws_publish_worker.ts).
            latencies.push(
              now - (args.scenario === "burst" ? data.t - performance.timeOrigin : data.t),
            );
            if (args.scenario === "paced") fanOutLatencies.push(Date.now() - Date.parse(ts));
            delivered++;
            lastDelivery = now;
          } else if (!subscribe || text.includes('"subscribed"')) {
            ready.resolve();
          }
        };
        ws.onclose = (e) => {
          client.closeCode = e.code;
          ready.reject(new Error(`closed with ${e.code} ${e.reason}`));
        };
        return ready.promise.then(() => client);
      }),
    );
    out.push(...batch);
  }
  return out;
}

async function closeAll(clients: Client[]): Promise<void> {
  await Promise.all(clients.map((c) => {
    if (c.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    const done = new Promise((r) => c.ws.addEventListener("close", r));
    c.ws.close();
    return done;
  }));
}

function tally(clients: Client[], n: number) {
  let lost = 0;
  let duplicates = 0;
  for (const c of clients) {
    for (let i = 0; i < n; i++) {
      const k = c.seen[i]!;
      if (k === 0) lost++;
      else if (k > 1) duplicates += k - 1;
    }
  }
  return {
    lost,
    duplicates,
    closed_by_server: clients.filter((c) => c.closeCode !== null).map((c) => c.closeCode),
  };
}

/** Waits until `expected` deliveries arrived or none came for `quietMs`. */
async function drain(expected: number, quietMs = 3000): Promise<void> {
  while (delivered < expected && performance.now() - lastDelivery < quietMs) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

const redis = new Redis({
  url: args["redis-url"]!,
  token: args["redis-token"]!,
  enableTelemetry: false,
  automaticDeserialization: false,
  responseEncoding: false,
});
const publisher = createFeedPublisher({ redis, instanceId: "bench-load" });
let summary: Record<string, unknown>;

if (args.scenario === "burst") {
  const n = Number(args.n);
  const clients = await open(CLIENTS, n, true);
  const others0 = otherPids.map(([, pid]) => processCpuMicros(pid));
  const cpu0 = [processCpuMicros("self"), ...edgePids.map((pid) => processCpuMicros(pid))];
  // Publishing runs on a thread of its own (ws_publish_worker.ts), not behind this thread's frames.
  const worker = new Worker(new URL("./ws_publish_worker.ts", import.meta.url), { type: "module" });
  const ready = Promise.withResolvers<void>();
  const done = new Promise<{ publishedAt: number }>((resolve, reject) => {
    worker.onmessage = (e) => e.data.ready ? ready.resolve() : resolve(e.data);
    worker.onerror = (e) => {
      const err = new Error(`publish worker failed: ${e.message}`);
      ready.reject(err);
      reject(err);
    };
  });
  await ready.promise;
  const t0 = performance.now();
  worker.postMessage({
    url: args["redis-url"]!,
    token: args["redis-token"]!,
    n,
    concurrency: 64,
  });
  const published = (await done).publishedAt - performance.timeOrigin;
  lastDelivery = performance.now();
  await drain(CLIENTS * n);
  const [load, ...edges] = [processCpuMicros("self"), ...edgePids.map((p) => processCpuMicros(p))]
    .map((v, i) => v - cpu0[i]!);
  const wallUs = (lastDelivery - t0) * 1000;
  const othersPct = Object.fromEntries(
    otherPids.map(([name, pid], i) => [
      name,
      round3(((processCpuMicros(pid) - others0[i]!) / wallUs) * 100),
    ]),
  );
  summary = {
    clients: CLIENTS,
    n,
    deliveries: delivered,
    deliveries_per_s: round3(delivered / ((lastDelivery - t0) / 1000)),
    publish_per_s: round3(n / ((published - t0) / 1000)),
    // Is the load process the bottleneck? Its CPU over the burst's wall time
    // (100 % = one core: it cannot go faster), next to each edge's.
    load_cpu_pct: round3((load! / wallUs) * 100),
    edge_cpu_pct: edges.map((e) => round3((e / wallUs) * 100)),
    other_cpu_pct: othersPct,
    cpu_split_us_per_delivery: {
      load: round3(load! / delivered),
      edges: round3(edges.reduce((a, b) => a + b, 0) / delivered),
    },
    p50_ms: round3(percentile(latencies, 50)),
    p99_ms: round3(percentile(latencies, 99)),
    ...tally(clients, n),
  };
  await closeAll(clients);
} else if (args.scenario === "paced") {
  const rate = Number(args.rate);
  const n = rate * Number(args.duration);
  const clients = await open(CLIENTS, n, true);
  const cpu0 = edgePids.map((pid) => processCpuMicros(pid));
  // This process's own event-loop delay: a 5 ms timer's lateness.
  const loopLags: number[] = [];
  let tick = performance.now();
  const probe = setInterval(() => {
    const now = performance.now();
    loopLags.push(Math.max(0, now - tick - 5));
    tick = now;
  }, 5);
  const t0 = performance.now();
  const sends: Promise<unknown>[] = [];
  const sendLags: number[] = [];
  const publishMs: number[] = [];
  for (let i = 0; i < n; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    // Latency counts from the due time: a late send is not forgiven.
    const sent = performance.now();
    sendLags.push(sent - due);
    sends.push(
      publisher.publish("broadcast", { n: i, t: due }).then(() =>
        publishMs.push(performance.now() - sent)
      ),
    );
  }
  await Promise.all(sends);
  lastDelivery = performance.now();
  await drain(CLIENTS * n);
  clearInterval(probe);
  const edgeCpu = edgePids.map((p, i) => processCpuMicros(p) - cpu0[i]!).reduce((a, b) => a + b, 0);
  summary = {
    cpu_us_per_delivery: round3(edgeCpu / delivered),
    clients: CLIENTS,
    n,
    rate,
    deliveries: delivered,
    p50_ms: round3(percentile(latencies, 50)),
    p99_ms: round3(percentile(latencies, 99)),
    max_ms: round3(latencies.reduce((a, b) => Math.max(a, b), 0)),
    // Where the latency goes: this process late to publish (timer, event
    // loop), the publish call's round trip, and Redis's publish time → the
    // frame here (bridge SSE, edge fan-out, socket, this event loop; ms clock).
    send_lag_p99_ms: round3(percentile(sendLags, 99)),
    publish_p99_ms: round3(percentile(publishMs, 99)),
    fan_out_p50_ms: round3(percentile(fanOutLatencies, 50)),
    fan_out_p99_ms: round3(percentile(fanOutLatencies, 99)),
    load_loop_lag_p99_ms: round3(percentile(loopLags, 99)),
    ...tally(clients, n),
  };
  await closeAll(clients);
} else if (args.scenario === "idle") {
  const pid = edgePids[0]!;
  const before = rssBytes(pid);
  const clients = await open(CLIENTS, 0, false);
  // Let registrations and allocations settle before reading the memory.
  await new Promise((r) => setTimeout(r, Number(args["hold-ms"])));
  const after = rssBytes(pid);
  summary = {
    clients: clients.length,
    rss_before_mib: round3(before / 1048576),
    rss_after_mib: round3(after / 1048576),
    bytes_per_connection: Math.round((after - before) / clients.length),
    closed_by_server: tally(clients, 0).closed_by_server,
  };
  await closeAll(clients);
} else {
  throw new Error(`unknown --scenario ${args.scenario}`);
}
console.log(JSON.stringify(summary));
