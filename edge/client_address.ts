/**
 * The client's address, decided once per request and shared by everything
 * that needs it: rate limits (by {@linkcode addressBucket}), the access log,
 * and `X-Forwarded-For` towards upstreams. Which proxies may speak for the
 * client is the `TRUSTED_PROXIES` setting (shared/net/trusted_proxies.ts);
 * without it `X-Forwarded-For` is ignored, since any caller can write it.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { getConnInfo } from "hono/deno";
import ipaddr from "ipaddr.js";
import type { TrustedProxies } from "../shared/net/trusted_proxies.ts";

/** Variables set by {@linkcode clientAddress}. */
export type ClientAddressVariables = { clientAddress: string };

/** What a request without a usable socket address (an in-process test) is keyed by. */
export const UNKNOWN_ADDRESS = "unknown";

/** The address in canonical text (IPv4-mapped IPv6 as IPv4), or null when it is not one. */
function parseCanonical(text: string): string | null {
  try {
    return ipaddr.process(text.trim()).toString();
  } catch {
    return null;
  }
}

/**
 * Recent answers of {@linkcode parseCanonical}: parsing the same peer address
 * on every request was a measurable share of the chain (docs/benchmarks.md,
 * "Where the edge's µs go"). Bounded in entries (emptied when full) and in
 * the text it keeps: nothing longer than an address's longest text form, so
 * an `X-Forwarded-For` full of long garbage is parsed, not stored.
 */
const canonicalMemo = new Map<string, string | null>();
const MEMO_ENTRIES = 4_096;
/** An IPv4-mapped IPv6 address with a zone id is the longest text that can parse. */
const MEMO_MAX_TEXT = 64;

function canonical(text: string | undefined): string | null {
  if (!text) return null;
  const hit = canonicalMemo.get(text);
  if (hit !== undefined) return hit;
  const value = parseCanonical(text);
  if (text.length <= MEMO_MAX_TEXT) {
    if (canonicalMemo.size >= MEMO_ENTRIES) canonicalMemo.clear();
    canonicalMemo.set(text, value);
  }
  return value;
}

function socketPeer(c: Context): string | null {
  try {
    return canonical(getConnInfo(c).remote.address);
  } catch {
    return null; // app.request() without an env has no socket
  }
}

/** A resolver from a request to its client address. */
export type AddressResolver = (c: Context) => string;

/** Builds the resolver for a `TRUSTED_PROXIES` setting. */
export function addressResolver(trusted: TrustedProxies): AddressResolver {
  const ranges = trusted.kind === "ranges" ? trusted.ranges.map((r) => ipaddr.parseCIDR(r)) : [];
  const isTrusted = (address: string) => {
    const a = ipaddr.parse(address);
    return ranges.some(([net, bits]) => a.kind() === net.kind() && a.match(net, bits));
  };
  return function resolveAddress(c) {
    const peer = socketPeer(c);
    if (peer === null || trusted.kind === "none") return peer ?? UNKNOWN_ADDRESS;
    const chain = (c.req.header("x-forwarded-for") ?? "").split(",").map((s) => s.trim())
      .filter(Boolean);
    if (trusted.kind === "hops") {
      // Each trusted proxy appends the peer it saw, so the client is `hops`
      // entries from the right; anything further left is client-supplied.
      if (chain.length < trusted.hops) return peer;
      return canonical(chain[chain.length - trusted.hops]) ?? peer;
    }
    // Walk right to left while the hop is one of ours; the first hop that is
    // not is the client. Garbage ends the walk at the last hop we trust.
    let client = peer;
    for (let i = chain.length - 1; i >= 0 && isTrusted(client); i--) {
      const next = canonical(chain[i]);
      if (next === null) break;
      client = next;
    }
    return client;
  };
}

/** Middleware putting the resolved address on `c.var.clientAddress`. */
export function clientAddress(resolve: AddressResolver): MiddlewareHandler {
  return async function clientAddress(c, next) {
    c.set("clientAddress", resolve(c));
    await next();
  };
}

/** The address set by {@linkcode clientAddress}, or the socket peer when it did not run. */
export function clientAddressOf(c: Context): string {
  // c.get(), not c.var: Hono builds c.var anew from every variable per read.
  return (c.get("clientAddress") as ClientAddressVariables["clientAddress"] | undefined) ??
    socketPeer(c) ??
    UNKNOWN_ADDRESS;
}

/**
 * The rate-limit bucket of an address: IPv6 by its /64 (one subscriber line
 * usually owns a whole /64, so per-address buckets cost it nothing to rotate
 * through), IPv4 by the address.
 */
export function addressBucket(address: string): string {
  let a: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    a = ipaddr.process(address);
  } catch {
    return address;
  }
  if (a.kind() === "ipv4") return a.toString();
  const parts = (a as ipaddr.IPv6).parts.slice(0, 4);
  return `${new ipaddr.IPv6([...parts, 0, 0, 0, 0]).toString()}/64`;
}
