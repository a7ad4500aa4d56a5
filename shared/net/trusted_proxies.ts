/**
 * The `TRUSTED_PROXIES` setting: which hops in front of the edge may tell it
 * the client's address through `X-Forwarded-For`. Parsed here (config needs
 * it) and applied by edge/client_address.ts.
 *
 * - empty or `0`: no proxy; the socket peer is the client.
 * - a whole number N: exactly N proxies, each appending the peer it saw; the
 *   client is the Nth entry from the right.
 * - a comma-separated list of addresses or CIDR ranges: hops inside them are
 *   skipped from the right; the first address outside is the client.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

/** A parsed `TRUSTED_PROXIES`. */
export type TrustedProxies =
  | { kind: "none" }
  | { kind: "hops"; hops: number }
  | { kind: "ranges"; ranges: readonly string[] };

/** Hop counts above this are a typo, not a topology. */
const MAX_HOPS = 10;

/** Parses the setting, or returns one readable problem. */
export function parseTrustedProxies(text: string): TrustedProxies | { problem: string } {
  const t = text.trim();
  if (t === "" || t === "0") return { kind: "none" };
  if (/^\d+$/.test(t)) {
    const hops = Number(t);
    if (hops > MAX_HOPS) return { problem: `a hop count must be at most ${MAX_HOPS}` };
    return { kind: "hops", hops };
  }
  const ranges: string[] = [];
  for (const part of t.split(",").map((p) => p.trim()).filter(Boolean)) {
    const cidr = part.includes("/")
      ? part
      : `${part}/${ipaddr.IPv4.isValidFourPartDecimal(part) ? 32 : 128}`;
    try {
      const [addr, bits] = ipaddr.parseCIDR(cidr);
      ranges.push(`${addr.toString()}/${bits}`);
    } catch {
      return { problem: `"${part}" is neither an IP address nor a CIDR range` };
    }
  }
  return { kind: "ranges", ranges };
}
