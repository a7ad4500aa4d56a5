/**
 * The registry's event channel: one pub/sub subscription that carries every
 * breaker's transitions and probe leases (published by the scripts), decoded
 * here, and the heartbeat pings that tell whether the stream still works.
 * The SDK does not notice a stream that ended, so the registry publishes a
 * ping every heartbeat and expects its own echo; when two are missing it
 * resubscribes (see registry.ts).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { DependencyUnavailableError } from "../errors.ts";
import { withDeadline } from "../deadline.ts";
import type { BreakerStateName } from "./types.ts";

/** A transition published on the channel by any instance. */
export interface TransitionMessage {
  to: BreakerStateName;
  epoch: number;
  open_ms?: number;
  reason?: string;
  by?: string;
}

/** A probe lease taken (probe_ms ≥ 0) or freed (-1) by any instance. */
export interface ProbeMessage {
  epoch: number;
  probe_ms: number;
}

/** What the channel keeps up to date: one breaker. */
export interface ChannelListener {
  applyTransition(msg: TransitionMessage): void;
  applyProbe(msg: ProbeMessage): void;
}

/** Options for {@linkcode BreakerEventChannel}. */
export interface BreakerEventChannelOptions {
  redis: Redis;
  channel: string;
  /** Recognises this instance's own pings. */
  instanceId: string;
  /** Longest wait for Redis to confirm a subscription, ms. */
  confirmTimeoutMs: number;
  /** Breakers by name; messages for other names are ignored. */
  breakers: ReadonlyMap<string, ChannelListener>;
}

interface Message {
  t?: unknown;
  name?: unknown;
  from?: unknown;
  seq?: unknown;
  to?: unknown;
  epoch?: unknown;
  open_ms?: unknown;
  probe_ms?: unknown;
  reason?: unknown;
  by?: unknown;
}

/** The subscription to the breaker channel, with its ping echo accounting. */
export class BreakerEventChannel {
  readonly #o: BreakerEventChannelOptions;
  #sub: ReturnType<Redis["subscribe"]> | null = null;
  #subReady = false;
  #pingSent = 0;
  #pingAcked = 0;

  constructor(options: BreakerEventChannelOptions) {
    this.#o = options;
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

  /** Publishes the next heartbeat ping; its echo proves the stream alive. */
  ping(): Promise<number> {
    const seq = ++this.#pingSent;
    const ping = JSON.stringify({ t: "ping", from: this.#o.instanceId, seq });
    return this.#o.redis.publish(this.#o.channel, ping);
  }

  /** Opens a new event stream; resolves once Redis confirmed the subscription. */
  async subscribe(): Promise<void> {
    await this.unsubscribe();
    const sub = this.#o.redis.subscribe<unknown>(this.#o.channel);
    this.#sub = sub;
    this.#subReady = false;
    this.#pingSent = 0;
    this.#pingAcked = 0;
    const ready = Promise.withResolvers<void>();
    sub.on("subscribe", () => {
      if (this.#sub === sub) this.#subReady = true;
      ready.resolve();
    });
    sub.on("message", ({ message }) => {
      if (this.#sub === sub) this.#onMessage(message);
    });
    sub.on("error", (err) => {
      if (this.#sub === sub) this.#subReady = false;
      ready.reject(err);
    });
    await withDeadline(
      ready.promise,
      this.#o.confirmTimeoutMs,
      () => new DependencyUnavailableError("Breaker event subscription not confirmed"),
    );
  }

  /** Closes the current stream, if any. */
  async unsubscribe(): Promise<void> {
    const sub = this.#sub;
    this.#sub = null;
    this.#subReady = false;
    if (sub !== null) await sub.unsubscribe();
  }

  #onMessage(raw: unknown): void {
    let msg: Message;
    try {
      msg = (typeof raw === "string" ? JSON.parse(raw) : raw) as Message;
    } catch {
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    if (msg.t === "ping") {
      if (msg.from === this.#o.instanceId && typeof msg.seq === "number") {
        this.#pingAcked = Math.max(this.#pingAcked, msg.seq);
      }
      return;
    }
    const breaker = typeof msg.name === "string" ? this.#o.breakers.get(msg.name) : undefined;
    if (breaker === undefined || typeof msg.epoch !== "number") return;
    if (msg.t === "transition" && typeof msg.to === "string") {
      breaker.applyTransition({
        to: msg.to as BreakerStateName,
        epoch: msg.epoch,
        open_ms: typeof msg.open_ms === "number" ? msg.open_ms : undefined,
        reason: typeof msg.reason === "string" ? msg.reason : undefined,
        by: typeof msg.by === "string" ? msg.by : undefined,
      });
    } else if (msg.t === "probe" && typeof msg.probe_ms === "number") {
      breaker.applyProbe({ epoch: msg.epoch, probe_ms: msg.probe_ms });
    }
  }
}
