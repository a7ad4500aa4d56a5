import assert from "node:assert/strict";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import { createLogger } from "../../shared/log.ts";
import { parseTrustedProxies } from "../../shared/net/trusted_proxies.ts";
import { addressResolver, clientAddress } from "../client_address.ts";
import { accessLog } from "./access_log.ts";

Deno.test("the access log records the client address the trusted-proxy setting decides", async () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ write: (line) => lines.push(JSON.parse(line)) });
  const trusted = parseTrustedProxies("10.0.0.0/8");
  if ("problem" in trusted) throw new Error(trusted.problem);
  const app = new Hono();
  app.use(requestId(), clientAddress(addressResolver(trusted)), accessLog({ log, now: Date.now }));
  app.get("/x", (c) => c.text("ok"));
  const peer = (hostname: string) => ({ remoteAddr: { hostname, port: 1, transport: "tcp" } });
  await (await app.request(
    "/x",
    { headers: { "x-forwarded-for": "198.51.100.7" } },
    peer("10.1.2.3"),
  ))
    .body?.cancel();
  await (await app.request(
    "/x",
    { headers: { "x-forwarded-for": "198.51.100.7" } },
    peer("192.0.2.9"),
  ))
    .body?.cancel();
  const requests = lines.filter((l) => l.msg === "request");
  assert.deepEqual(requests.map((l) => l["client.address"]), ["198.51.100.7", "192.0.2.9"]);
});
