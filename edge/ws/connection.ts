/**
 * One live-feed socket: its protocol (frames in, frames out), its
 * subscriptions, its bounded send queue and its token's lifetime.
 *
 * Frames from the client are handled one at a time, in order. A `subscribe`
 * with `since` reads the topic's history while live messages for that topic
 * wait in a per-topic buffer; after the replay they are released, and a
 * per-topic offset guarantees every message reaches the socket once and in
 * offset order.
 *
 * @module
 */
import { decodeJwt } from "jose";
import type { Logger } from "../../shared/log.ts";
import type { FeedMessage, HistoryRead } from "../../shared/ws/history.ts";
import {
  type ClientFrame,
  CLOSE_CODES,
  type ErrorCode,
  isProblem,
  messageFrame,
  parseClientFrame,
} from "../../shared/ws/protocol.ts";
import type { Target } from "../../shared/ws/publisher.ts";
import {
  compareOffsets,
  maySubscribe,
  parseTopic,
  type Topic,
  type TopicRef,
} from "../../shared/ws/topics.ts";
import type { Principal } from "../auth/principal.ts";
import type { Verifier } from "../auth/verify.ts";
import { SendQueue } from "./send_queue.ts";

/** Limits of every connection (resolved hub options). */
export interface ConnectionSettings {
  reauthGraceMs: number;
  maxFrameBytes: number;
  maxViolations: number;
  maxKeys: number;
  queue: { maxBytes: number; maxMessages: number; highWaterBytes: number };
}

/** What a connection needs from its hub. */
export interface ConnectionHost {
  readonly instanceId: string;
  readonly settings: ConnectionSettings;
  readonly log: Logger;
  now(): number;
  lastOffset(topic: Topic): string | null;
  readHistory(topic: Topic, since: string | null): Promise<HistoryRead>;
  /** The connection started (true) or stopped (false) following `topic`. */
  index(conn: LiveConnection, topic: Topic, following: boolean): void;
  /** The connection's send queue has a backlog for the flush timer. */
  backlog(conn: LiveConnection): void;
  /** The connection is over (closed by either side): forget it. Called once. */
  detach(conn: LiveConnection): void;
  /** Counts an event in the hub's metrics. */
  count(event: "slowConsumers" | "violations" | "expiredCloses" | "sent"): void;
}

interface TopicState {
  all: boolean;
  keys: Set<string>;
  /** Last offset sent (or skipped as not covered) on this socket. */
  offset: string;
  /** Live messages held back while a history replay runs. */
  pending: FeedMessage[] | null;
}

/** The socket side a connection uses. */
export interface ConnectionSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** Client frames waiting to be handled (a subscribe may wait on a history read). */
const MAX_FRAMES_IN_FLIGHT = 64;
// setTimeout's largest delay; tokens may live longer (up to 30 days).
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One client's socket. */
export class LiveConnection {
  readonly id: string;
  readonly connectedAt: number;
  readonly #host: ConnectionHost;
  readonly #socket: ConnectionSocket;
  readonly #verifier: Pick<Verifier, "verify">;
  readonly #queue: SendQueue;
  readonly #topics = new Map<Topic, TopicState>();
  readonly #log: Logger;
  #principal: Principal;
  #expiresAt: number;
  #violations = 0;
  #inFlight = 0;
  #work: Promise<void> = Promise.resolve();
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    host: ConnectionHost,
    init: {
      id: string;
      socket: ConnectionSocket;
      principal: Principal;
      verifier: Pick<Verifier, "verify">;
      /** Token expiry, epoch ms. */
      expiresAt: number;
    },
  ) {
    this.#host = host;
    this.id = init.id;
    this.#socket = init.socket;
    this.#principal = init.principal;
    this.#verifier = init.verifier;
    this.#expiresAt = init.expiresAt;
    this.connectedAt = host.now();
    this.#log = host.log.child({ client_id: init.id, "user.id": init.principal.sub });
    this.#queue = new SendQueue(init.socket, {
      ...host.settings.queue,
      onOverflow: () => this.#slow(),
    });
  }

  get principal(): Principal {
    return this.#principal;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Topic names this socket follows (`tasks`, `tasks:<key>`, …). */
  get topics(): string[] {
    const out: string[] = [];
    for (const [topic, st] of this.#topics) {
      if (st.all) out.push(topic);
      for (const k of st.keys) out.push(`${topic}:${k}`);
    }
    return out;
  }

  /** The socket is open: greets the client, arms the expiry timer, applies `?topics=`. */
  open(initialTopics: readonly string[]): void {
    this.#sendJson({
      type: "welcome",
      client_id: this.id,
      instance: this.#host.instanceId,
      expires_at: this.#expiresAt,
    });
    this.#armExpiry();
    if (initialTopics.length > 0) {
      this.#enqueue({ type: "subscribe", topics: [...initialTopics] });
    }
  }

  /** One frame from the client. */
  receive(data: unknown): void {
    if (this.#closed) return;
    if (typeof data !== "string") {
      this.#violation("binary-not-supported", "Only JSON text frames are accepted");
      return;
    }
    const max = this.#host.settings.maxFrameBytes;
    if (
      data.length > max ||
      (data.length * 3 > max && new TextEncoder().encode(data).length > max)
    ) {
      this.#violation("frame-too-large", `Frames are limited to ${max} bytes`);
      return;
    }
    const frame = parseClientFrame(data);
    if (isProblem(frame)) {
      this.#violation(frame.code, frame.message);
      return;
    }
    this.#enqueue(frame);
  }

  /** A feed message for a topic this socket may follow; `frame` is its text. */
  deliver(message: FeedMessage, frame: string): void {
    const st = this.#topics.get(message.topic);
    if (st === undefined || this.#closed) return;
    if (!st.all && (message.key === null || !st.keys.has(message.key))) return;
    if (message.target !== null && !this.#isTarget(message.target)) return;
    if (st.pending !== null) {
      st.pending.push(message);
      // Held back behind a replay: bounded like the send queue.
      if (st.pending.length > this.#host.settings.queue.maxMessages) this.#slow();
      return;
    }
    if (compareOffsets(message.offset, st.offset) <= 0) return;
    st.offset = message.offset;
    this.#push(frame);
  }

  /** Moves queued frames on; true while a backlog remains. */
  flush(): boolean {
    return this.#queue.flush();
  }

  /** Closes the socket (once) and releases everything the connection holds. */
  close(code: number, reason: string): void {
    if (this.#closed) return;
    try {
      this.#socket.close(code, reason);
    } catch {
      // already closing
    }
    this.dispose();
  }

  /**
   * The connection is over: timers off, topics unindexed, the hub told.
   * Idempotent. A close we start counts at once: the close handshake with a
   * peer that stopped reading may never finish.
   */
  dispose(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#expiryTimer);
    clearTimeout(this.#graceTimer);
    for (const topic of this.#topics.keys()) this.#host.index(this, topic, false);
    this.#topics.clear();
    this.#host.detach(this);
  }

  /** Tells the client its gap on `topic` could not be filled (reload state). */
  gap(topic: Topic): void {
    const st = this.#topics.get(topic);
    if (st === undefined) return;
    for (const name of this.topics.filter((n) => n === topic || n.startsWith(`${topic}:`))) {
      this.#sendJson({ type: "subscribed", topic: name, recovered: false, offset: st.offset });
    }
  }

  #slow(): void {
    if (this.#closed) return;
    this.#host.count("slowConsumers");
    this.#log.warn("live feed slow consumer closed", {
      queued: this.#queue.length,
      buffered: this.#socket.bufferedAmount,
    });
    this.close(CLOSE_CODES.slowConsumer, "slow consumer");
  }

  #isTarget(t: Target): boolean {
    return (t.user === undefined || t.user === this.#principal.sub) &&
      (t.client === undefined || t.client === this.id);
  }

  #push(frame: string): void {
    if (this.#queue.push(frame)) {
      this.#host.count("sent");
      if (this.#queue.length > 0) this.#host.backlog(this);
    }
  }

  #sendJson(frame: Record<string, unknown>): void {
    this.#push(JSON.stringify(frame));
  }

  #error(code: ErrorCode, message: string, topic?: string): void {
    this.#sendJson(
      topic === undefined ? { type: "error", code, message } : {
        type: "error",
        code,
        message,
        topic,
      },
    );
  }

  /** Answers a bad frame; too many close the socket with 1008. */
  #violation(code: ErrorCode, message: string, topic?: string): void {
    this.#host.count("violations");
    this.#error(code, message, topic);
    if (++this.#violations >= this.#host.settings.maxViolations) {
      this.#log.info("live feed client closed for protocol violations", {
        violations: this.#violations,
        last: code,
      });
      this.close(CLOSE_CODES.policyViolation, "too many protocol violations");
    }
  }

  #enqueue(frame: ClientFrame): void {
    // Frames run one at a time; a client may not pile up unbounded work behind a slow one.
    if (this.#inFlight >= MAX_FRAMES_IN_FLIGHT) {
      this.#log.info("live feed client closed for flooding", { in_flight: this.#inFlight });
      this.close(CLOSE_CODES.policyViolation, "too many frames in flight");
      return;
    }
    this.#inFlight++;
    this.#work = this.#work.then(() => this.#closed ? undefined : this.#handle(frame)).catch(
      (err) => this.#log.error("live feed frame handling failed", { err, type: frame.type }),
    ).finally(() => this.#inFlight--);
  }

  async #handle(frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case "ping":
        this.#sendJson(frame.id === undefined ? { type: "pong" } : { type: "pong", id: frame.id });
        return;
      case "subscribe":
        return await this.#subscribe(frame.topics, frame.since);
      case "unsubscribe":
        return this.#unsubscribe(frame.topics);
      case "reauth":
        return await this.#reauth(frame.token);
    }
  }

  async #subscribe(names: string[], since: string | Record<string, string> | undefined) {
    for (const name of names) {
      const ref = parseTopic(name);
      if (ref === null) {
        this.#violation("unknown-topic", `Unknown topic "${name.slice(0, 80)}"`, name);
        continue;
      }
      if (!maySubscribe(this.#principal, ref.topic)) {
        this.#violation("forbidden-topic", `Not allowed to follow "${ref.topic}"`, name);
        continue;
      }
      const from = typeof since === "string" ? since : since?.[ref.name] ?? since?.[ref.topic];
      await this.#subscribeOne(ref, from);
      if (this.#closed) return;
    }
  }

  async #subscribeOne(ref: TopicRef, since: string | undefined): Promise<void> {
    let st = this.#topics.get(ref.topic);
    const isNew = st === undefined;
    if (st === undefined) {
      st = { all: false, keys: new Set(), offset: "0-0", pending: null };
    } else if (
      ref.key !== null && !st.keys.has(ref.key) && st.keys.size >= this.#host.settings.maxKeys
    ) {
      this.#violation(
        "bad-frame",
        `At most ${this.#host.settings.maxKeys} keys per topic`,
        ref.name,
      );
      return;
    }
    const known = this.#host.lastOffset(ref.topic);
    if (ref.key === null) st.all = true;
    else st.keys.add(ref.key);
    if (isNew) {
      // A replay starts after `since`; live-only starts after what this instance delivered.
      st.offset = since ?? known ?? "0-0";
      this.#topics.set(ref.topic, st);
      this.#host.index(this, ref.topic, true);
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
      this.#log.warn("live feed history read failed", { err, topic: ref.topic });
      if (ref.key === null) st.all = false;
      else st.keys.delete(ref.key);
      this.#error("unavailable", "The feed history is unavailable; retry", ref.name);
      this.#release(ref.topic, st);
      return;
    }
    if (this.#closed) return;
    const recovered = since !== undefined && read.complete;
    this.#sendJson({ type: "subscribed", topic: ref.name, recovered, offset: read.tail });
    if (recovered) {
      for (const m of read.messages) {
        if (ref.key !== null && m.key !== ref.key) continue;
        if (m.target !== null && !this.#isTarget(m.target)) continue;
        if (compareOffsets(m.offset, st.offset) <= 0) continue;
        st.offset = m.offset;
        this.#push(messageFrame(m));
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
      this.#host.index(this, topic, false);
      return;
    }
    for (const m of pending) this.deliver(m, messageFrame(m));
  }

  #unsubscribe(names: string[]): void {
    for (const name of names) {
      const ref = parseTopic(name);
      if (ref === null) {
        this.#violation("unknown-topic", `Unknown topic "${name.slice(0, 80)}"`, name);
        continue;
      }
      const st = this.#topics.get(ref.topic);
      if (st !== undefined) {
        if (ref.key === null) st.all = false;
        else st.keys.delete(ref.key);
        if (!st.all && st.keys.size === 0 && st.pending === null) {
          this.#topics.delete(ref.topic);
          this.#host.index(this, ref.topic, false);
        }
      }
      this.#sendJson({ type: "unsubscribed", topic: name });
    }
  }

  async #reauth(token: string): Promise<void> {
    let principal: Principal;
    try {
      principal = await this.#verifier.verify(token);
    } catch (err) {
      this.#log.info("live feed reauth refused", { reason: (err as { reason?: string }).reason });
      this.#error("invalid-token", "The token was refused");
      return;
    }
    if (this.#closed) return;
    if (principal.sub !== this.#principal.sub) {
      this.#log.warn("live feed reauth with another principal", { other: principal.sub });
      this.close(CLOSE_CODES.principalChanged, "reauth names another principal");
      return;
    }
    this.#principal = principal;
    this.#expiresAt = (decodeJwt(token).exp ?? 0) * 1000;
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.#armExpiry();
    // Roles may have changed: drop what the new token no longer allows.
    for (const topic of [...this.#topics.keys()]) {
      if (maySubscribe(principal, topic)) continue;
      this.#topics.delete(topic);
      this.#host.index(this, topic, false);
      this.#error("forbidden-topic", `Not allowed to follow "${topic}" any more`, topic);
    }
    this.#sendJson({ type: "reauthed", expires_at: this.#expiresAt });
  }

  /** At the token's expiry: ask for a fresh one, close with 4001 after the grace period. */
  #armExpiry(): void {
    clearTimeout(this.#expiryTimer);
    const wait = this.#expiresAt - this.#host.now();
    this.#expiryTimer = setTimeout(() => {
      if (this.#closed) return;
      if (this.#expiresAt > this.#host.now()) return this.#armExpiry();
      this.#sendJson({ type: "reauth" });
      clearTimeout(this.#graceTimer);
      this.#graceTimer = setTimeout(() => {
        if (this.#closed || this.#expiresAt > this.#host.now()) return;
        this.#host.count("expiredCloses");
        this.#log.info("live feed token expired without reauth");
        this.close(CLOSE_CODES.tokenExpired, "token expired");
      }, this.#host.settings.reauthGraceMs);
    }, Math.min(Math.max(0, wait), MAX_TIMER_MS));
  }
}
