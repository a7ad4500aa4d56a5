/**
 * Upstream proxy routes (the seed's `call_control_api`): every request below
 * an upstream's prefix is forwarded to its base URL through that upstream's
 * circuit breaker, after the gateway chain (auth, rate limit, authorization
 * by the upstream's principals, Idempotency-Key) has run.
 *
 * - Bodies stream both ways; only allow-listed request headers pass, the
 *   request id, a `traceparent`, `X-Forwarded-For` (the client address of
 *   edge/client_address.ts) and `X-Principal` are added, and upstream
 *   `Set-Cookie` is dropped unless configured (shared/upstreams/forward.ts).
 * - The path below the prefix is decoded like the router's, refused when it
 *   hides separators or dot segments, and re-encoded
 *   (shared/upstreams/upstream_path.ts).
 * - The breaker classifies: 5xx, timeouts and connection errors count as
 *   failures; 4xx do not; a 429 with Retry-After is passed back as is.
 * - While the breaker refuses: GET → the last good answer (degraded) or 503;
 *   writes → 202 queued, replayed by a worker after recovery
 *   (workers/tasks/forward_request.ts).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { sha256Hex } from "../../shared/hash.ts";
import { readCapped } from "../../shared/read_capped.ts";
import type { Context } from "hono";
import { Hono } from "hono";
import type { BreakerRegistry } from "../../shared/breakers/registry.ts";
import {
  BreakerOpenError,
  BreakerThrottledError,
  BreakerTimeoutError,
} from "../../shared/breakers/errors.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import {
  downstreamResponseHeaders,
  upstreamRequestHeaders,
} from "../../shared/upstreams/forward.ts";
import {
  restBelowPrefix,
  UnsafePathError,
  upstreamTarget,
} from "../../shared/upstreams/upstream_path.ts";
import type { QueuedRequest } from "../../shared/upstreams/queued_request.ts";
import { forwardTaskType, type Upstream } from "../../shared/upstreams/upstream.ts";
import type { AppEnv } from "../app_env.ts";
import { degradedRead, queuedWrite } from "../degraded/fallbacks.ts";
import { isCacheableType, type ResponseCache } from "../degraded/response_cache.ts";
import { clientAddressOf, UNKNOWN_ADDRESS } from "../client_address.ts";
import { problem } from "../problem.ts";
import { readingBody } from "../request_body.ts";

/** Collaborators of {@linkcode upstreamRoutes}. */
export interface UpstreamRouteOptions {
  upstreams: readonly Upstream[];
  breakers: BreakerRegistry;
  queue: TaskQueue;
  cache: ResponseCache;
  now: () => number;
}

/**
 * Returns the upstream's body to the client while keeping a copy of at most
 * `maxBytes` for the degraded cache; the copy is dropped when it grows past.
 */
function teeForCache(
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
  store: (text: string) => Promise<void>,
): ReadableStream<Uint8Array> {
  const [toClient, toCache] = body.tee();
  void (async () => {
    try {
      const bytes = await readCapped(toCache, maxBytes);
      if (bytes !== null) await store(new TextDecoder().decode(bytes));
    } catch {
      // The client went away or the upstream broke the stream: nothing to keep.
    }
  })();
  return toClient;
}

/** The routes of every configured upstream. */
export function upstreamRoutes(o: UpstreamRouteOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  for (const u of o.upstreams) {
    o.breakers.get(u.breaker); // throws now, at startup, for an unknown breaker
    const handler = (c: Context<AppEnv>) => forward(c, u, o);
    app.all(u.prefix, handler);
    app.all(`${u.prefix}/*`, handler);
  }
  return app;
}

async function forward(c: Context<AppEnv>, u: Upstream, o: UpstreamRouteOptions) {
  const method = c.req.method;
  const allowed = new Set<string>(u.methods);
  if (allowed.has("GET")) allowed.add("HEAD");
  if (!allowed.has(method)) {
    const allow = [...allowed].sort().join(", ");
    return problem(c, {
      code: "method-not-allowed",
      status: 405,
      title: "Method not allowed",
      detail: `${method} is not forwarded to ${u.name}; use ${allow}`,
    }, { Allow: allow });
  }
  const url = new URL(c.req.url);
  let rest: string;
  let target: URL;
  try {
    // Decoded and checked like the path the router matched, then re-encoded.
    rest = restBelowPrefix(url.pathname, u.prefix) + url.search;
    target = upstreamTarget(u.baseUrl, rest);
  } catch (err) {
    if (!(err instanceof UnsafePathError)) throw err;
    return problem(c, { code: err.code, status: 400, title: "Invalid path", detail: err.message });
  }
  const principal = c.get("principal");
  const address = clientAddressOf(c);
  const headers = upstreamRequestHeaders(c.req.raw.headers, {
    requestId: c.get("requestId"),
    forwardAuthorization: u.forwardAuthorization,
    extraHeaders: u.forwardHeaders,
    principal: principal?.sub,
    clientIp: address === UNKNOWN_ADDRESS ? undefined : address,
    host: url.host,
    proto: url.protocol.slice(0, -1),
  });
  const read = method === "GET" || method === "HEAD";
  // The Idempotency-Key middleware may have read the body already (Hono keeps it).
  const body = read
    ? undefined
    : c.req.raw.bodyUsed
    ? await readingBody(() => c.req.arrayBuffer())
    : c.req.raw.body;
  const breaker = o.breakers.get(u.breaker);
  // Keyed by the canonical request (canonical path, sorted parameters), so
  // spellings of one query share one bounded entry.
  const canonicalQuery = new URLSearchParams([...url.searchParams].sort()).toString();
  const cacheKey = method === "GET"
    ? await o.cache.key(
      u.breaker,
      u.name,
      principal?.sub ?? "",
      rest.split("?")[0]!,
      canonicalQuery,
    )
    : null;

  let res: Response;
  try {
    res = await breaker.fetch(
      target,
      {
        method,
        headers,
        body,
        // Streams the request body instead of buffering it (required by fetch for streams).
        ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
        redirect: "manual",
        timeoutMs: u.timeoutMs,
        signal: c.req.raw.signal,
      } as RequestInit & { timeoutMs: number },
    );
  } catch (err) {
    if (err instanceof BreakerOpenError) {
      if (read) {
        return degradedRead(c, err, cacheKey ? await o.cache.get(cacheKey) : null, o.now());
      }
      return await queueWrite(c, err, u, o, rest, headers);
    }
    if (err instanceof BreakerThrottledError && err.response) {
      return relay(c, u, err.response);
    }
    if (err instanceof BreakerTimeoutError) {
      return problem(c, {
        code: "upstream-timeout",
        status: 504,
        title: "Upstream timed out",
        detail: `${u.name} did not answer within ${u.timeoutMs}ms`,
        upstream: u.name,
      });
    }
    if (c.req.raw.signal.aborted) throw err; // the client left; nobody reads this answer
    (c.get("log") ?? null)?.warn("upstream unreachable", { upstream: u.name, err });
    return problem(c, {
      code: "upstream-unreachable",
      status: 502,
      title: "Upstream unreachable",
      detail: `Could not reach ${u.name}`,
      upstream: u.name,
    });
  }
  if (
    cacheKey !== null && res.ok && res.body !== null &&
    isCacheableType(res.headers.get("content-type"))
  ) {
    const contentType = res.headers.get("content-type")!;
    const stream = teeForCache(
      res.body,
      o.cache.maxBytes,
      (text) => o.cache.put(cacheKey, { contentType, body: text }),
    );
    return relay(c, u, res, stream);
  }
  return relay(c, u, res);
}

function relay(
  c: Context<AppEnv>,
  u: Upstream,
  res: Response,
  body: ReadableStream<Uint8Array> | null = res.body,
): Response {
  const headers = downstreamResponseHeaders(res.headers, { passSetCookie: u.passSetCookie });
  // A returned Response does not get the headers set with c.header() earlier.
  headers.set("x-request-id", c.get("requestId"));
  return new Response(body, { status: res.status, statusText: res.statusText, headers });
}

async function queueWrite(
  c: Context<AppEnv>,
  err: BreakerOpenError,
  u: Upstream,
  o: UpstreamRouteOptions,
  rest: string,
  headers: Headers,
): Promise<Response> {
  // The breaker refused before fetch touched the body, so it is still readable.
  const bytes = new Uint8Array(await readingBody(() => c.req.arrayBuffer()));
  const clientKey = c.req.header("idempotency-key");
  const principal = c.get("principal")?.sub ?? "anonymous";
  const bodyB64 = bytes.byteLength > 0 ? Buffer.from(bytes).toString("base64") : null;
  // Both keys are scoped by the principal and hashed (bounded length): a
  // client's X-Request-Id or Idempotency-Key alone never decides which task
  // (or upstream write) a request lands on, so two callers sending the same
  // value cannot see or suppress each other's writes.
  const requestKey = clientKey === undefined
    ? `req:${await sha256Hex(
      JSON.stringify([principal, c.get("requestId"), c.req.method, rest, bodyB64]),
    )}`
    : `key:${await sha256Hex(JSON.stringify([principal, clientKey]))}`;
  const payload: QueuedRequest = {
    method: c.req.method as QueuedRequest["method"],
    path: rest,
    headers: [...headers].filter(([name]) => name !== "idempotency-key"),
    body_b64: bodyB64,
    idempotency_key: clientKey ?? `${u.name}:${requestKey}`,
    queued_at: new Date(o.now()).toISOString(),
    ...(principal !== "anonymous" ? { principal } : {}),
    ...(headers.has("x-forwarded-for") ? { client_ip: headers.get("x-forwarded-for")! } : {}),
  };
  c.get("log")?.info("upstream write queued", {
    upstream: u.name,
    breaker: err.breaker,
    state: err.state,
  });
  return await queuedWrite(c, err, {
    queue: o.queue,
    type: forwardTaskType(u.name),
    payload,
    // A retry with the same Idempotency-Key enqueues once; without one, each request is its own.
    idempotencyKey: `upstream:${u.name}:${requestKey}`,
  });
}
