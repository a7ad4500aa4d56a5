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
import { PingedStream } from "../redis/pinged_stream.ts";
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
  readonly #stream: PingedStream;

  constructor(options: BreakerEventChannelOptions) {
    this.#o = options;
    this.#stream = new PingedStream({
      redis: options.redis,
      channel: options.channel,
      instanceId: options.instanceId,
      confirmTimeoutMs: options.confirmTimeoutMs,
      notConfirmed: () =>
        new DependencyUnavailableError("Breaker event subscription not confirmed"),
      onMessage: (message) => this.#onMessage(message),
    });
  }

  /** A confirmed stream that echoed all but at most one of this instance's pings. */
  get alive(): boolean {
    return this.#stream.alive;
  }

  /** Pings sent on the current stream. */
  get pingsSent(): number {
    return this.#stream.pingsSent;
  }

  /** Highest ping of the current stream echoed back. */
  get pingsEchoed(): number {
    return this.#stream.pingsEchoed;
  }

  /** Publishes the next heartbeat ping; its echo proves the stream alive. */
  ping(): Promise<number> {
    return this.#stream.ping();
  }

  /** Opens a new event stream; resolves once Redis confirmed the subscription. */
  subscribe(): Promise<void> {
    return this.#stream.subscribe();
  }

  /** Closes the current stream, if any. */
  unsubscribe(): Promise<void> {
    return this.#stream.unsubscribe();
  }

  /** A message of the channel other than a ping (parsed by the stream). */
  #onMessage(message: unknown): void {
    const msg = message as Message | null;
    if (msg === null || typeof msg !== "object") return;
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
