/**
 * The per-instance feed bus: ONE subscription to the feed channel (SSE
 * through the Upstash REST protocol), delivering every topic's messages to
 * this instance in offset order, exactly once, across stream losses.
 *
 * - Each message carries its offset (its history stream id). The bus keeps
 *   the last offset it delivered per topic and drops anything at or below it,
 *   so a message that arrives twice (live and from history) is delivered once.
 * - The SDK does not notice a stream that ended (a Redis restart ends it at
 *   the bridge), so the bus publishes a heartbeat ping every `heartbeatMs`
 *   and expects its own echo, like the breaker registry: two missing echoes
 *   (or an error event) mean the stream is dead. It then resubscribes and,
 *   once Redis confirmed the new subscription, reads every topic's history
 *   after its last delivered offset: the gap is filled in order, and live
 *   messages arriving meanwhile wait in a bounded buffer behind it.
 * - A gap older than the history (the stream was trimmed past it, or Redis
 *   lost its data) cannot be filled: `onGap(topic)` tells the hub, which
 *   tells its clients to reload (`subscribed` with `recovered: false`).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { Logger } from "../log.ts";
import { type LiveFeedKeys, liveFeedKeys } from "../redis/keys.ts";
import { type FeedMessage, readHistory } from "./history.ts";
import type { Target } from "./publisher.ts";
import { bindFeedScripts, type FeedScripts } from "./scripts.ts";
import { compareOffsets, isTopic, OFFSET, type Topic, TOPICS } from "./topics.ts";
import { bounded } from "../deadline.ts";
import { WatchedChannel } from "./watched_channel.ts";

/** Options for {@linkcode FeedBus}. */
export interface FeedBusOptions {
  /** Upstash client built with `createRedis`. */
  redis: Redis;
  /** This instance; its own heartbeat echoes are recognised by it. */
  instanceId: string;
  /** Receives every message, per topic in offset order, once. */
  onMessage: (message: FeedMessage) => void;
  /** Messages of `topic` were lost on this instance (older than the history). */
  onGap?: (topic: Topic) => void;
  /** Redis key namespace. @default "pc" */
  namespace?: string;
  /** Heartbeat period (stream check, retry while Redis is away), ms. @default 1000 */
  heartbeatMs?: number;
  /** Longest wait for a subscription confirmation or a history read, ms. @default 2000 */
  timeoutMs?: number;
  /** Live messages kept while a gap is being filled. @default 10_000 */
  maxBuffered?: number;
  /** @default no logging */
  log?: Logger;
}

/** Counters of one bus. */
export interface FeedBusMetrics {
  /** Feed messages received on the channel. */
  received: number;
  /** Messages handed to `onMessage` (live or from history). */
  delivered: number;
  /** Messages dropped because their offset was already delivered. */
  duplicates: number;
  /** Messages delivered from history after a stream loss. */
  recovered: number;
  /** Times the stream was found dead and reopened. */
  resubscribes: number;
  /** Topic gaps the history could not fill. */
  gaps: number;
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) {
    throw new RangeError(`Feed bus option "${name}" must be positive: got ${v}`);
  }
  return v;
}

/** Parses one channel payload into a feed message; null when it is not one. */
export function parseChannelMessage(raw: unknown): FeedMessage | null {
  let m: Record<string, unknown>;
  try {
    m = (typeof raw === "string" ? JSON.parse(raw) : raw) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (m === null || typeof m !== "object") return null;
  const { topic, offset, ts, origin, key, target, data } = m;
  if (typeof topic !== "string" || !isTopic(topic)) return null;
  if (typeof offset !== "string" || !OFFSET.test(offset) || !("data" in m)) return null;
  return {
    topic,
    offset,
    ts: typeof ts === "number" ? ts : Number(offset.slice(0, offset.indexOf("-"))),
    origin: typeof origin === "string" ? origin : "",
    key: typeof key === "string" ? key : null,
    target: target && typeof target === "object" ? target as Target : null,
    data: JSON.stringify(data),
  };
}

/** One instance's subscription to the live feed. */
export class FeedBus {
  readonly metrics: FeedBusMetrics = {
    received: 0,
    delivered: 0,
    duplicates: 0,
    recovered: 0,
    resubscribes: 0,
    gaps: 0,
  };
  readonly instanceId: string;
  readonly #keys: LiveFeedKeys;
  readonly #scripts: FeedScripts;
  readonly #channel: WatchedChannel;
  readonly #onMessage: (m: FeedMessage) => void;
  readonly #onGap: (t: Topic) => void;
  readonly #log: Logger | null;
  readonly #timeoutMs: number;
  readonly #maxBuffered: number;
  /** Last delivered offset per topic; null until first read from Redis. */
  readonly #last = new Map<Topic, string | null>(TOPICS.map((t) => [t, null]));
  /** True from a stream loss until the gap is filled: live messages wait in #buffer. */
  #syncing = true;
  #buffer: FeedMessage[] = [];
  #overflow = false;

  constructor(options: FeedBusOptions) {
    if (!options?.redis) throw new TypeError('Feed bus option "redis" is required');
    if (typeof options.onMessage !== "function") {
      throw new TypeError('Feed bus option "onMessage" is required');
    }
    if (!options.instanceId) throw new TypeError('Feed bus option "instanceId" is required');
    this.instanceId = options.instanceId;
    this.#keys = liveFeedKeys(options.namespace ?? "pc");
    this.#scripts = bindFeedScripts(options.redis);
    this.#onMessage = options.onMessage;
    this.#onGap = options.onGap ?? (() => {});
    this.#log = options.log ?? null;
    this.#timeoutMs = positive("timeoutMs", options.timeoutMs ?? 2000);
    this.#maxBuffered = positive("maxBuffered", options.maxBuffered ?? 10_000);
    this.#channel = new WatchedChannel({
      redis: options.redis,
      channel: this.#keys.channel,
      instanceId: options.instanceId,
      name: "live feed",
      heartbeatMs: positive("heartbeatMs", options.heartbeatMs ?? 1000),
      timeoutMs: this.#timeoutMs,
      log: options.log,
      onMessage: (raw) => this.#onChannel(raw),
      onLost: () => {
        this.metrics.resubscribes++;
        this.#syncing = true;
      },
      onOpen: () => this.#sync(),
    });
  }

  /** True while the stream is confirmed and no gap is pending. */
  get healthy(): boolean {
    return this.#channel.healthy && !this.#syncing;
  }

  /**
   * The last offset delivered for `topic` ("0-0" before the first message,
   * null before Redis was first reached).
   */
  lastOffset(topic: Topic): string | null {
    return this.#last.get(topic) ?? null;
  }

  /**
   * Subscribes and reads every topic's tail. Never throws: without Redis the
   * heartbeat keeps retrying.
   */
  start(): Promise<void> {
    return this.#channel.start();
  }

  /** Unsubscribes and stops the heartbeat. */
  stop(): Promise<void> {
    return this.#channel.stop();
  }

  #onChannel(raw: unknown): void {
    const message = parseChannelMessage(raw);
    if (message === null) return;
    this.metrics.received++;
    if (this.#syncing) {
      if (this.#buffer.length < this.#maxBuffered) this.#buffer.push(message);
      else this.#overflow = true;
      return;
    }
    this.#deliver(message);
  }

  #deliver(message: FeedMessage): boolean {
    const last = this.#last.get(message.topic);
    if (last === null || last === undefined || compareOffsets(message.offset, last) <= 0) {
      this.metrics.duplicates++;
      return false;
    }
    this.#last.set(message.topic, message.offset);
    this.metrics.delivered++;
    try {
      this.#onMessage(message);
    } catch (err) {
      this.#log?.error("live feed listener failed", { err, topic: message.topic });
    }
    return true;
  }

  /** Fills every topic's gap from history, then releases the buffered live messages. */
  async #sync(): Promise<void> {
    this.#syncing = true;
    do {
      this.#overflow = false;
      const reads = await bounded(
        Promise.all(TOPICS.map((t) => {
          const last = this.#last.get(t) ?? null;
          return readHistory({ scripts: this.#scripts, keys: this.#keys }, t, last);
        })),
        this.#timeoutMs,
        "live feed history read",
      );
      reads.forEach((read, i) => {
        const topic = TOPICS[i]!;
        const last = this.#last.get(topic) ?? null;
        if (last === null) {
          // First contact: everything up to now is history, not news.
          this.#last.set(topic, read.tail);
          return;
        }
        if (!read.complete) {
          this.metrics.gaps++;
          this.#log?.warn("live feed gap older than history", { topic, last, tail: read.tail });
          this.#onGap(topic);
        }
        for (const m of read.messages) {
          if (this.#deliver(m)) this.metrics.recovered++;
        }
      });
    } while (this.#overflow);
    const buffered = this.#buffer;
    this.#buffer = [];
    this.#syncing = false;
    for (const m of buffered) this.#deliver(m);
  }
}
