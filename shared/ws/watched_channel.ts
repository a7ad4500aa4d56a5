/**
 * A pub/sub subscription that notices when it dies and reopens itself.
 *
 * The SDK does not notice a stream that ended, so, like the breaker registry,
 * this pings its stream ({@linkcode PingedStream}) every `heartbeatMs` and
 * expects its own echo: two missing echoes, or an error event, mean the
 * stream is dead. It then calls `onLost`, opens a new
 * stream, waits until Redis confirmed it, and calls `onOpen` — the place to
 * catch up on what the dead stream missed. Until `onOpen` succeeds it is
 * retried at every heartbeat.
 *
 * @module
 */
import { bounded } from "../deadline.ts";
import type { Redis } from "@upstash/redis";
import type { Logger } from "../log.ts";
import { PingedStream } from "../redis/pinged_stream.ts";

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

/** A self-healing subscription to one channel. */
export class WatchedChannel {
  readonly metrics = { resubscribes: 0 };
  readonly #o: WatchedChannelOptions;
  readonly #heartbeatMs: number;
  readonly #timeoutMs: number;
  readonly #stream: PingedStream;
  #hadStream = false;
  #needOpen = true;
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
    this.#stream = new PingedStream({
      redis: options.redis,
      channel: options.channel,
      instanceId: options.instanceId,
      onMessage: options.onMessage,
      confirmTimeoutMs: this.#timeoutMs,
      notConfirmed: () =>
        new Error(`${options.name} subscription took longer than ${this.#timeoutMs}ms`),
    });
  }

  /** True while a confirmed stream is open and caught up. */
  get healthy(): boolean {
    return this.#stream.confirmed && !this.#needOpen;
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
    await this.#stream.unsubscribe();
  }

  #tick(): Promise<void> {
    if (this.#ticking !== null || this.#stopped) return this.#ticking ?? Promise.resolve();
    this.#ticking = this.#beat().finally(() => this.#ticking = null);
    return this.#ticking;
  }

  async #beat(): Promise<void> {
    try {
      if (!this.#stream.alive) {
        if (this.#hadStream && !this.#needOpen) {
          this.metrics.resubscribes++;
          this.#o.log?.warn(`${this.#o.name} stream lost: resubscribing`, {
            pings_sent: this.#stream.pingsSent,
            pings_echoed: this.#stream.pingsEchoed,
          });
        }
        if (!this.#needOpen) this.#o.onLost?.();
        this.#needOpen = true;
        await this.#stream.subscribe();
      }
      if (this.#needOpen) {
        await this.#o.onOpen?.(this.#hadStream);
        this.#needOpen = false;
        this.#hadStream = true;
      }
      if (this.#stopped) return;
      await bounded(this.#stream.ping(), this.#timeoutMs, `${this.#o.name} heartbeat`);
    } catch (err) {
      this.#o.log?.debug(`${this.#o.name} heartbeat failed`, { err });
    }
  }
}
