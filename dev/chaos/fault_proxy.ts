/**
 * A small TCP fault proxy for the chaos campaign and for tests: it listens on
 * a loopback port, forwards to one upstream (redis-server, PostgreSQL) and
 * injects a fault chosen at run time, like Toxiproxy's toxics:
 *
 * - `pass`: bytes flow unchanged;
 * - `latency`: every chunk is delayed by `ms` (order kept per direction);
 * - `blackhole`: connections stay open but nothing is forwarded either way
 *   (a partition: the client waits for its own timeout); when the fault is
 *   lifted, the connections that lost bytes are closed (their streams are
 *   broken, as Toxiproxy's `timeout` toxic closes them), new ones work;
 * - `reset`: every open connection is closed now and new ones are closed as
 *   soon as they are accepted (the upstream "went away").
 *
 * @example
 * ```ts
 * await using proxy = await startFaultProxy({ upstreamPort: redis.port });
 * proxy.setFault({ kind: "blackhole" });
 * ```
 *
 * @module
 */

/** A fault the proxy injects. */
export type Fault =
  | { kind: "pass" }
  | { kind: "latency"; ms: number }
  | { kind: "blackhole" }
  | { kind: "reset" };

/** Options of {@linkcode startFaultProxy}. */
export interface FaultProxyOptions {
  upstreamPort: number;
  /** Loopback only: the proxy is a test tool. @default "127.0.0.1" */
  upstreamHost?: string;
  /** 0 or omitted picks a free port. @default 0 */
  port?: number;
}

/** A running proxy. */
export interface FaultProxy extends AsyncDisposable {
  readonly port: number;
  readonly fault: Fault;
  /** Open client connections. */
  readonly connections: number;
  setFault(fault: Fault): void;
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

function checkFault(fault: Fault): Fault {
  if (fault.kind === "latency" && !(Number.isFinite(fault.ms) && fault.ms >= 0)) {
    throw new RangeError(`Cannot inject latency: ms must be ≥ 0, got ${fault.ms}`);
  }
  if (!["pass", "latency", "blackhole", "reset"].includes(fault.kind)) {
    throw new RangeError(`Unknown fault kind ${JSON.stringify((fault as Fault).kind)}`);
  }
  return fault;
}

/** Starts the proxy on 127.0.0.1. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstreamHost = options.upstreamHost ?? "127.0.0.1";
  if (!LOOPBACK.has(upstreamHost)) {
    throw new RangeError(`Cannot proxy ${upstreamHost}: the fault proxy forwards to loopback only`);
  }
  if (!Number.isInteger(options.upstreamPort) || options.upstreamPort <= 0) {
    throw new RangeError(`Cannot proxy: upstreamPort is ${options.upstreamPort}`);
  }
  const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
  const open = new Set<{ client: Deno.Conn; upstream: Deno.Conn | null }>();
  const pumps = new Set<Promise<void>>();
  let fault: Fault = { kind: "pass" };
  let closed = false;

  const closeQuietly = (conn: Deno.Conn | null) => {
    try {
      conn?.close();
    } catch {
      // already closed
    }
  };
  const dropAll = () => {
    for (const pair of open) {
      closeQuietly(pair.client);
      closeQuietly(pair.upstream);
    }
    open.clear();
  };

  /** Copies `from` to `to` through the current fault; ends both on EOF or error. */
  async function pump(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    let chain = Promise.resolve();
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        const f = fault;
        if (f.kind === "blackhole") continue;
        if (f.kind === "reset") break;
        if (f.kind === "latency" && f.ms > 0) {
          const due = performance.now() + f.ms;
          // Handled here: the read loop may already have ended (the other side closed) and
          // never await this chain again, so a failed delayed write would go unhandled.
          chain = chain.then(async () => {
            const wait = due - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            await writeAll(to, chunk);
          }).catch(() => {
            closeQuietly(from);
            closeQuietly(to);
          });
        } else {
          await chain;
          await writeAll(to, chunk);
        }
      }
      await chain;
    } catch {
      // a side closed: end both below
    } finally {
      closeQuietly(from);
      closeQuietly(to);
    }
  }

  async function handle(client: Deno.Conn): Promise<void> {
    const pair = { client, upstream: null as Deno.Conn | null };
    if (fault.kind === "reset" || closed) return closeQuietly(client);
    open.add(pair);
    try {
      pair.upstream = await Deno.connect({ hostname: upstreamHost, port: options.upstreamPort });
    } catch {
      open.delete(pair);
      return closeQuietly(client);
    }
    if (!open.has(pair)) return closeQuietly(pair.upstream);
    await Promise.all([pump(client, pair.upstream), pump(pair.upstream, client)]);
    open.delete(pair);
  }

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // listener closed
      }
      const p = handle(conn).catch(() => {});
      pumps.add(p);
      p.finally(() => pumps.delete(p));
    }
  })();

  const close = async () => {
    if (closed) return;
    closed = true;
    listener.close();
    dropAll();
    await accepting;
    await Promise.all([...pumps]);
  };

  return await Promise.resolve({
    port: (listener.addr as Deno.NetAddr).port,
    get fault() {
      return fault;
    },
    get connections() {
      return open.size;
    },
    setFault(next: Fault) {
      const was = fault;
      fault = checkFault(next);
      if (fault.kind === "reset" || (was.kind === "blackhole" && fault.kind !== "blackhole")) {
        dropAll();
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  });
}

async function writeAll(conn: Deno.Conn, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += await conn.write(chunk.subarray(off));
}
