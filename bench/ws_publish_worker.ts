/**
 * The `burst` publishers of bench/ws_load.ts, in a Worker thread of their
 * own: the load process's main thread reads 400,000 frames, and publishing
 * from that same event loop made each round of publishes wait behind the
 * frames of the last one, so the load client, not the edges, set the pace.
 * Receives `{url, token, n, concurrency}`; publishes `n` broadcasts
 * `{n: i, t}` (`t`: epoch ms, performance.timeOrigin + performance.now(),
 * comparable across threads) with `concurrency` in flight, each waiting for
 * its reply; posts `{ready: true}` once loaded (so that the burst's clock
 * starts after the thread's start-up) and `{publishedAt}` (epoch ms) when
 * all were answered.
 *
 * @module
 */
import { Redis } from "@upstash/redis";
import { createFeedPublisher } from "../shared/ws/publisher.ts";

const self = globalThis as unknown as Worker & typeof globalThis;

self.onmessage = async (
  e: MessageEvent<{ url: string; token: string; n: number; concurrency: number }>,
) => {
  const { url, token, n, concurrency } = e.data;
  const redis = new Redis({
    url,
    token,
    enableTelemetry: false,
    automaticDeserialization: false,
    responseEncoding: false,
  });
  const publisher = createFeedPublisher({ redis, instanceId: "bench-load" });
  const now = () => performance.timeOrigin + performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      const i = next++;
      await publisher.publish("broadcast", { n: i, t: now() });
    }
  }));
  self.postMessage({ publishedAt: now() });
  self.close();
};
self.postMessage({ ready: true });
