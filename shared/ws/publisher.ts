/**
 * Publishing into the live feed, from the edge or a worker: one script call
 * appends the message to its topic's capped history stream AND publishes it
 * on the feed channel (ws_publish.lua), so a message is either in both or in
 * neither. Every edge instance follows the channel and fans the message out
 * to its own sockets.
 *
 * @example
 * ```ts
 * const feed = createFeedPublisher({ redis: deps.redis, instanceId: "worker-1" });
 * await feed.publish("tasks", { id: task.id, status: "succeeded" }, { key: task.id });
 * ```
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { liveFeedKeys } from "../redis/keys.ts";
import { bindFeedScripts, type FeedScripts } from "./scripts.ts";
import { isTopic, type Topic } from "./topics.ts";
import { WS_PUBLISH } from "../redis/script_codes.ts";

/** Who a targeted message is for; every given field must match. */
export interface Target {
  /** Every socket of this principal (`sub`). */
  user?: string;
  /** One socket, by the client id it got in its `welcome` frame. */
  client?: string;
}

/** Options of one {@linkcode FeedPublisher.publish} call. */
export interface PublishOptions {
  /** Key inside the topic, e.g. a task id (subscribable as `tasks:<id>`). */
  key?: string;
  /** Deliver only to these sockets (they must still be subscribed to the topic). */
  target?: Target;
  /**
   * Publish at most once per id (per topic) within `dedupeTtlMs`: a repeat
   * returns the first offset with `duplicate: true`. For relays that several
   * instances run at once.
   */
  dedupeId?: string;
}

/** The outcome of a publish. */
export interface Published {
  /** The message's offset (its history stream id). */
  offset: string;
  /** True when `dedupeId` had been published already (nothing was written). */
  duplicate: boolean;
}

/** One message of {@linkcode FeedPublisher.publishMany}. */
export interface BatchItem {
  data: unknown;
  key?: string;
  target?: Target;
}

/** Publishes live-feed messages. */
export interface FeedPublisher {
  publish(topic: Topic, data: unknown, options?: PublishOptions): Promise<Published>;
  /**
   * Publishes `items` on `topic` in this order, in ONE script call; returns
   * their offsets in the same order. Every item is checked first: one bad
   * item rejects the call and nothing is written. No `dedupeId` here.
   */
  publishMany(topic: Topic, items: readonly BatchItem[]): Promise<string[]>;
}

/** Options for {@linkcode createFeedPublisher}. */
export interface FeedPublisherOptions {
  /** Upstash client built with `createRedis` (raw strings). */
  redis: Redis;
  /** Recorded as each message's `origin`. */
  instanceId: string;
  /** Redis key namespace. @default "pc" */
  namespace?: string;
  /** Entries kept per topic stream. @default 10_000 */
  historyMaxLen?: number;
  /** Entries older than this are trimmed at the next publish, ms. @default 120_000 */
  historyMaxAgeMs?: number;
  /** How long a `dedupeId` is remembered, ms. @default 600_000 */
  dedupeTtlMs?: number;
  /**
   * Largest serialised `data`, bytes. The SSE transport cancels a stream on a
   * line over 1 MiB, so this stays far below. @default 65_536
   */
  maxDataBytes?: number;
}

const KEY = /^[A-Za-z0-9._~-]{1,128}$/;
const DEDUPE_ID = /^[A-Za-z0-9._:~-]{1,200}$/;
const TARGET_VALUE_MAX = 255;

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v <= 0) {
    throw new RangeError(`Feed publisher option "${name}" must be a positive integer: got ${v}`);
  }
  return v;
}

/** Validates `target` and returns its JSON text ("" for none). */
export function targetJson(target: Target | undefined): string {
  if (target === undefined) return "";
  const out: Target = {};
  for (const field of ["user", "client"] as const) {
    const v = target[field];
    if (v === undefined) continue;
    if (typeof v !== "string" || v.length === 0 || v.length > TARGET_VALUE_MAX) {
      throw new TypeError(`Cannot publish: target.${field} must be a non-empty string`);
    }
    out[field] = v;
  }
  if (out.user === undefined && out.client === undefined) {
    throw new TypeError("Cannot publish: a target needs a user or a client");
  }
  return JSON.stringify(out);
}

/** Creates a publisher; validates the options now. */
export function createFeedPublisher(options: FeedPublisherOptions): FeedPublisher {
  if (!options?.redis) throw new TypeError('Feed publisher option "redis" is required');
  if (typeof options.instanceId !== "string" || options.instanceId.length === 0) {
    throw new TypeError('Feed publisher option "instanceId" is required');
  }
  const keys = liveFeedKeys(options.namespace ?? "pc");
  const maxLen = positiveInt("historyMaxLen", options.historyMaxLen ?? 10_000);
  const maxAgeMs = positiveInt("historyMaxAgeMs", options.historyMaxAgeMs ?? 120_000);
  const dedupeTtlMs = positiveInt("dedupeTtlMs", options.dedupeTtlMs ?? 600_000);
  const maxDataBytes = positiveInt("maxDataBytes", options.maxDataBytes ?? 65_536);
  const scripts: FeedScripts = bindFeedScripts(options.redis);
  const encoder = new TextEncoder();

  /** Checks one message; returns its data as JSON text. */
  function checked(topic: Topic, data: unknown, key: string | undefined): string {
    if (!isTopic(topic)) throw new TypeError(`Cannot publish to unknown topic "${topic}"`);
    const text = JSON.stringify(data);
    if (text === undefined) throw new TypeError(`Cannot publish to "${topic}": data is not JSON`);
    // Only multi-byte text can exceed the limit with fewer UTF-16 units than bytes.
    if (text.length > maxDataBytes / 3 && encoder.encode(text).length > maxDataBytes) {
      throw new RangeError(
        `Cannot publish to "${topic}": data is larger than ${maxDataBytes} bytes`,
      );
    }
    if (key !== undefined && !KEY.test(key)) {
      throw new TypeError(`Cannot publish to "${topic}": invalid key "${key}"`);
    }
    return text;
  }

  return {
    async publishMany(topic, items) {
      const args: (string | number)[] = [
        keys.channel,
        topic,
        options.instanceId,
        maxLen,
        maxAgeMs,
      ];
      for (const item of items) {
        args.push(checked(topic, item.data, item.key), item.key ?? "", targetJson(item.target));
      }
      if (items.length === 0) return [];
      const offsets = await scripts.publishMany.run<string[]>(
        [keys.history(topic), keys.historyMeta(topic)],
        args,
      );
      return offsets.map(String);
    },

    async publish(topic, data, opts = {}) {
      const text = checked(topic, data, opts.key);
      if (opts.dedupeId !== undefined && !DEDUPE_ID.test(opts.dedupeId)) {
        throw new TypeError(`Cannot publish to "${topic}": invalid dedupeId`);
      }
      const redisKeys = [keys.history(topic), keys.historyMeta(topic)];
      if (opts.dedupeId !== undefined) redisKeys.push(keys.dedupe(topic, opts.dedupeId));
      const [status, offset] = await scripts.publish.run<[number, string]>(redisKeys, [
        keys.channel,
        topic,
        text,
        options.instanceId,
        opts.key ?? "",
        targetJson(opts.target),
        maxLen,
        maxAgeMs,
        dedupeTtlMs,
      ]);
      return { offset: String(offset), duplicate: Number(status) === WS_PUBLISH.duplicate };
    },
  };
}
