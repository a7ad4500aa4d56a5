// The publishers of sio_load.mjs in a worker thread of their own, as
// bench/ws_publish_worker.ts is for ours: the load's main thread reads the
// 400,000 deliveries, and publishing from that event loop would wait behind
// them. workerData {port, n, concurrency}; posts {ready: true} once connected,
// starts on any message, posts {publishedAt} (epoch ms) at the end. `t` in
// each broadcast is epoch ms (performance.timeOrigin + performance.now()).
import { parentPort, workerData } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { Emitter } from "@socket.io/redis-emitter";

const { port, n, concurrency } = workerData;
const redis = new Redis({
  host: "127.0.0.1",
  port,
  password: process.env.REDIS_PASSWORD, // set by bench/peers.ts, inherited by the thread
});
await redis.ping();
const emitter = new Emitter(redis).to("broadcast");
const now = () => performance.timeOrigin + performance.now();
parentPort.once("message", async () => {
  let next = 0;
  // Each waits for its PUBLISH's reply before the next (as ws_publish_worker.ts awaits).
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      emitter.emit("message", { n: i, t: now() });
      await redis.ping();
    }
  }));
  parentPort.postMessage({ publishedAt: now() });
  redis.quit();
});
parentPort.postMessage({ ready: true });
