// One Socket.IO 4 instance with @socket.io/redis-adapter (bench/peers.ts
// starts two): every connection joins the `broadcast` room, as our clients
// subscribe to the `broadcast` topic. Prints `{"port":N}` once listening.
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";

const args = parseArgs({ options: { "redis-port": { type: "string" } } }).values;
const pub = new Redis({
  host: "127.0.0.1",
  port: Number(args["redis-port"]),
  password: process.env.REDIS_PASSWORD, // set by bench/peers.ts
});
const sub = pub.duplicate();
const http = createServer();
const io = new Server(http, { transports: ["websocket"], adapter: createAdapter(pub, sub) });
io.on("connection", (socket) => socket.join("broadcast"));
http.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: http.address().port })));
process.on("SIGTERM", () => {
  io.close();
  pub.quit();
  sub.quit();
  process.exit(0);
});
