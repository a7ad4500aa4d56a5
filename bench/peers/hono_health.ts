/**
 * Bare Hono on Deno serving `GET /health` with the same body as the edge's
 * (edge/routes/health.ts), nothing else in the chain: the ceiling bench:peers
 * compares the edge's `/health` with. Prints `{"url":…}` once listening.
 *
 * @module
 */
import { Hono } from "hono";

const app = new Hono();
app.get("/health", (c) => c.json({ status: "ok" }));
const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(JSON.stringify({ url: `http://127.0.0.1:${port}` })),
}, app.fetch);
Deno.addSignalListener("SIGTERM", () => void server.shutdown());
await server.finished;
