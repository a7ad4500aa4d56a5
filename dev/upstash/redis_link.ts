/**
 * The bridge's side of Redis, on node-redis (`redis` in the imports map):
 * one shared connection for `/` and `/pipeline`, dedicated connections for
 * `/multi-exec` and one dedicated connection per SSE subscription.
 *
 * node-redis rather than ioredis: about 1.5× the throughput through the
 * bridge (numbers at the top of `dev/upstash_bridge.ts`), and `sendCommand`
 * is raw: no per-command reply transformers (ioredis turns an `hgetall` reply
 * into an object even through `callBuffer`), bytes for every string through
 * a type mapping, integers as exact text, and all commands of one
 * event-loop tick go out in one write.
 *
 * Connections never queue commands while Redis is away (`disableOfflineQueue`)
 * and never reconnect on their own (`reconnectStrategy: false`); the next
 * request opens a new one instead. A request therefore fails fast with
 * {@linkcode RedisUnavailableError} while Redis is down, the first request
 * after Redis is back succeeds, and no reconnect timer outlives `close()`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createClient, ErrorReply, RESP_TYPES } from "redis";
import type { ParsedCommand } from "./commands.ts";
import { respClientOptions } from "../../shared/redis/tcp_scripts.ts";
import { RedisUnavailableError } from "./errors.ts";
import type { RedisReply } from "./resp_json.ts";

/** Where Redis listens. */
export interface RedisLinkOptions {
  host: string;
  port: number;
  /** redis-server's `requirepass` (dev/redis_server.ts). @default none */
  password?: string;
  /** Give up connecting after this long. @default 2000 */
  connectTimeoutMs?: number;
}

/** A message from a subscription: raw channel and payload bytes. */
export type MessageListener = (message: Uint8Array, channel: Uint8Array) => void;

/** An open subscription on its own connection. */
export interface Subscription {
  /** Resolves once Redis is gone for this subscription (closed by us, or connection lost). */
  readonly ended: Promise<void>;
  /** Closes the connection; Redis drops the subscription with it. Idempotent. */
  close(): Promise<void>;
}

/** Idle dedicated connections kept for the next `/multi-exec`. */
const MAX_IDLE_TRANSACTION_CONNECTIONS = 4;

function newClient(options: RedisLinkOptions) {
  const base = respClientOptions(options.connectTimeoutMs);
  const client = createClient({
    ...base,
    socket: { ...base.socket, host: options.host, port: options.port },
    ...(options.password === undefined ? {} : { password: options.password }),
    commandOptions: {
      ...base.commandOptions,
      typeMapping: {
        [RESP_TYPES.BLOB_STRING]: Buffer,
        [RESP_TYPES.SIMPLE_STRING]: Buffer,
        [RESP_TYPES.NUMBER]: String,
      },
    },
  });
  // Failures reach the callers as rejected commands; without a listener an
  // 'error' event would crash the process.
  client.on("error", () => {});
  return client;
}

type Client = ReturnType<typeof newClient>;

/**
 * Resolves once `client` is gone for good: closed by us ('end'), or
 * terminated after a socket error. node-redis emits no 'end' in the second
 * case (reconnectStrategy false): only an 'error' with `isOpen` already false.
 */
function whenGone(client: Client): Promise<void> {
  return new Promise((resolve) => {
    const onError = () => {
      if (!client.isOpen) gone();
    };
    const gone = () => {
      client.off("error", onError);
      client.off("end", gone);
      resolve();
    };
    client.on("error", onError);
    client.once("end", gone);
  });
}

function unavailable(where: string, err: unknown): RedisUnavailableError {
  const reason = err instanceof Error ? err.message : String(err);
  return new RedisUnavailableError(`Redis at ${where} is unavailable: ${reason}`, { cause: err });
}

async function closeQuietly(client: Client): Promise<void> {
  if (!client.isOpen) return;
  try {
    await client.close();
  } catch {
    client.destroy();
  }
}

/** All Redis connections of one bridge. */
export class RedisLink {
  readonly #options: RedisLinkOptions;
  readonly #where: string;
  #shared: Client | null = null;
  #connecting: Promise<Client> | null = null;
  readonly #idle: Client[] = [];
  readonly #open = new Set<Client>();
  /** Closes started without waiting (a surplus idle connection); close() awaits them. */
  readonly #closing = new Set<Promise<void>>();
  #closed = false;

  constructor(options: RedisLinkOptions) {
    this.#options = options;
    this.#where = `${options.host}:${options.port}`;
  }

  /**
   * Sends `commands` pipelined on the shared connection. Each outcome is the
   * reply, or an `Error` holding Redis's error reply. Throws
   * {@linkcode RedisUnavailableError} when the connection fails, since the
   * caller cannot know which commands ran.
   */
  async exec(commands: readonly ParsedCommand[]): Promise<RedisReply[]> {
    const client = await this.#sharedClient();
    const pending = new Array<Promise<RedisReply>>(commands.length);
    for (let i = 0; i < commands.length; i++) {
      pending[i] = (client.sendCommand(commands[i]!.args) as Promise<RedisReply>).catch(asOutcome);
    }
    const outcomes = await Promise.all(pending);
    for (const outcome of outcomes) {
      if (outcome instanceof Error && !(outcome instanceof ErrorReply)) {
        throw unavailable(this.#where, outcome);
      }
    }
    return outcomes;
  }

  /**
   * Runs `commands` as MULTI … EXEC on a connection no other request uses
   * meanwhile (a shared one would let concurrent transactions nest, SRH #25).
   * Returns EXEC's reply: an array with one element per command (runtime
   * errors as `Error` elements), or an `Error` (EXECABORT) when Redis
   * discarded the transaction.
   */
  async transaction(commands: readonly ParsedCommand[]): Promise<RedisReply[] | Error> {
    const client = await this.#acquireDedicated();
    let healthy = false;
    try {
      const pending = [client.sendCommand(["MULTI"]) as Promise<RedisReply>];
      for (const command of commands) pending.push(client.sendCommand(command.args));
      pending.push(client.sendCommand(["EXEC"]));
      const outcomes = await Promise.all(pending.map((p) => p.catch(asOutcome)));
      for (const outcome of outcomes) {
        if (outcome instanceof Error && !(outcome instanceof ErrorReply)) {
          throw unavailable(this.#where, outcome);
        }
      }
      healthy = true;
      const exec = outcomes[outcomes.length - 1]!;
      if (exec instanceof Error || Array.isArray(exec)) return exec;
      return new Error(`ERR transaction aborted: EXEC answered ${String(exec)}`);
    } finally {
      this.#releaseDedicated(client, healthy);
    }
  }

  /**
   * Subscribes on a new connection to one channel (`psubscribe`: one pattern).
   * Resolves once Redis has confirmed the subscription, so no message
   * published afterwards is lost.
   */
  async subscribe(
    kind: "subscribe" | "psubscribe",
    channel: string,
    listener: MessageListener,
  ): Promise<Subscription> {
    const client = await this.#connect();
    const ended = whenGone(client);
    try {
      if (kind === "subscribe") await client.subscribe(channel, listener, true);
      else await client.pSubscribe(channel, listener, true);
    } catch (err) {
      await this.#forget(client);
      throw unavailable(this.#where, err);
    }
    // A connection that failed has already ended; close() is then a no-op.
    return { ended, close: () => this.#forget(client) };
  }

  /**
   * Opens the shared connection ahead of the first request. Never throws:
   * Redis may come up later, and requests connect on demand.
   */
  async warmUp(): Promise<void> {
    try {
      await this.#sharedClient();
    } catch {
      // reported by the first request instead
    }
  }

  /** Closes every connection, subscriptions included; later calls fail as unavailable. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#shared = null;
    this.#idle.length = 0;
    await Promise.all([...this.#open].map((client) => this.#forget(client)));
    await Promise.all(this.#closing);
  }

  async #sharedClient(): Promise<Client> {
    const current = this.#shared;
    if (current?.isReady) return current;
    if (current !== null) {
      this.#shared = null;
      void this.#forget(current);
    }
    // One connection attempt at a time, shared by all requests waiting for it.
    this.#connecting ??= this.#connect().then((client) => {
      this.#shared = client;
      return client;
    }).finally(() => {
      this.#connecting = null;
    });
    return await this.#connecting;
  }

  async #connect(): Promise<Client> {
    if (this.#closed) throw unavailable(this.#where, new Error("the bridge is closing"));
    const client = newClient(this.#options);
    this.#open.add(client);
    void whenGone(client).then(() => this.#open.delete(client));
    try {
      await client.connect();
    } catch (err) {
      await this.#forget(client);
      throw unavailable(this.#where, err);
    }
    if (this.#closed) {
      await this.#forget(client);
      throw unavailable(this.#where, new Error("the bridge is closing"));
    }
    return client;
  }

  async #acquireDedicated(): Promise<Client> {
    for (let client = this.#idle.pop(); client !== undefined; client = this.#idle.pop()) {
      if (client.isReady) return client;
      void this.#forget(client);
    }
    return await this.#connect();
  }

  #releaseDedicated(client: Client, healthy: boolean): void {
    if (
      healthy && !this.#closed && client.isReady &&
      this.#idle.length < MAX_IDLE_TRANSACTION_CONNECTIONS
    ) {
      this.#idle.push(client);
    } else {
      void this.#forget(client);
    }
  }

  #forget(client: Client): Promise<void> {
    this.#open.delete(client);
    const closing = closeQuietly(client).finally(() => this.#closing.delete(closing));
    this.#closing.add(closing);
    return closing;
  }
}

/** Turns a rejection into an outcome; the callers sort Redis errors from connection errors. */
function asOutcome(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
