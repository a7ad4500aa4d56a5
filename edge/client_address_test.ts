import assert from "node:assert/strict";
import { Hono } from "hono";
import { parseTrustedProxies, type TrustedProxies } from "../shared/net/trusted_proxies.ts";
import {
  addressBucket,
  addressResolver,
  clientAddress,
  clientAddressOf,
} from "./client_address.ts";

function trusted(text: string): TrustedProxies {
  const parsed = parseTrustedProxies(text);
  if ("problem" in parsed) throw new Error(parsed.problem);
  return parsed;
}

async function resolve(setting: string, peer: string, xff?: string): Promise<string> {
  const app = new Hono();
  app.use(clientAddress(addressResolver(trusted(setting))));
  app.get("/", (c) => c.text(clientAddressOf(c)));
  const res = await app.request("/", {
    headers: xff === undefined ? {} : { "x-forwarded-for": xff },
  }, { remoteAddr: { hostname: peer, port: 40_000, transport: "tcp" } });
  return await res.text();
}

Deno.test("parseTrustedProxies() reads none, hop counts and address ranges, and refuses garbage", () => {
  assert.deepEqual(parseTrustedProxies(""), { kind: "none" });
  assert.deepEqual(parseTrustedProxies("0"), { kind: "none" });
  assert.deepEqual(parseTrustedProxies("2"), { kind: "hops", hops: 2 });
  assert.deepEqual(parseTrustedProxies("10.0.0.0/8, 2001:db8::/32,192.0.2.7"), {
    kind: "ranges",
    ranges: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"],
  });
  assert.ok("problem" in parseTrustedProxies("11"));
  assert.ok("problem" in parseTrustedProxies("10.0.0.0/8, proxy.internal"));
  assert.ok("problem" in parseTrustedProxies("10.0.0.0/33"));
});

Deno.test("without trusted proxies X-Forwarded-For is ignored: the socket peer is the client", async () => {
  assert.equal(await resolve("", "192.0.2.1", "198.51.100.7"), "192.0.2.1");
  // An IPv4-mapped peer is the IPv4 address (one client, one bucket).
  assert.equal(await resolve("", "::ffff:192.0.2.1"), "192.0.2.1");
});

Deno.test("a hop count takes the entry that many hops from the right; spoofed prefixes do not matter", async () => {
  assert.equal(await resolve("1", "10.0.0.1", "203.0.113.9, 198.51.100.7"), "198.51.100.7");
  assert.equal(await resolve("2", "10.0.0.1", "203.0.113.9, 198.51.100.7"), "203.0.113.9");
  // Fewer entries than hops, or garbage where the client should be: the peer.
  assert.equal(await resolve("2", "10.0.0.1", "198.51.100.7"), "10.0.0.1");
  assert.equal(await resolve("1", "10.0.0.1", "not-an-ip"), "10.0.0.1");
});

Deno.test("address ranges skip our own hops from the right and stop at the first foreign one", async () => {
  const lb = "10.0.0.0/8, 2001:db8:ffff::/48";
  assert.equal(await resolve(lb, "10.1.1.1", "6.6.6.6, 198.51.100.7, 10.2.2.2"), "198.51.100.7");
  // A peer that is not one of ours speaks only for itself.
  assert.equal(await resolve(lb, "192.0.2.50", "198.51.100.7"), "192.0.2.50");
  // Every hop ours: the leftmost is the best we know.
  assert.equal(await resolve(lb, "10.1.1.1", "10.3.3.3"), "10.3.3.3");
  // Garbage ends the walk at the last trusted hop.
  assert.equal(await resolve(lb, "10.1.1.1", "198.51.100.7, junk"), "10.1.1.1");
  assert.equal(await resolve(lb, "2001:db8:ffff::1", "2001:db8:1:2::5"), "2001:db8:1:2::5");
});

Deno.test("addressBucket() keys IPv6 by its /64 and IPv4 by the address", () => {
  assert.equal(addressBucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
  assert.equal(addressBucket("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
  assert.notEqual(addressBucket("2001:db8:1:3::1"), addressBucket("2001:db8:1:2::1"));
  assert.equal(addressBucket("192.0.2.1"), "192.0.2.1");
  assert.equal(addressBucket("::ffff:192.0.2.1"), "192.0.2.1");
  assert.equal(addressBucket("unknown"), "unknown");
});

Deno.test("repeated addresses resolve the same as the first time, garbage and long text included", async () => {
  const long = `${"1".repeat(70)}`;
  for (let round = 0; round < 3; round++) {
    assert.equal(await resolve("1", "::ffff:10.0.0.1", " ::ffff:198.51.100.7 "), "198.51.100.7");
    assert.equal(await resolve("1", "10.0.0.1", "not-an-ip"), "10.0.0.1");
    assert.equal(await resolve("1", "10.0.0.1", long), "10.0.0.1");
    assert.equal(await resolve("", "2001:DB8:0:0::1"), "2001:db8::1");
  }
  // More distinct addresses than the memo holds: still right after it empties.
  for (let i = 0; i < 4_200; i++) {
    const a = `198.51.${i >> 8}.${i & 255}`;
    assert.equal(await resolve("1", "10.0.0.1", a), a);
  }
  assert.equal(await resolve("1", "10.0.0.1", "not-an-ip"), "10.0.0.1");
});
