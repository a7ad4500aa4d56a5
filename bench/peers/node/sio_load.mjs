// The Socket.IO side of bench:ws's `burst` (bench/ws_load.ts): CLIENTS
// socket.io-client connections (WebSocket transport) split over the servers,
// N broadcasts to the `broadcast` room published straight into Redis with
// @socket.io/redis-emitter (as our load process publishes into the feed), 64
// in flight; deliveries/s from the first publish to the last delivery,
// publish→delivery p50/p99, lost and duplicated per client and message. One
// JSON summary on stdout.
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const args = parseArgs({
  options: {
    urls: { type: "string" },
    "redis-port": { type: "string" },
    clients: { type: "string", default: "200" },
    n: { type: "string", default: "2000" },
  },
}).values;
const urls = args.urls.split(",");
const CLIENTS = Number(args.clients);
const N = Number(args.n);
const round3 = (x) => Math.round(x * 1000) / 1000;
const percentile = (s, p) => {
  const sorted = [...s].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
};

const latencies = [];
let delivered = 0;
let lastDelivery = 0;
const clients = await Promise.all(
  Array.from({ length: CLIENTS }, (_, i) =>
    new Promise((resolve, reject) => {
      const socket = io(urls[i % urls.length], { transports: ["websocket"], reconnection: false });
      const seen = new Uint16Array(N);
      socket.on("message", (data) => {
        const now = performance.now();
        seen[data.n]++;
        latencies.push(now - (data.t - performance.timeOrigin)); // t: epoch ms (sio_publisher.mjs)
        delivered++;
        lastDelivery = now;
      });
      socket.on("connect", () => resolve({ socket, seen }));
      socket.on("connect_error", reject);
    })),
);
// Joining the room happens in the server's connection handler; give it a beat.
await new Promise((r) => setTimeout(r, 500));

// Publishing runs in a thread of its own (sio_publisher.mjs), not behind this thread's deliveries.
const worker = new Worker(new URL("./sio_publisher.mjs", import.meta.url), {
  workerData: { port: Number(args["redis-port"]), n: N, concurrency: 64 },
});
const fromWorker = () => new Promise((resolve, reject) => {
  worker.once("message", resolve);
  worker.once("error", reject);
});
await fromWorker(); // connected
const t0 = performance.now();
const finished = fromWorker();
worker.postMessage("go");
const published = (await finished).publishedAt - performance.timeOrigin;
lastDelivery = performance.now();
while (delivered < CLIENTS * N && performance.now() - lastDelivery < 3000) {
  await new Promise((r) => setTimeout(r, 20));
}
let lost = 0;
let duplicates = 0;
for (const c of clients) {
  for (let i = 0; i < N; i++) {
    if (c.seen[i] === 0) lost++;
    else if (c.seen[i] > 1) duplicates += c.seen[i] - 1;
  }
  c.socket.close();
}
console.log(JSON.stringify({
  clients: CLIENTS,
  n: N,
  deliveries: delivered,
  deliveries_per_s: round3(delivered / ((lastDelivery - t0) / 1000)),
  publish_per_s: round3(N / ((published - t0) / 1000)),
  p50_ms: round3(percentile(latencies, 50)),
  p99_ms: round3(percentile(latencies, 99)),
  lost,
  duplicates,
}));
