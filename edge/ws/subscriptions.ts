/**
 * The subscriptions of one live-feed socket: its `subscribe` and
 * `unsubscribe` frames (each name parsed and authorised on its own, at most
 * `maxKeys` keys per topic), what it follows, and the order of what it gets.
 *
 * A `subscribe` with `since` reads the topic's history while live messages
 * for that topic wait in a per-topic buffer; after the replay they are
 * released, and a per-topic offset guarantees every message reaches the
 * socket once and in offset order.
 *
 * A `types` filter (shared/ws/lead_event_types.ts) narrows the socket's
 * `leads` subscriptions to those event types, live and replayed alike; the
 * last frame naming a `leads` subscription sets it (none: every type).
 *
 * @module
 */
import type { Logger } from "../../shared/log.ts";
import type { FeedMessage, HistoryRead } from "../../shared/ws/history.ts";
import { type ClientFrame, type ErrorCode, messageFrame } from "../../shared/ws/protocol.ts";
import { checkTypeFilter } from "../../shared/ws/lead_event_types.ts";
import type { Target } from "../../shared/ws/publisher.ts";
import {
  compareOffsets,
  parseTopic,
  type Subscriber,
  type Topic,
  type TopicRef,
} from "../../shared/ws/topics.ts";

/** What a socket's subscriptions need from their connection (and its hub). */
export interface SubscriptionHost {
  readonly log: Logger;
  /** True when `who` may follow `topic` (the topic's rule, see shared/ws/topics.ts). */
  mayFollow(who: Subscriber, topic: Topic): boolean;
  /** Keys one socket may follow inside one topic. */
  readonly maxKeys: number;
  /** Live messages one topic may hold back behind a replay. */
  readonly maxPending: number;
  /** This instance's last offset on `topic`; null before the bus reached Redis. */
  lastOffset(topic: Topic): string | null;
  readHistory(topic: Topic, since: string | null): Promise<HistoryRead>;
  /** The socket started (true) or stopped (false) following `topic`. */
  index(topic: Topic, following: boolean): void;
  /** True when a targeted message is meant for this socket. */
  isTarget(target: Target): boolean;
  /** Queues a frame for the socket, in order with all its other frames. */
  push(frame: string): void;
  error(code: ErrorCode, message: string, topic: string): void;
  /** Answers a bad frame (counted; too many close the socket). */
  violation(code: ErrorCode, message: string, topic: string): void;
  /** More live messages are held back than allowed: the client cannot keep up. */
  slow(): void;
}

/** The fields of a `subscribe` frame. */
export type SubscribeFrame = Pick<
  Extract<ClientFrame, { type: "subscribe" }>,
  "topics" | "since" | "types"
>;

interface TopicState {
  all: boolean;
  keys: Set<string>;
  /** Last offset sent (or skipped as not covered) on this socket. */
  offset: string;
  /** Live messages held back while a history replay runs. */
  pending: FeedMessage[] | null;
  /** Only messages whose `data.event_type` is in it (the `leads` topic); null: all. */
  types: ReadonlySet<string> | null;
}

/**
 * `data.event_type` of a message, parsed once per message for all the
 * sockets of this instance (the hub hands every socket the same object).
 */
const eventTypes = new WeakMap<FeedMessage, string | null>();
function eventTypeOf(message: FeedMessage): string | null {
  let type = eventTypes.get(message);
  if (type === undefined) {
    try {
      const data = JSON.parse(message.data) as { event_type?: unknown } | null;
      type = typeof data?.event_type === "string" ? data.event_type : null;
    } catch {
      type = null;
    }
    eventTypes.set(message, type);
  }
  return type;
}

function passes(st: TopicState, message: FeedMessage): boolean {
  return st.types === null || st.types.has(eventTypeOf(message) ?? "");
}

/** One socket's subscriptions. */
export class Subscriptions {
  readonly #host: SubscriptionHost;
  readonly #topics = new Map<Topic, TopicState>();
  #closed = false;

  constructor(host: SubscriptionHost) {
    this.#host = host;
  }

  /** Subscription names (`tasks`, `tasks:<key>`, …). */
  get names(): string[] {
    const out: string[] = [];
    for (const [topic, st] of this.#topics) {
      if (st.all) out.push(topic);
      for (const k of st.keys) out.push(`${topic}:${k}`);
    }
    return out;
  }

  /** A feed message of the topic; `frame` is its text. Sent if covered and new. */
  deliver(message: FeedMessage, frame: string): void {
    const st = this.#topics.get(message.topic);
    if (st === undefined || this.#closed) return;
    if (!st.all && (message.key === null || !st.keys.has(message.key))) return;
    if (message.target !== null && !this.#host.isTarget(message.target)) return;
    if (!passes(st, message)) return;
    if (st.pending !== null) {
      st.pending.push(message);
      // Held back behind a replay: bounded like the send queue.
      if (st.pending.length > this.#host.maxPending) this.#host.slow();
      return;
    }
    if (compareOffsets(message.offset, st.offset) <= 0) return;
    st.offset = message.offset;
    this.#host.push(frame);
  }

  /** Tells the client its gap on `topic` could not be filled (reload state). */
  gap(topic: Topic): void {
    const st = this.#topics.get(topic);
    if (st === undefined) return;
    for (const name of this.names.filter((n) => n === topic || n.startsWith(`${topic}:`))) {
      this.#sendJson({ type: "subscribed", topic: name, recovered: false, offset: st.offset });
    }
  }

  /** A `subscribe` frame of `who`: each name answered on its own, in order. */
  async subscribe(who: Subscriber, frame: SubscribeFrame): Promise<void> {
    const since = frame.since;
    if (frame.types !== undefined) {
      // All or nothing: a half-applied filter would look like a quiet feed.
      const problem = checkTypeFilter(frame.types, frame.topics);
      if (problem !== null) {
        this.#host.violation(problem.code, problem.message, frame.topics[0] ?? "");
        return;
      }
    }
    const types = frame.types === undefined ? null : new Set(frame.types);
    for (const name of frame.topics) {
      const ref = parseTopic(name);
      if (ref === null) {
        this.#host.violation("unknown-topic", `Unknown topic "${name.slice(0, 80)}"`, name);
        continue;
      }
      if (!this.#host.mayFollow(who, ref.topic)) {
        this.#host.violation("forbidden-topic", `Not allowed to follow "${ref.topic}"`, name);
        continue;
      }
      const from = typeof since === "string" ? since : since?.[ref.name] ?? since?.[ref.topic];
      await this.#subscribeOne(ref, from, ref.topic === "leads" ? types : null);
      if (this.#closed) return;
    }
  }

  /** An `unsubscribe` frame: each name is answered, followed or not. */
  unsubscribe(names: string[]): void {
    for (const name of names) {
      const ref = parseTopic(name);
      if (ref === null) {
        this.#host.violation("unknown-topic", `Unknown topic "${name.slice(0, 80)}"`, name);
        continue;
      }
      const st = this.#topics.get(ref.topic);
      if (st !== undefined) {
        if (ref.key === null) st.all = false;
        else st.keys.delete(ref.key);
        if (!st.all && st.keys.size === 0 && st.pending === null) {
          this.#topics.delete(ref.topic);
          this.#host.index(ref.topic, false);
        }
      }
      this.#sendJson({ type: "unsubscribed", topic: name });
    }
  }

  /** `who`'s roles may have changed (reauth): drops what they no longer allow. */
  reauthorize(who: Subscriber): void {
    for (const topic of [...this.#topics.keys()]) {
      if (this.#host.mayFollow(who, topic)) continue;
      this.#topics.delete(topic);
      this.#host.index(topic, false);
      this.#host.error("forbidden-topic", `Not allowed to follow "${topic}" any more`, topic);
    }
  }

  /** The socket is over: every topic unindexed, nothing delivered any more. */
  close(): void {
    this.#closed = true;
    for (const topic of this.#topics.keys()) this.#host.index(topic, false);
    this.#topics.clear();
  }

  /**
   * Follows `ref`, replaying its history after `since` first when given;
   * answers with a `subscribed` frame (or an error).
   */
  async #subscribeOne(
    ref: TopicRef,
    since: string | undefined,
    types: ReadonlySet<string> | null,
  ): Promise<void> {
    let st = this.#topics.get(ref.topic);
    const isNew = st === undefined;
    if (st === undefined) {
      st = { all: false, keys: new Set(), offset: "0-0", pending: null, types };
    } else if (ref.key !== null && !st.keys.has(ref.key) && st.keys.size >= this.#host.maxKeys) {
      this.#host.violation("bad-frame", `At most ${this.#host.maxKeys} keys per topic`, ref.name);
      return;
    }
    st.types = types;
    const known = this.#host.lastOffset(ref.topic);
    if (ref.key === null) st.all = true;
    else st.keys.add(ref.key);
    if (isNew) {
      // A replay starts after `since`; live-only starts after what this instance delivered.
      st.offset = since ?? known ?? "0-0";
      this.#topics.set(ref.topic, st);
      this.#host.index(ref.topic, true);
    }
    if (since === undefined && known !== null) {
      this.#sendJson({ type: "subscribed", topic: ref.name, recovered: false, offset: st.offset });
      return;
    }
    // A replay (or, before the bus reached Redis, the tail): hold live messages back.
    st.pending ??= [];
    let read: HistoryRead;
    try {
      read = await this.#host.readHistory(ref.topic, since ?? null);
    } catch (err) {
      this.#host.log.warn("live feed history read failed", { err, topic: ref.topic });
      if (ref.key === null) st.all = false;
      else st.keys.delete(ref.key);
      this.#host.error("unavailable", "The feed history is unavailable; retry", ref.name);
      this.#release(ref.topic, st);
      return;
    }
    if (this.#closed) return;
    const recovered = since !== undefined && read.complete;
    this.#sendJson({ type: "subscribed", topic: ref.name, recovered, offset: read.tail });
    if (recovered) {
      for (const m of read.messages) {
        if (ref.key !== null && m.key !== ref.key) continue;
        if (m.target !== null && !this.#host.isTarget(m.target)) continue;
        if (!passes(st, m)) continue;
        if (compareOffsets(m.offset, st.offset) <= 0) continue;
        st.offset = m.offset;
        this.#host.push(messageFrame(m));
      }
    }
    if (compareOffsets(read.tail, st.offset) > 0) st.offset = read.tail;
    this.#release(ref.topic, st);
  }

  /** Ends a replay: held-back live messages go out (the offset check drops repeats). */
  #release(topic: Topic, st: TopicState): void {
    const pending = st.pending ?? [];
    st.pending = null;
    if (!st.all && st.keys.size === 0) {
      this.#topics.delete(topic);
      this.#host.index(topic, false);
      return;
    }
    for (const m of pending) this.deliver(m, messageFrame(m));
  }

  #sendJson(frame: Record<string, unknown>): void {
    this.#host.push(JSON.stringify(frame));
  }
}
