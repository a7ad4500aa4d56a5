import assert from "node:assert/strict";
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import { createLogger } from "../../shared/log.ts";
import { parseTrustedProxies } from "../../shared/net/trusted_proxies.ts";
import { addressResolver } from "../client_address.ts";
import { front, REQUEST_ID_HEADER, SECURITY_HEADERS } from "./front.ts";
import { PAGE_CSP } from "./response_headers.ts";

function frontApp(lines: Record<string, unknown>[]) {
  const log = createLogger({ write: (line) => lines.push(JSON.parse(line)) });
  const trusted = parseTrustedProxies("10.0.0.0/8");
  if ("problem" in trusted) throw new Error(trusted.problem);
  const app = new Hono<{ Variables: { principal?: { sub: string }; requestId: string } }>();
  app.use(front({ deps: { log, now: Date.now }, resolveAddress: addressResolver(trusted) }));
  app.use(async (c, next) => {
    if (c.req.header("x-sub")) c.set("principal", { sub: c.req.header("x-sub")! });
    await next();
  });
  app.get("/health", (c) => c.json({ status: "ok" }));
  app.get("/json", (c) => c.json({ id: c.get("requestId") }));
  app.get("/page", (c) => c.html("<p>hi</p>"));
  app.get("/boom", () => {
    throw new Error("boom");
  });
  // A passed-through fetch Response has immutable headers.
  app.get("/fetched", () => Response.json({ ok: true }, { headers: { "X-Powered-By": "x" } }));
  app.onError((_err, c) => c.json({ code: "internal" }, 500));
  return app;
}

Deno.test("front sets the same security headers as Hono's secureHeaders()", async () => {
  const hono = new Hono();
  hono.use(secureHeaders());
  hono.get("/", (c) => c.text("x"));
  const expected = [...(await hono.request("/")).headers]
    .filter(([name]) => name !== "content-type");
  assert.deepEqual(
    SECURITY_HEADERS.map(([n, v]) => [n.toLowerCase(), v]).sort(),
    expected.sort(),
  );
});

Deno.test("front: request id, security and content headers on every response, errors too", async () => {
  const lines: Record<string, unknown>[] = [];
  const app = frontApp(lines);
  for (const path of ["/health", "/json", "/page", "/boom", "/fetched", "/missing"]) {
    const res = await app.request(path);
    await res.body?.cancel();
    assert.match(res.headers.get(REQUEST_ID_HEADER) ?? "", /^[0-9a-f-]{36}$/, path);
    for (const [name, value] of SECURITY_HEADERS) assert.equal(res.headers.get(name), value, path);
    assert.equal(res.headers.get("x-powered-by"), null, path);
  }
  assert.equal((await app.request("/page")).headers.get("content-security-policy"), PAGE_CSP);
  assert.equal((await app.request("/json")).headers.get("cache-control"), null, "anonymous");
  const mine = await app.request("/json", { headers: { "x-sub": "vera" } });
  assert.equal(mine.headers.get("cache-control"), "no-store");
  assert.equal((await mine.json()).id, mine.headers.get(REQUEST_ID_HEADER), "c.var.requestId");
});

Deno.test("front echoes a safe caller request id and replaces an unsafe one", async () => {
  const app = frontApp([]);
  const id = async (given: string) => {
    const res = await app.request("/json", { headers: { [REQUEST_ID_HEADER]: given } });
    await res.body?.cancel();
    return res.headers.get(REQUEST_ID_HEADER);
  };
  assert.equal(await id("abc_DEF-12="), "abc_DEF-12=");
  assert.notEqual(await id("a b"), "a b");
  assert.notEqual(await id("x".repeat(256)), "x".repeat(256));
  assert.equal(await id("x".repeat(255)), "x".repeat(255));
});

Deno.test("front logs one access line per request with the client address, none for /health", async () => {
  const lines: Record<string, unknown>[] = [];
  const app = frontApp(lines);
  const peer = (hostname: string) => ({ remoteAddr: { hostname, port: 1, transport: "tcp" } });
  const headers = { "x-forwarded-for": "198.51.100.7", "x-sub": "vera" };
  await (await app.request("/json", { headers }, peer("10.1.2.3"))).body?.cancel();
  await (await app.request("/health", { headers }, peer("10.1.2.3"))).body?.cancel();
  const requests = lines.filter((l) => l.msg === "request");
  assert.equal(requests.length, 1);
  assert.equal(requests[0]!["client.address"], "198.51.100.7");
  assert.equal(requests[0]!["user.id"], "vera");
  assert.equal(requests[0]!.status, 200);
  assert.equal(typeof requests[0]!.request_id, "string");
});
