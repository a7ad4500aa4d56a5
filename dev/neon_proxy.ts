/**
 * A local stand-in for Neon's WebSocket proxy: `ws://127.0.0.1:PORT/v1?address=host:port`
 * becomes a TCP connection to PostgreSQL, and every binary WebSocket message is
 * raw PostgreSQL wire protocol in either direction (see docs/reference/neon-local.md §4).
 * Only the destinations in `allow` can be reached, so it is not an open proxy.
 *
 * Browsers: any web page may open a WebSocket to 127.0.0.1, and would then
 * speak PostgreSQL's protocol to the local database. Browsers always send
 * `Origin`; the Neon driver under Deno or Node does not. So a request with an
 * `Origin` outside `origins` (empty by default: every browser) is refused with
 * 403 before the upgrade. Client messages larger than `maxMessageBytes` close
 * the pipe with 1009.
 *
 * @module
 */

/** Options for {@linkcode startNeonProxy}. */
export interface NeonProxyOptions {
  /** Exact `host:port` destinations clients may ask for, e.g. `["127.0.0.1:54321"]`. */
  allow: string[];
  /** Port on 127.0.0.1; 0 or omitted picks a free one. @default 0 */
  port?: number;
  /** `Origin` values allowed to connect (browsers). @default [] (none) */
  origins?: string[];
  /** Largest WebSocket message from a client, bytes. @default 16_777_216 */
  maxMessageBytes?: number;
}

/** A running proxy; `await using` closes it. */
export interface NeonProxy extends AsyncDisposable {
  /** Port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** `127.0.0.1:PORT/v1`: the string form of `neonConfig.wsProxy`. */
  readonly wsProxy: string;
  /** Number of live WebSocket↔TCP pipes. */
  readonly openPipes: number;
  /** Stops listening and closes every live pipe; resolves when all are gone. */
  close(): Promise<void>;
}

/** Largest chunk read from PostgreSQL and sent as one WebSocket message (as Neon's wsproxy). */
const READ_SIZE = 32 * 1024;

function parseAddress(address: string): { hostname: string; port: number } {
  const colon = address.lastIndexOf(":");
  const port = Number(address.slice(colon + 1));
  const hostname = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TypeError(`Cannot proxy to "${address}": expected "host:port"`);
  }
  return { hostname, port };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/**
 * Joins one upgraded WebSocket to a TCP connection. Resolves once both sides
 * are closed. `abort` lets the proxy tear the pipe down from outside.
 */
function pipe(
  socket: WebSocket,
  destination: { hostname: string; port: number },
  maxMessageBytes: number,
): { done: Promise<void>; abort: () => void } {
  socket.binaryType = "arraybuffer";
  let closing = false;
  const tcp = Deno.connect({ ...destination, transport: "tcp" }).then((conn) => {
    // Each WebSocket frame is one protocol message batch: send it now. With
    // Nagle's algorithm a small write waits for the ACK of the previous one,
    // which PostgreSQL delays (tens of ms per query: docs/benchmarks.md, design measurements).
    conn.setNoDelay(true);
    return conn;
  });
  // Every write waits for the connect, so the client's first bytes (the
  // StartupMessage, sent as soon as the socket opens) are queued, not lost.
  let writes: Promise<unknown> = tcp.catch(() => {}); // a failed connect is handled by `reads`
  const wsClosed = Promise.withResolvers<void>();
  // In Deno 2.9.6 close() before "open" (upgrade still in flight) leaves both
  // ends hanging, so the close is deferred to the "open" event.
  let closeWhenOpen: { code: number; reason: string } | null = null;

  const closeWebSocket = (code: number, reason: string) => {
    if (socket.readyState === WebSocket.CONNECTING) closeWhenOpen = { code, reason };
    else if (socket.readyState === WebSocket.OPEN) socket.close(code, reason);
  };
  const closeTcp = () => {
    // After the queued writes, so a final Terminate message still reaches PostgreSQL.
    writes = writes.finally(() => tcp.then((conn) => conn.close()).catch(() => {}));
  };
  const shutdown = (code: number, reason: string) => {
    if (closing) return;
    closing = true;
    closeWebSocket(code, reason);
    closeTcp();
  };

  socket.addEventListener("open", () => {
    if (closeWhenOpen) socket.close(closeWhenOpen.code, closeWhenOpen.reason);
  });
  socket.addEventListener("message", (event) => {
    if (closing) return;
    if (!(event.data instanceof ArrayBuffer)) {
      shutdown(1003, "Only binary frames are supported");
      return;
    }
    if (event.data.byteLength > maxMessageBytes) {
      shutdown(1009, "Message too large");
      return;
    }
    const bytes = new Uint8Array(event.data);
    writes = writes
      .then(() => tcp)
      .then((conn) => writeAll(conn, bytes))
      .catch(() => shutdown(1011, "Write to the database failed"));
  });
  socket.addEventListener("close", () => {
    shutdown(1000, "");
    wsClosed.resolve();
  });
  socket.addEventListener("error", () => shutdown(1011, "WebSocket error"));

  const reads = (async () => {
    let conn: Deno.Conn;
    try {
      conn = await tcp;
    } catch {
      shutdown(1011, "Cannot connect to the database");
      return;
    }
    const buffer = new Uint8Array(READ_SIZE);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null || socket.readyState !== WebSocket.OPEN) break;
        socket.send(buffer.slice(0, n));
      }
    } catch {
      // closed locally (shutdown) or reset by the server; either way the pipe ends
    }
    shutdown(1000, "TCP connection is closed");
  })();

  return {
    done: Promise.all([reads, wsClosed.promise, writes]).then(() => writes).then(() => {}),
    abort: () => shutdown(1001, "Proxy is closing"),
  };
}

/**
 * Starts the proxy on 127.0.0.1. Requests for another path get 404, requests
 * for an address outside `allow` get 403 before any upgrade, and other
 * non-WebSocket requests get 426.
 *
 * @example Point the Neon driver at it
 * ```ts
 * await using proxy = await startNeonProxy({ allow: [`127.0.0.1:${pg.port}`] });
 * const pool = createPool({ databaseUrl: pg.databaseUrl, wsProxy: proxy.wsProxy,
 *   useSecureWebSocket: false, pipelineConnect: false });
 * ```
 */
export async function startNeonProxy(options: NeonProxyOptions): Promise<NeonProxy> {
  for (const address of options.allow) parseAddress(address);
  const allow = new Set(options.allow);
  const origins = new Set(options.origins ?? []);
  const maxMessageBytes = options.maxMessageBytes ?? 16_777_216;
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes <= 0) {
    throw new TypeError(
      `Neon proxy maxMessageBytes must be a positive integer: ${maxMessageBytes}`,
    );
  }
  const pipes = new Set<ReturnType<typeof pipe>>();

  let closed: Promise<void> | null = null;

  const listening = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: options.port ?? 0,
    // Also silences the default "Listening on ..." line.
    onListen: (addr) => listening.resolve(addr),
  }, (request) => {
    const url = new URL(request.url);
    const origin = request.headers.get("origin");
    if (origin !== null && !origins.has(origin)) {
      return new Response(`Origin "${origin}" is not allowed\n`, { status: 403 });
    }
    if (url.pathname !== "/v1") return new Response("Not found\n", { status: 404 });
    const address = url.searchParams.get("address") ?? "";
    if (!allow.has(address)) {
      return new Response(`Address "${address}" is not allowed\n`, { status: 403 });
    }
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("Expected a WebSocket upgrade\n", { status: 426 });
    }
    // A pipe opened while close() runs would escape it.
    if (closed) return new Response("Proxy is closing\n", { status: 503 });
    const { socket, response } = Deno.upgradeWebSocket(request);
    const live = pipe(socket, parseAddress(address), maxMessageBytes);
    pipes.add(live);
    live.done.finally(() => pipes.delete(live));
    return response;
  });
  const { port } = await listening.promise;
  const close = () => {
    closed ??= (async () => {
      const live = [...pipes];
      for (const p of live) p.abort();
      await Promise.all([server.shutdown(), ...live.map((p) => p.done)]);
    })();
    return closed;
  };
  return {
    port,
    wsProxy: `127.0.0.1:${port}/v1`,
    get openPipes() {
      return pipes.size;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
