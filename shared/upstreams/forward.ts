/**
 * Building the request sent to an upstream and cleaning its response:
 * hop-by-hop headers are removed both ways (RFC 9110 §7.6.1), the request id
 * and a W3C `traceparent` are added, and the caller's credentials are not
 * passed on unless the upstream is configured to receive them.
 *
 * @module
 */
import { context, trace } from "@opentelemetry/api";

/** Connection-scoped response headers a proxy must not forward (plus any named in `Connection`). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Request headers an upstream receives from the caller; everything else is
 * dropped. An allow-list, not a deny-list: headers that steer a server or a
 * framework behind us (`X-HTTP-Method-Override`, `X-Original-URL`,
 * `X-Rewrite-URL`, `Forwarded`, `X-Real-IP`, `X-Forwarded-*`, `X-Principal`,
 * cookies) never pass, including ones nobody has thought of yet. The gateway
 * sets its own request id, trace context, `X-Forwarded-*` and `X-Principal`.
 */
export const FORWARDED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  "accept",
  "accept-language",
  "cache-control",
  "content-encoding",
  "content-language",
  "content-type",
  "idempotency-key",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "prefer",
  "range",
  "user-agent",
]);

function connectionTokens(headers: Headers): Set<string> {
  return new Set(
    (headers.get("connection") ?? "").split(",").map((t) => t.trim().toLowerCase()).filter(
      Boolean,
    ),
  );
}

/** Options of {@linkcode upstreamRequestHeaders}. */
export interface UpstreamHeaderOptions {
  requestId: string;
  /** Keep the caller's Authorization header. */
  forwardAuthorization: boolean;
  /** Custom headers forwarded besides {@linkcode FORWARDED_REQUEST_HEADERS} (validated in config). */
  extraHeaders?: readonly string[];
  /** The authenticated caller, passed as `X-Principal`. */
  principal?: string;
  /** Client address for `X-Forwarded-For`. */
  clientIp?: string;
  /** Original host and scheme for `X-Forwarded-Host` / `-Proto`. */
  host?: string;
  proto?: string;
}

/**
 * The headers to send upstream for an incoming request's headers: the
 * allow-listed ones, then the gateway's own. The live proxy and the replay of
 * a queued write (workers/tasks/forward_request.ts) both build theirs here.
 */
export function upstreamRequestHeaders(incoming: Headers, o: UpstreamHeaderOptions): Headers {
  const out = new Headers();
  for (const [name, value] of incoming) {
    if (FORWARDED_REQUEST_HEADERS.has(name) || o.extraHeaders?.includes(name)) {
      out.set(name, value);
    }
  }
  if (o.forwardAuthorization) {
    const authorization = incoming.get("authorization");
    if (authorization !== null) out.set("authorization", authorization);
  }
  out.set("x-request-id", o.requestId);
  out.set("traceparent", traceparentFor(incoming.get("traceparent")));
  const tracestate = incoming.get("tracestate");
  if (tracestate) out.set("tracestate", tracestate);
  // fetch would transparently decode a compressed body while the headers still
  // said gzip; asking for identity keeps headers and body consistent.
  out.set("accept-encoding", "identity");
  if (o.principal) out.set("x-principal", o.principal);
  // Only the address edge/client_address.ts decided: a client-written chain
  // would let any caller choose what the upstream believes.
  if (o.clientIp) out.set("x-forwarded-for", o.clientIp);
  if (o.host) out.set("x-forwarded-host", o.host);
  if (o.proto) out.set("x-forwarded-proto", o.proto);
  return out;
}

/**
 * The upstream's response headers minus hop-by-hop ones and, unless the
 * upstream is trusted with them, `Set-Cookie`: an upstream's cookie would be
 * set on the gateway's origin, where every other route would receive it.
 */
export function downstreamResponseHeaders(
  upstream: Headers,
  o: { passSetCookie?: boolean } = {},
): Headers {
  const drop = connectionTokens(upstream);
  const out = new Headers();
  for (const [name, value] of upstream) {
    if (HOP_BY_HOP.has(name) || drop.has(name)) continue;
    if (name === "set-cookie" && !o.passSetCookie) continue;
    out.append(name, value);
  }
  // A body fetch decoded anyway must not keep its encoding headers.
  if (out.has("content-encoding")) {
    out.delete("content-encoding");
    out.delete("content-length");
  }
  return out;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * The `traceparent` for the upstream call: the active span when tracing is on
 * (the gateway's `forward_to_service` span becomes the parent), else the
 * caller's trace continued with a new span id, else a new trace — so the
 * upstream can always correlate with the gateway's logs.
 */
export function traceparentFor(incoming: string | null | undefined): string {
  const active = trace.getSpanContext(context.active());
  if (active && trace.isSpanContextValid(active)) {
    const flags = active.traceFlags.toString(16).padStart(2, "0");
    return `00-${active.traceId}-${active.spanId}-${flags}`;
  }
  const m = incoming ? TRACEPARENT.exec(incoming.trim().toLowerCase()) : null;
  if (m && !/^0+$/.test(m[1]!) && !/^0+$/.test(m[2]!)) {
    return `00-${m[1]}-${randomHex(8)}-${m[3]}`;
  }
  return `00-${randomHex(16)}-${randomHex(8)}-00`;
}

/** `base + rest` where `rest` is the path after the upstream's prefix plus the query. */
export function upstreamUrl(baseUrl: string, rest: string): string {
  if (rest !== "" && !rest.startsWith("/") && !rest.startsWith("?")) rest = `/${rest}`;
  return baseUrl + rest;
}
