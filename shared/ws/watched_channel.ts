/**
 * A pub/sub subscription that notices when it dies and reopens itself.
 *
 * `redis.subscribe` streams server-sent events through the Upstash REST
 * protocol, and the SDK does not notice a stream that ended (a Redis restart
 * ends it at the bridge): it neither reconnects nor reports an error. So,
 * like the breaker registry, this publishes a heartbeat ping
 * (`{"t":"ping","from":<instance>,"seq":n}`) on the channel every
 * `heartbeatMs` and expects its own echo: two missing echoes, or an error
 * event, mean the stream is dead. It then calls `onLost`, opens a new
 * stream, waits until Redis confirmed it, and calls `onOpen` — the place to
 * catch up on what the dead stream missed. Until `onOpen` succeeds it is
 * retried at every heartbeat.
 *
 * @module
 */
import { bounded } from "../deadline.ts";
import type { Redis } from "@upstash/redis";
import type { Logger } from "../log.ts";

/** Options for {@linkcode WatchedChannel}. */
export interface WatchedChannelOptions {
  redis: Redis;
  channel: string;
  /** Recognises this instance's own pings. */
  instanceId: string;
  /** Every non-ping message, JSON-parsed when it is JSON text. */
  onMessage: (message: unknown) => void;
  /** The stream was found dead (called before it is reopened). */
  onLost?: () => void;
  /**
   * A stream is confirmed (`reopened`: not the first). A throw retries it at
   * the next heartbeat; it must bound its own waits (heartbeats wait for it).
   */
  onOpen?: (reopened: boolean) => Promise<void>;
  /** Names the channel in logs. */
  name: string;
  /** Heartbeat period, ms. @default 1000 */
  heartbeatMs?: number;
  /** Longest wait for a confirmation or a ping, ms. @default 2000 */
  timeoutMs?: number;
  log?: Logger;
}

interface Ping {
  t: "ping";
  from: string;
  seq: number;
}

/** A self-healing subscription to one channel. */
export class WatchedChannel {
  readonly metrics = { resubscribes: 0 };
  readonly #o: WatchedChannelOptions;
  readonly #heartbeatMs: number;
  readonly #timeoutMs: number;
  #sub: ReturnType<Redis["subscribe"]> | null = null;
  #subReady = false;
  #hadStream = false;
  #needOpen = true;
  #pingSent = 0;
  #pingAcked = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking: Promise<void> | null = null;
  #started = false;
  #stopped = false;

  constructor(options: WatchedChannelOptions) {
    if (!options?.redis) throw new TypeError('Watched channel option "redis" is required');
    this.#o = options;
    this.#heartbeatMs = options.heartbeatMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 2000;
    for (const [name, v] of [["heartbeatMs", this.#heartbeatMs], ["timeoutMs", this.#timeoutMs]]) {
      if (!Number.isFinite(v) || (v as number) <= 0) {
        throw new RangeError(`Watched channel option "${name}" must be positive: got ${v}`);
      }
    }
  }

  /** True while a confirmed stream is open and caught up. */
  get healthy(): boolean {
    return this.#subReady && !this.#needOpen;
  }

  /** Subscribes (and runs `onOpen`); never throws: the heartbeat retries. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#timer = setInterval(() => void this.#tick(), this.#heartbeatMs);
    await this.#tick();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#ticking?.catch(() => {});
    await this.#unsubscribe();
  }

  #tick(): Promise<void> {
    if (this.#ticking !== null || this.#stopped) return this.#ticking ?? Promise.resolve();
    this.#ticking = this.#beat().finally(() => this.#ticking = null);
    return this.#ticking;
  }

  async #beat(): Promise<void> {
    try {
      if (!(this.#subReady && this.#pingSent - this.#pingAcked < 2)) {
        if (this.#hadStream && !this.#needOpen) {
          this.metrics.resubscribes++;
          this.#o.log?.warn(`${this.#o.name} stream lost: resubscribing`, {
            pings_sent: this.#pingSent,
            pings_echoed: this.#pingAcked,
          });
        }
        if (!this.#needOpen) this.#o.onLost?.();
        this.#needOpen = true;
        await this.#subscribe();
      }
      if (this.#needOpen) {
        await this.#o.onOpen?.(this.#hadStream);
        this.#needOpen = false;
        this.#hadStream = true;
      }
      if (this.#stopped) return;
      const ping: Ping = { t: "ping", from: this.#o.instanceId, seq: ++this.#pingSent };
      await bounded(
        this.#o.redis.publish(this.#o.channel, JSON.stringify(ping)),
        this.#timeoutMs,
        `${this.#o.name} heartbeat`,
      );
    } catch (err) {
      this.#o.log?.debug(`${this.#o.name} heartbeat failed`, { err });
    }
  }

  #onChannel(raw: unknown): void {
    // With automaticDeserialization off (createRedis) the SDK hands over raw text.
    let message = raw;
    if (typeof raw === "string") {
      try {
        message = JSON.parse(raw);
      } catch {
        // not JSON: passed on as it is
      }
    }
    const ping = message as Partial<Ping> | null;
    if (ping !== null && typeof ping === "object" && ping.t === "ping") {
      if (ping.from === this.#o.instanceId && typeof ping.seq === "number") {
        this.#pingAcked = Math.max(this.#pingAcked, ping.seq);
      }
      return;
    }
    this.#o.onMessage(message);
  }

  /** Opens a new stream; resolves once Redis confirmed the subscription. */
  async #subscribe(): Promise<void> {
    await this.#unsubscribe();
    const sub = this.#o.redis.subscribe<unknown>(this.#o.channel);
    this.#sub = sub;
    this.#pingSent = 0;
    this.#pingAcked = 0;
    const ready = Promise.withResolvers<void>();
    sub.on("subscribe", () => {
      if (this.#sub === sub) this.#subReady = true;
      ready.resolve();
    });
    sub.on("message", ({ message }) => {
      if (this.#sub === sub) this.#onChannel(message);
    });
    sub.on("error", (err) => {
      if (this.#sub === sub) this.#subReady = false;
      ready.reject(err);
    });
    await bounded(ready.promise, this.#timeoutMs, `${this.#o.name} subscription`);
  }

  async #unsubscribe(): Promise<void> {
    const sub = this.#sub;
    this.#sub = null;
    this.#subReady = false;
    if (sub !== null) await sub.unsubscribe().catch(() => {});
  }
}
