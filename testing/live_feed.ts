/**
 * Fixtures of the live-feed hub suites: an edge instance (the real app
 * with a hub) on a loopback port, a WebSocket test client that records every
 * frame, token minting, and a raw TCP client for peers that misbehave (never
 * read, never answer pings).
 *
 * @module
 */
import type { Config } from "../shared/config/mod.ts";
import type { Deps } from "../shared/deps.ts";
import { testNamespace } from "./namespace.ts";
import { waitForValue, waitUntil } from "./wait.ts";
import { mintDevToken } from "../dev/token.ts";
import { createApp } from "../edge/app.ts";
import type { Role } from "../edge/auth/principal.ts";
import { createLiveHub, type LiveHub, type LiveHubOptions } from "../edge/ws/hub.ts";

/** A running edge app with a live hub. */
export interface Instance extends AsyncDisposable {
  hub: LiveHub;
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  stop(): Promise<void>;
}

/** Test defaults: fast heartbeats; everything else as in production unless overridden. */
export async function startInstance(
  deps: Deps,
  options: Partial<LiveHubOptions> & { namespace: string; instanceId: string },
): Promise<Instance> {
  const hub = createLiveHub({
    redis: deps.redis,
    log: deps.log,
    heartbeatMs: 100,
    busTimeoutMs: 1000,
    ...options,
  });
  await hub.start();
  const app = createApp(deps, { live: hub });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await hub.stop();
    await server.shutdown();
  };
  return {
    hub,
    port: server.addr.port,
    url: `http://127.0.0.1:${server.addr.port}`,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Mints a token for `sub`; `expiredMs` > 0 makes one that expired that long ago. */
export function token(
  auth: Config["auth"],
  sub: string,
  options: { roles?: Role[]; ttlS?: number; expiredMs?: number } = {},
): Promise<string> {
  if (options.expiredMs) {
    // Still inside the verifier's clock tolerance (30 s in tests).
    return mintDevToken(auth, {
      sub,
      roles: options.roles,
      ttlS: 1,
      now: () => Date.now() - 1000 - options.expiredMs!,
    });
  }
  return mintDevToken(auth, { sub, roles: options.roles, ttlS: options.ttlS ?? 3600 });
}

/** A frame as received. */
export type Frame = Record<string, unknown> & { type: string };

/** How a client presents its token. */
export type Via = "protocol" | "query" | "header";

/** A WebSocket client that records frames. */
export class TestClient {
  readonly frames: Frame[] = [];
  readonly ws: WebSocket;
  readonly closed: Promise<CloseEvent>;
  #closeEvent: CloseEvent | null = null;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    const closed = Promise.withResolvers<CloseEvent>();
    this.closed = closed.promise;
    ws.onmessage = (e) => this.frames.push(JSON.parse(e.data as string));
    ws.onclose = (e) => {
      this.#closeEvent = e;
      closed.resolve(e);
    };
  }

  /** Opens a socket and waits for the `welcome` frame. */
  static async connect(
    instance: { port: number },
    tok: string,
    options: { via?: Via; topics?: string[] } = {},
  ): Promise<TestClient> {
    const via = options.via ?? "protocol";
    const q = new URLSearchParams();
    if (via === "query") q.set("access_token", tok);
    if (options.topics) q.set("topics", options.topics.join(","));
    const url = `ws://127.0.0.1:${instance.port}/v1/ws${q.size ? `?${q}` : ""}`;
    const ws = via === "protocol"
      ? new WebSocket(url, ["bearer", tok])
      : via === "header"
      ? new WebSocket(url, { headers: { Authorization: `Bearer ${tok}` } })
      : new WebSocket(url);
    const client = new TestClient(ws);
    const opened = Promise.withResolvers<void>();
    ws.onopen = () => opened.resolve();
    ws.onerror = () => opened.reject(new Error("WebSocket failed to open"));
    await opened.promise;
    await client.waitFor((f) => f.type === "welcome", "the welcome frame");
    return client;
  }

  get clientId(): string {
    return this.frames.find((f) => f.type === "welcome")!.client_id as string;
  }

  get closeEvent(): CloseEvent | null {
    return this.#closeEvent;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** `message` frames, optionally of one topic. */
  messages(topic?: string): Frame[] {
    return this.frames.filter((f) => f.type === "message" && (!topic || f.topic === topic));
  }

  /** The first frame (already received or future) matching `match`. */
  waitFor(match: (f: Frame) => boolean, what = "a frame", timeoutMs = 3000): Promise<Frame> {
    return waitForValue(() => this.frames.find(match), {
      timeoutMs,
      what,
      detail: () => JSON.stringify(this.frames.slice(-5)),
    });
  }

  /** Subscribes and waits for every `subscribed` (or `error`) answer. */
  async subscribe(topics: string[], since?: unknown): Promise<Frame[]> {
    const seen = this.frames.length;
    this.send(
      since === undefined ? { type: "subscribe", topics } : { type: "subscribe", topics, since },
    );
    const answers = () =>
      this.frames.slice(seen).filter((f) =>
        (f.type === "subscribed" || f.type === "error") && topics.includes(f.topic as string)
      );
    await waitUntil(() => answers().length >= topics.length, { what: `answers for ${topics}` });
    return answers();
  }

  async close(): Promise<void> {
    if (this.#closeEvent === null && this.ws.readyState !== WebSocket.CLOSED) this.ws.close();
    await this.closed;
  }
}

/** A raw TCP peer that did the WebSocket handshake (and may then misbehave). */
export interface RawPeer {
  conn: Deno.TcpConn;
  status: number;
  head: string;
  /** The response body of a refused upgrade (by its Content-Length). */
  body(): Promise<string>;
  /** Reads every frame until the server's close frame; returns its code. */
  readUntilClose(timeoutMs?: number): Promise<{ code: number; reason: string; frames: number }>;
  close(): void;
}

/** `buf` with the next bytes read from `conn` appended; null when the peer closed. */
async function readMore(
  conn: Deno.Conn,
  buf: Uint8Array,
  chunk = new Uint8Array(4096),
): Promise<Uint8Array<ArrayBuffer> | null> {
  const n = await conn.read(chunk);
  if (n === null) return null;
  const next = new Uint8Array(buf.length + n);
  next.set(buf);
  next.set(chunk.subarray(0, n), buf.length);
  return next;
}

/** Sends an upgrade request by hand; does not read anything after the response head. */
export async function rawUpgrade(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<RawPeer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    // The default, unless the test sends its own spelling.
    ...("Upgrade" in headers ? [] : ["Upgrade: websocket"]),
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  let buf = new Uint8Array(0);
  let end = -1;
  while (end < 0) {
    const more = await readMore(conn, buf);
    if (more === null) break;
    buf = more;
    end = new TextDecoder().decode(buf).indexOf("\r\n\r\n");
  }
  const head = new TextDecoder().decode(buf.subarray(0, Math.max(end, 0)));
  let pending = buf.subarray(end + 4);
  const status = Number(head.split(" ")[1]);
  let closed = false;
  return {
    conn,
    status,
    head,
    async body() {
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      while (pending.length < length) {
        const more = await readMore(conn, pending);
        if (more === null) break;
        pending = more;
      }
      return new TextDecoder().decode(pending.subarray(0, length));
    },
    async readUntilClose(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let frames = 0;
      const chunk = new Uint8Array(1 << 16);
      while (Date.now() < deadline) {
        // Parse every complete frame in `pending`.
        while (pending.length >= 2) {
          const opcode = pending[0]! & 0x0f;
          let len = pending[1]! & 0x7f;
          let at = 2;
          if (len === 126) {
            if (pending.length < 4) break;
            len = (pending[2]! << 8) | pending[3]!;
            at = 4;
          } else if (len === 127) {
            if (pending.length < 10) break;
            len = Number(new DataView(pending.buffer, pending.byteOffset + 2, 8).getBigUint64(0));
            at = 10;
          }
          if (pending.length < at + len) break;
          const payload = pending.subarray(at, at + len);
          pending = pending.subarray(at + len);
          frames++;
          if (opcode === 8) {
            const code = payload.length >= 2 ? (payload[0]! << 8) | payload[1]! : 1005;
            return { code, reason: new TextDecoder().decode(payload.subarray(2)), frames };
          }
        }
        const more = await readMore(conn, pending, chunk);
        if (more === null) break;
        pending = more;
      }
      throw new Error(`no close frame within ${timeoutMs} ms (${frames} frames read)`);
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch {
        // already closed
      }
    },
  };
}

/** A fresh namespace plus two instances "A" and "B" on it. */
export async function startPair(
  deps: [Deps, Deps],
  options: Partial<LiveHubOptions> = {},
): Promise<[Instance, Instance] & AsyncDisposable & { namespace: string }> {
  const namespace = testNamespace();
  const a = await startInstance(deps[0], { ...options, namespace, instanceId: "A" });
  const b = await startInstance(deps[1], { ...options, namespace, instanceId: "B" });
  const pair = Object.assign([a, b], { namespace }) as
    & [Instance, Instance]
    & AsyncDisposable
    & { namespace: string };
  pair[Symbol.asyncDispose] = async () => {
    await Promise.all([a.stop(), b.stop()]);
  };
  return pair;
}
