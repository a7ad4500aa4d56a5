/**
 * Lua scripts over one TCP (RESP) connection to Redis: the queue's transport
 * for long-running workers when `REDIS_TCP_URL` is set (docs/queue.md,
 * "Transports"). The edge stays on `@upstash/redis` (REST); a worker's claim,
 * ack, fail and lease scripts go straight to Redis, without an HTTP request
 * and a REST gateway per round trip (docs/benchmarks.md has both measured).
 *
 * Same contract as the REST path: EVALSHA, EVAL on NOSCRIPT; replies in the
 * shapes `@upstash/redis` gives with `automaticDeserialization: false`
 * (integers as numbers, bulk strings as strings, nil as null, arrays as
 * arrays); a script error rejects. Built on node-redis (`redis`, already the
 * dev bridge's client: dev/upstash/redis_link.ts says why node-redis):
 *
 * - One shared connection, opened at the first call. All calls of one
 *   event-loop tick go out in one write (node-redis pipelines them), so the
 *   runner's ack + fail + claim of an exchange is still one round trip.
 * - No offline queue and no automatic reconnect: while Redis is away a call
 *   fails at once (the runner treats it as it treats a failed REST call), and
 *   the next call after a failure opens a new connection.
 * - A connection that stops answering (a silent network, a frozen server) is
 *   destroyed once its oldest call is older than `commandTimeoutMs`: replies
 *   come back in order, so one watchdog timer per connection checks the head
 *   of a FIFO of send times instead of one timer per call (why not per
 *   call: {@linkcode respClientOptions}).
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Redis } from "@upstash/redis";
import { createClient, ErrorReply } from "redis";
import { transportCheckKey } from "./keys.ts";

/** Options for {@linkcode TcpScriptTransport}. */
export interface TcpScriptOptions {
  /** `redis://[:password@]host:port` or `rediss://…` (TLS; Upstash's TCP endpoint). */
  url: string;
  /** Give up connecting after this long. @default 2000 */
  connectTimeoutMs?: number;
  /** A connection whose oldest unanswered call is older than this is destroyed. @default 10000 */
  commandTimeoutMs?: number;
}

/** A Lua script bound to a transport: one EVALSHA (EVAL on NOSCRIPT) per call. */
export type ScriptCall = (keys: string[], args: string[]) => Promise<unknown>;

/** A channel subscription over TCP ({@linkcode TcpScriptTransport.subscribe}). */
export interface TcpSubscription {
  on(type: "message", fn: () => void): void;
  on(type: "error", fn: (err: Error) => void): void;
  unsubscribe(): Promise<void>;
}

/** Raised when a call cannot reach Redis over TCP (connect failure, lost or silent connection). */
export class RedisTcpUnavailableError extends Error {
  override name = "RedisTcpUnavailableError";
}

/**
 * The node-redis settings every connection of the platform shares (this
 * transport, and the dev bridge's link: dev/upstash/redis_link.ts):
 * - RESP2: the reply shapes of the REST protocol (RESP3 maps, doubles and
 *   booleans have no Upstash JSON form);
 * - no reconnects and no offline queue: a call fails fast while Redis is
 *   away, and the next one opens a new connection;
 * - no per-command timeout: node-redis arms an AbortSignal.timeout per
 *   command, which tripled the CPU of a pipelined command (docs/benchmarks.md,
 *   design measurements); callers bound their waits themselves.
 */
export function respClientOptions(connectTimeoutMs = 2000) {
  return {
    RESP: 2 as const,
    socket: { connectTimeout: connectTimeoutMs, reconnectStrategy: false as const, noDelay: true },
    disableOfflineQueue: true,
    disableClientInfo: true,
    maintNotifications: "disabled" as const,
    commandOptions: { timeout: 0 },
  };
}

function newClient(options: TcpScriptOptions) {
  const client = createClient({ url: options.url, ...respClientOptions(options.connectTimeoutMs) });
  // Failures reach the callers as rejected calls; without a listener an
  // 'error' event would end the process.
  client.on("error", () => {});
  return client;
}

type Client = ReturnType<typeof newClient>;

/** One open connection and the send times of its unanswered calls, oldest first. */
interface Link {
  client: Client;
  sent: number[];
  /** Index of the oldest unanswered entry of `sent` (entries before it are answered). */
  head: number;
  watchdog?: ReturnType<typeof setInterval>;
}

/** Scripts over TCP; `close()` ends the connection (idempotent). */
export class TcpScriptTransport {
  /** Tells this transport from an `@upstash/redis` client (shared/redis/scripts.ts). */
  readonly kind = "tcp" as const;
  readonly #options: TcpScriptOptions;
  readonly #timeoutMs: number;
  #link: Link | null = null;
  #connecting: Promise<Link> | null = null;
  #closed = false;

  constructor(options: TcpScriptOptions) {
    this.#options = options;
    this.#timeoutMs = options.commandTimeoutMs ?? 10_000;
  }

  /** Binds `source` (includes already resolved); the SHA1 is computed once, here. */
  script(source: string): ScriptCall {
    const sha = createHash("sha1").update(source, "utf8").digest("hex");
    return async (keys, args) => {
      const link = this.#link ?? await this.#connect();
      const reply = await this.#send(link, ["EVALSHA", sha, String(keys.length), ...keys, ...args])
        .catch((err) => {
          if (!(err instanceof ErrorReply) || !err.message.startsWith("NOSCRIPT")) throw err;
          // A restarted or flushed Redis: send the source once; later calls find it.
          return this.#send(link, ["EVAL", source, String(keys.length), ...keys, ...args]);
        });
      return reply;
    };
  }

  /**
   * Subscribes to `channel` on a connection of its own (a subscribed RESP
   * connection cannot run scripts). Like the REST SDK's subscriber: "message"
   * listeners get each message, "error" listeners hear once that the
   * subscription is gone (connect failure or lost connection; it does not
   * reconnect: the caller opens a new one, as the runner does).
   */
  subscribe(channel: string): TcpSubscription {
    const listeners = { message: [] as (() => void)[], error: [] as ((err: Error) => void)[] };
    const client = newClient(this.#options);
    let closed = false;
    const fail = (err: unknown) => {
      if (closed) return;
      closed = true;
      const error = new RedisTcpUnavailableError(
        `Redis (TCP) subscription lost: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
      for (const fn of listeners.error) fn(error);
      client.destroy();
    };
    client.on("error", (err) => {
      if (!client.isOpen) fail(err);
    });
    client.connect()
      .then(() => client.subscribe(channel, () => listeners.message.forEach((fn) => fn())))
      .catch(fail);
    return {
      on(type: "message" | "error", fn: never) {
        (listeners[type] as unknown[]).push(fn);
      },
      unsubscribe: async () => {
        closed = true;
        if (client.isOpen) await client.close().catch(() => client.destroy());
      },
    } as TcpSubscription;
  }

  /** PING over the connection (opening it if needed): readiness checks. */
  async ping(): Promise<string> {
    const link = this.#link ?? await this.#connect();
    return String(await this.#send(link, ["PING"]));
  }

  /** `await using` closes it. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Closes the connection; later calls fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const link = this.#link ?? await this.#connecting?.catch(() => null) ?? null;
    this.#link = null;
    if (link) await this.#drop(link, true);
  }

  #send(link: Link, command: string[]): Promise<unknown> {
    link.sent.push(performance.now());
    const done = () => {
      link.head++;
      // Compact now and then; the array never grows past the calls in flight.
      if (link.head > 1024 && link.head * 2 > link.sent.length) {
        link.sent.splice(0, link.head);
        link.head = 0;
      }
    };
    return link.client.sendCommand(command).then(
      (reply) => {
        done();
        return reply;
      },
      (err) => {
        done();
        if (!link.client.isOpen && this.#link === link) this.#link = null;
        if (err instanceof ErrorReply) throw err; // the script's own error
        throw new RedisTcpUnavailableError(
          `Redis (TCP) is unavailable: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      },
    );
  }

  #connect(): Promise<Link> {
    if (this.#closed) {
      return Promise.reject(new RedisTcpUnavailableError("Redis (TCP) transport is closed"));
    }
    this.#connecting ??= (async () => {
      const client = newClient(this.#options);
      try {
        await client.connect();
      } catch (err) {
        client.destroy();
        throw new RedisTcpUnavailableError(
          `Redis (TCP) is unavailable: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      }
      const link: Link = { client, sent: [], head: 0 };
      link.watchdog = setInterval(() => {
        const oldest = link.sent[link.head];
        if (oldest !== undefined && performance.now() - oldest > this.#timeoutMs) {
          // Silent connection: fail every call on it; the next call reconnects.
          void this.#drop(link, false);
        }
      }, Math.max(50, Math.floor(this.#timeoutMs / 4)));
      client.on("error", () => {
        if (!client.isOpen) void this.#drop(link, false);
      });
      if (this.#closed) {
        await this.#drop(link, true);
        throw new RedisTcpUnavailableError("Redis (TCP) transport is closed");
      }
      this.#link = link;
      return link;
    })().finally(() => this.#connecting = null);
    return this.#connecting;
  }

  async #drop(link: Link, graceful: boolean): Promise<void> {
    clearInterval(link.watchdog);
    if (this.#link === link) this.#link = null;
    if (!link.client.isOpen) return;
    if (graceful) {
      try {
        await link.client.close();
        return;
      } catch {
        // fall through: destroy
      }
    }
    link.client.destroy();
  }
}

/**
 * KEYS[1] the probe key; ARGV[1] its value. Sets it for a minute (it expires
 * on its own). Returns 1.
 */
const SET_PROBE = `redis.call("SET", KEYS[1], ARGV[1], "PX", 60000)
return 1`;

/**
 * True when `tcp` and the REST client `rest` reach the same Redis: a value
 * written over TCP is read back over REST. A worker whose REDIS_TCP_URL
 * points elsewhere would claim from one queue while the edge enqueues into
 * another, so the worker refuses to start instead (workers/main.ts).
 */
export async function sameRedis(rest: Redis, tcp: TcpScriptTransport): Promise<boolean> {
  const key = transportCheckKey();
  const value = crypto.randomUUID();
  await tcp.script(SET_PROBE)([key], [value]);
  return (await rest.get<string>(key)) === value;
}
