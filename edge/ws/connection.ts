/**
 * One live-feed socket: its protocol (frames in, frames out), built from its
 * subscriptions and their replay order (edge/ws/subscriptions.ts), its
 * bounded send queue (edge/ws/send_queue.ts) and its token's lifetime
 * (edge/ws/token_lifetime.ts).
 *
 * Frames from the client are handled one at a time, in order: a `subscribe`
 * may wait on a history read, and the frames after it wait for it.
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
  parseClientFrame,
} from "../../shared/ws/protocol.ts";
import type { Target } from "../../shared/ws/publisher.ts";
import type { Topic } from "../../shared/ws/topics.ts";
import type { Principal } from "../auth/principal.ts";
import type { Verifier } from "../auth/verify.ts";
import type { Deadlines } from "./deadlines.ts";
import { type DropReason, SendQueue } from "./send_queue.ts";
import { Subscriptions } from "./subscriptions.ts";
import { TokenLifetime } from "./token_lifetime.ts";

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
  /** The hub's shared deadlines (token expiry, reauth grace). */
  readonly deadlines: Deadlines;
  now(): number;
  lastOffset(topic: Topic): string | null;
  readHistory(topic: Topic, since: string | null): Promise<HistoryRead>;
  /** True when `who` may follow `topic`. */
  mayFollow(who: Principal, topic: Topic): boolean;
  /** The connection started (true) or stopped (false) following `topic`. */
  index(conn: LiveConnection, topic: Topic, following: boolean): void;
  /** The connection's send queue has a backlog for the flush timer. */
  backlog(conn: LiveConnection): void;
  /** The connection is over (closed by either side): forget it. Called once. */
  detach(conn: LiveConnection): void;
  /** Counts an event in the hub's metrics. */
  count(event: "slowConsumers" | "violations" | "expiredCloses" | "sent"): void;
  /** Counts frames that never reached the socket, by reason. */
  dropped(reason: DropReason, frames: number): void;
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

/** One client's socket. */
export class LiveConnection {
  readonly id: string;
  readonly connectedAt: number;
  readonly #host: ConnectionHost;
  readonly #socket: ConnectionSocket;
  readonly #verifier: Pick<Verifier, "verify">;
  readonly #queue: SendQueue;
  readonly #token: TokenLifetime;
  // Built on first use: an idle socket never logs nor subscribes, and
  // thousands of them are held per instance (memory per idle connection,
  // docs/benchmarks.md).
  #subs: Subscriptions | null = null;
  #logger: Logger | null = null;
  #principal: Principal;
  #violations = 0;
  #inFlight = 0;
  /** The frame being handled and those queued behind it; null when none was ever sent. */
  #work: Promise<void> | null = null;
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
    this.connectedAt = host.now();
    this.#queue = new SendQueue(init.socket, {
      ...host.settings.queue,
      onOverflow: () => this.#slow(),
      onDrop: (reason, frames) => host.dropped(reason, frames),
    });
    this.#token = new TokenLifetime({
      expiresAt: init.expiresAt,
      graceMs: host.settings.reauthGraceMs,
      now: () => host.now(),
      deadlines: host.deadlines,
      onExpiry: () => this.#sendJson({ type: "reauth" }),
      onGraceOver: () => {
        this.#host.count("expiredCloses");
        this.#log.info("live feed token expired without reauth");
        this.close(CLOSE_CODES.tokenExpired, "token expired");
      },
    });
  }

  get principal(): Principal {
    return this.#principal;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Frames waiting in the send queue. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Topic names this socket follows (`tasks`, `tasks:<key>`, …). */
  get topics(): string[] {
    return this.#subs?.names ?? [];
  }

  get #log(): Logger {
    return this.#logger ??= this.#host.log.child({
      client_id: this.id,
      "user.id": this.#principal.sub,
    });
  }

  #subscriptions(): Subscriptions {
    if (this.#subs !== null) return this.#subs;
    const host = this.#host;
    return this.#subs = new Subscriptions({
      log: this.#log,
      // The subscriptions only ever pass this connection's principals back.
      mayFollow: (who, topic) => host.mayFollow(who as Principal, topic),
      maxKeys: host.settings.maxKeys,
      maxPending: host.settings.queue.maxMessages,
      lastOffset: (topic) => host.lastOffset(topic),
      readHistory: (topic, since) => host.readHistory(topic, since),
      index: (topic, following) => host.index(this, topic, following),
      isTarget: (target) => this.#isTarget(target),
      push: (frame) => this.#push(frame),
      error: (code, message, topic) => this.#error(code, message, topic),
      violation: (code, message, topic) => this.#violation(code, message, topic),
      slow: () => this.#slow(),
    });
  }

  /** The socket is open: greets the client, arms the expiry timer, applies `?topics=` (and `?types=`). */
  open(initialTopics: readonly string[], types?: readonly string[]): void {
    this.#sendJson({
      type: "welcome",
      client_id: this.id,
      instance: this.#host.instanceId,
      expires_at: new Date(this.#token.expiresAt).toISOString(),
    });
    this.#token.start();
    if (initialTopics.length > 0) {
      this.#enqueue({
        type: "subscribe",
        topics: [...initialTopics],
        ...(types === undefined ? {} : { types: [...types] }),
      });
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
    if (this.#closed) return;
    this.#subs?.deliver(message, frame);
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
    this.#queue.discard();
    this.#token.stop();
    this.#subs?.close();
    this.#host.detach(this);
  }

  /** Tells the client its gap on `topic` could not be filled (reload state). */
  gap(topic: Topic): void {
    this.#subs?.gap(topic);
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

  /** An `error` frame; JSON leaves an undefined `topic` out. */
  #error(code: ErrorCode, message: string, topic?: string): void {
    this.#sendJson({ type: "error", code, message, topic });
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
    this.#work = (this.#work ?? Promise.resolve()).then(() =>
      this.#closed ? undefined : this.#handle(frame)
    ).catch(
      (err) => this.#log.error("live feed frame handling failed", { err, type: frame.type }),
    ).finally(() => this.#inFlight--);
  }

  async #handle(frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case "ping":
        this.#sendJson(frame.id === undefined ? { type: "pong" } : { type: "pong", id: frame.id });
        return;
      case "subscribe":
        return await this.#subscriptions().subscribe(this.#principal, frame);
      case "unsubscribe":
        return this.#subscriptions().unsubscribe(frame.topics);
      case "reauth":
        return await this.#reauth(frame.token);
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
    this.#token.renew((decodeJwt(token).exp ?? 0) * 1000);
    // Roles may have changed: drop what the new token no longer allows.
    this.#subs?.reauthorize(principal);
    this.#sendJson({
      type: "reauthed",
      expires_at: new Date(this.#token.expiresAt).toISOString(),
    });
  }
}
