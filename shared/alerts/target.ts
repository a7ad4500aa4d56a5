/**
 * SSRF guard of the alert webhook: the host is resolved and EVERY address it
 * resolves to is checked before a call. Link-local addresses (which include
 * the cloud metadata endpoint 169.254.169.254 and fe80::/10), unspecified,
 * broadcast, multicast and reserved addresses are always refused; loopback,
 * private, unique-local and carrier-grade-NAT addresses only in development
 * and test (where the receiver is a local process). IPv4-mapped IPv6
 * addresses are judged as the IPv4 address they carry.
 *
 * Residual risk, documented in docs/observability.md: the HTTP client
 * resolves the name again when it connects, so a DNS answer that changes
 * between the check and the connect (rebinding) is not caught here.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

/** Why a target was refused; never names the URL (it may carry a secret). */
export class AlertTargetRefusedError extends Error {
  override name = "AlertTargetRefusedError";
}

/** Ranges refused everywhere (ipaddr.js range names). */
const ALWAYS_REFUSED = new Set([
  "linkLocal",
  "unspecified",
  "broadcast",
  "multicast",
  "reserved",
  "benchmarking",
  "amt",
  "as112",
  "as112v6",
  "deprecated",
  "orchid2",
  "droneRemoteIdProtocolEntityTags",
]);
/**
 * Ranges refused outside development/test; the IPv6 transition ranges
 * (6to4, Teredo, NAT64) can carry a private IPv4 address inside.
 */
const PRIVATE = new Set([
  "loopback",
  "private",
  "uniqueLocal",
  "carrierGradeNat",
  "6to4",
  "teredo",
  "rfc6145",
  "rfc6052",
]);

/** Resolves a host name to its addresses (A and AAAA); stops when `signal` aborts. */
export type Resolver = (host: string, signal?: AbortSignal) => Promise<string[]>;

/** Options of {@linkcode checkAlertTarget}. */
export interface TargetCheckOptions {
  /** Development/test: loopback and private addresses are allowed. */
  allowPrivate: boolean;
  /** @default {@linkcode resolveHost} (Deno.resolveDns) */
  resolve?: Resolver;
  /** Bounds the lookup (the call's time budget). */
  signal?: AbortSignal;
  /** What the target is, in messages (other outbound calls reuse this check). @default "the alert webhook" */
  subject?: string;
}

/** Every A and AAAA address of `host` (an empty list when it has none). */
export async function resolveHost(host: string, signal?: AbortSignal): Promise<string[]> {
  const options = signal ? { signal } : {};
  const answers = await Promise.allSettled([
    Deno.resolveDns(host, "A", options),
    Deno.resolveDns(host, "AAAA", options),
  ]);
  signal?.throwIfAborted();
  return answers.flatMap((a) => a.status === "fulfilled" ? a.value : []);
}

/** The range name of one address literal, or null when it is not one. */
export function addressRange(address: string): string | null {
  const bare = address.replace(/^\[|\]$/g, "");
  if (!ipaddr.isValid(bare)) return null;
  // process(): an IPv4-mapped IPv6 address becomes the IPv4 address it maps.
  return ipaddr.process(bare).range();
}

/** Why `range` is refused, or null when it is allowed. */
function refusal(range: string, allowPrivate: boolean): string | null {
  if (ALWAYS_REFUSED.has(range)) return `a ${range} address`;
  if (!allowPrivate && PRIVATE.has(range)) return `a ${range} address`;
  return null;
}

/**
 * Throws {@linkcode AlertTargetRefusedError} unless every address `url`'s
 * host resolves to is allowed (see the module doc).
 */
export async function checkAlertTarget(url: URL, options: TargetCheckOptions): Promise<void> {
  const subject = options.subject ?? "the alert webhook";
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const literal = addressRange(host);
  let addresses: string[];
  if (literal !== null) {
    addresses = [host];
  } else {
    const resolve = options.resolve ?? resolveHost;
    try {
      addresses = await resolve(host, options.signal);
    } catch (err) {
      throw new AlertTargetRefusedError(`${subject}'s host did not resolve`, { cause: err });
    }
    if (addresses.length === 0) {
      throw new AlertTargetRefusedError(`${subject}'s host has no address`);
    }
  }
  for (const address of addresses) {
    const range = addressRange(address);
    const why = range === null ? "an unparsable address" : refusal(range, options.allowPrivate);
    if (why !== null) {
      throw new AlertTargetRefusedError(`${subject}'s host resolves to ${why}`);
    }
  }
}
