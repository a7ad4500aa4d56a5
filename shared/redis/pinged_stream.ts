/**
 * One pub/sub stream whose liveness this instance can check. The SDK's
 * `redis.subscribe` streams server-sent events through the Upstash REST
 * protocol and does not notice a stream that ended (a Redis restart ends it
 * at the bridge), so the owner publishes pings (`{"t":"ping","from":<instance>,
 * "seq":n}`) on the channel and counts its own echoes: a confirmed stream that
 * echoed all but at most one ping is alive. Used by the breaker registry's
 * event channel and by {@linkcode WatchedChannel} (shared/ws/), which add
 * their own heartbeat and resubscribe policies on top.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { withDeadline } from "../deadline.ts";

/** Options for {@linkcode PingedStream}. */
export interface PingedStreamOptions {
  redis: Redis;
  channel: string;
  /** Recognises this instance's own pings. */
  instanceId: string;
  /** Every message but pings, JSON-parsed when it is JSON text (else the raw value). */
  onMessage: (message: unknown) => void;
  /** Longest wait for Redis to confirm a subscription, ms. */
  confirmTimeoutMs: number;
  /** The error a subscription that was not confirmed in time rejects with. */
  notConfirmed: () => Error;
}

interface Ping {
  t: "ping";
  from: string;
  seq: number;
}

/** A subscription with ping-echo accounting. */
export class PingedStream {
  readonly #o: PingedStreamOptions;
  #sub: ReturnType<Redis["subscribe"]> | null = null;
  #subReady = false;
  #pingSent = 0;
  #pingAcked = 0;

  constructor(options: PingedStreamOptions) {
    this.#o = options;
  }

  /** Redis confirmed the current stream (and it reported no error since). */
  get confirmed(): boolean {
    return this.#subReady;
  }

  /** A confirmed stream that echoed all but at most one of this instance's pings. */
  get alive(): boolean {
    return this.#subReady && this.#pingSent - this.#pingAcked < 2;
  }

  /** Pings sent on the current stream. */
  get pingsSent(): number {
    return this.#pingSent;
  }

  /** Highest ping of the current stream echoed back. */
  get pingsEchoed(): number {
    return this.#pingAcked;
  }

  /** Publishes the next ping; its echo proves the stream alive. The caller bounds the wait. */
  ping(): Promise<number> {
    const ping: Ping = { t: "ping", from: this.#o.instanceId, seq: ++this.#pingSent };
    return this.#o.redis.publish(this.#o.channel, JSON.stringify(ping));
  }

  /** Opens a new stream (closing the current one); resolves once Redis confirmed it. */
  async subscribe(): Promise<void> {
    await this.unsubscribe();
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
      if (this.#sub === sub) this.#receive(message);
    });
    sub.on("error", (err) => {
      if (this.#sub === sub) this.#subReady = false;
      ready.reject(err);
    });
    await withDeadline(ready.promise, this.#o.confirmTimeoutMs, this.#o.notConfirmed);
  }

  /** Closes the current stream, if any; never throws (the stream is dropped either way). */
  async unsubscribe(): Promise<void> {
    const sub = this.#sub;
    this.#sub = null;
    this.#subReady = false;
    if (sub !== null) await sub.unsubscribe().catch(() => {});
  }

  #receive(raw: unknown): void {
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
}
