/**
 * The live-feed hub of one edge instance: its sockets, its ONE feed bus
 * subscription (shared/ws/bus.ts) fanned out to them, its publisher, and its
 * entries in the client registry.
 *
 * - Fan-out: sockets are indexed by topic; each message's frame text is
 *   built once and handed to every socket following the topic, which filters
 *   by key and target and queues it (edge/ws/send_queue.ts).
 * - Every message, including those this instance published, reaches the
 *   sockets through the channel: a publish reply and the channel are two
 *   connections, so delivering local publishes early could overtake an
 *   earlier message from another instance and break per-topic order. The
 *   bus's per-topic offset makes a message that arrives twice (live and from
 *   history after a stream loss) a no-op.
 * - Liveness: the runtime pings each socket after `pingIntervalMs` of
 *   silence (WebSocket ping frames, answered by every browser) and closes it
 *   when no pong follows within another `pingIntervalMs`.
 * - Registry: a socket is registered when it opens and removed when it
 *   closes, sockets of the same few milliseconds in one call
 *   (edge/ws/registry_batch.ts); every `registryRefreshMs` the hub extends
 *   all of its entries.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { Context } from "hono";
import type { Logger } from "../../shared/log.ts";
import { liveFeedKeys } from "../../shared/redis/keys.ts";
import { FeedBus } from "../../shared/ws/bus.ts";
import { type ClientRegistry, createClientRegistry } from "../../shared/ws/client_registry.ts";
import { type FeedMessage, type HistoryRead, readHistory } from "../../shared/ws/history.ts";
import { CLOSE_CODES, messageFrame } from "../../shared/ws/protocol.ts";
import {
  type BatchItem,
  createFeedPublisher,
  type FeedPublisher,
  type Published,
  type PublishOptions,
} from "../../shared/ws/publisher.ts";
import { bindFeedScripts } from "../../shared/ws/scripts.ts";
import { maySubscribe, type Topic } from "../../shared/ws/topics.ts";
import { ACCESS_POLICY, type Authorizer, compilePolicy } from "../auth/policy.ts";
import type { Principal } from "../auth/principal.ts";
import type { Verifier } from "../auth/verify.ts";
import { createLocalLimiter, type LocalLimiter } from "../rate_limit/local_limiter.ts";
import { type ConnectionHost, type ConnectionSettings, LiveConnection } from "./connection.ts";
import { Deadlines } from "./deadlines.ts";
import { RegistryBatch } from "./registry_batch.ts";
import type { DropReason } from "./send_queue.ts";

/** Options for {@linkcode createLiveHub}; every limit has a production default. */
export interface LiveHubOptions {
  /** Upstash client built with `createRedis`. */
  redis: Redis;
  log: Logger;
  /** @default Date.now */
  now?: () => number;
  /**
   * The access policy that decides the topics mirroring an API read (`tasks`,
   * `leads`: see shared/ws/topics.ts). @default compilePolicy(ACCESS_POLICY)
   */
  decide?: Authorizer;
  /** This instance in the registry and as `origin`. @default "e-" + 8 random hex digits */
  instanceId?: string;
  /** Redis key namespace. @default "pc" */
  namespace?: string;
  /** Feed heartbeat (stream check), ms. @default 1000 */
  heartbeatMs?: number;
  /** Longest wait for Redis in the feed bus, ms. @default 2000 */
  busTimeoutMs?: number;
  /** Entries kept per topic history. @default 10_000 */
  historyMaxLen?: number;
  /** History entries older than this are trimmed, ms. @default 120_000 */
  historyMaxAgeMs?: number;
  /** Socket ping after this much silence; dead after as much again, ms. @default 25_000 */
  pingIntervalMs?: number;
  /** Time to answer `{"type":"reauth"}` before the close with 4001, ms. @default 30_000 */
  reauthGraceMs?: number;
  /** Send queue limit in bytes per socket. @default 1_048_576 */
  sendQueueMaxBytes?: number;
  /** Send queue limit in frames per socket. @default 1000 */
  sendQueueMaxMessages?: number;
  /** Frames go straight to a socket while its runtime buffer is below this. @default 65_536 */
  sendHighWaterBytes?: number;
  /** Flush period of backlogged send queues, ms. @default 10 */
  flushMs?: number;
  /** Largest client frame, bytes. @default 16_384 */
  maxFrameBytes?: number;
  /** Protocol violations before the close with 1008. @default 10 */
  maxViolations?: number;
  /** Keys (`tasks:<id>`) per topic per socket. @default 100 */
  maxKeysPerTopic?: number;
  /** Client registry entry lifetime, ms. @default 300_000 */
  clientTtlMs?: number;
  /** Registry refresh period, ms. @default 60_000 */
  registryRefreshMs?: number;
  /** Sockets (open or upgrading) one `sub` may hold on this instance. @default 8 */
  maxSocketsPerSub?: number;
  /** Sockets (open or upgrading) this instance holds in all. @default 20_000 */
  maxSocketsPerInstance?: number;
  /** Upgrade attempts per `sub` per minute, counted in process (no Redis call). @default 30 */
  upgradesPerMinute?: number;
}

/** Why {@linkcode LiveHub.admit} refuses an upgrade, before anything is upgraded. */
export interface SocketRefusal {
  code: "too-many-sockets" | "too-many-upgrades" | "live-feed-full";
  status: 429 | 503;
  detail: string;
  retryAfterS: number;
}

/** Counters of one hub. */
export interface LiveHubMetrics {
  connections: number;
  accepted: number;
  /** Frames queued or sent to sockets. */
  sent: number;
  slowConsumers: number;
  violations: number;
  expiredCloses: number;
  /** Upgrades refused by {@linkcode LiveHub.admit}, per refusal code. */
  refused: Record<SocketRefusal["code"], number>;
  /** Frames that never reached their socket, per reason (edge/ws/send_queue.ts). */
  dropped: Record<DropReason, number>;
}

/** What the upgrade route hands over after authenticating the request. */
export interface AcceptRequest {
  principal: Principal;
  /** The verifier that accepted the token; checks `reauth` tokens too. */
  verifier: Pick<Verifier, "verify">;
  /** Token expiry, epoch ms. */
  expiresAt: number;
  /** Topics to follow from the start (already authorised). */
  topics: readonly string[];
  /** Lead event types `topics`' leads subscriptions are narrowed to (already checked). */
  types?: readonly string[];
}

/** The hub of one instance. */
export interface LiveHub {
  readonly instanceId: string;
  readonly metrics: LiveHubMetrics;
  readonly bus: FeedBus;
  readonly registry: ClientRegistry;
  /** Subscribes to the feed; never throws (the bus retries). */
  start(): Promise<void>;
  /** Closes every socket with 1001 and unsubscribes. */
  stop(): Promise<void>;
  /**
   * Charges an upgrade attempt of `sub` to the in-process limiter and checks
   * the socket caps; null when the upgrade may go ahead. Call `accept()` right
   * after, without awaiting anything in between (the caps count reservations).
   */
  admit(sub: string): SocketRefusal | null;
  /** Upgrades an authenticated request to a live-feed socket. */
  accept(c: Context, request: AcceptRequest): Promise<Response>;
  publish(topic: Topic, data: unknown, options?: PublishOptions): Promise<Published>;
  /** Several messages of one topic in order, one Redis call (see FeedPublisher.publishMany). */
  publishMany(topic: Topic, items: readonly BatchItem[]): Promise<string[]>;
  /** This instance's open sockets. */
  connections(): LiveConnection[];
  /** True when `who` may follow `topic` (the topic's rule; see shared/ws/topics.ts). */
  mayFollow(who: Principal, topic: Topic): boolean;
}

function positiveInt(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) {
    throw new RangeError(`Live hub option "${name}" must be positive: got ${v}`);
  }
  return v;
}

class Hub implements LiveHub, ConnectionHost {
  readonly instanceId: string;
  readonly log: Logger;
  readonly settings: ConnectionSettings;
  readonly metrics: LiveHubMetrics = {
    connections: 0,
    accepted: 0,
    sent: 0,
    slowConsumers: 0,
    violations: 0,
    expiredCloses: 0,
    refused: { "too-many-sockets": 0, "too-many-upgrades": 0, "live-feed-full": 0 },
    dropped: { closed: 0, slow_consumer: 0 },
  };
  readonly bus: FeedBus;
  readonly registry: ClientRegistry;
  readonly now: () => number;
  readonly deadlines: Deadlines;
  readonly #decide: Authorizer;
  readonly #publisher: FeedPublisher;
  readonly #history: {
    scripts: ReturnType<typeof bindFeedScripts>;
    keys: ReturnType<typeof liveFeedKeys>;
  };
  readonly #byTopic = new Map<Topic, Set<LiveConnection>>();
  readonly #all = new Set<LiveConnection>();
  readonly #backlogged = new Set<LiveConnection>();
  /** Registrations and removals, coalesced (a removal never overtakes its registration). */
  readonly #registrations: RegistryBatch;
  readonly #pingIntervalMs: number;
  readonly #flushMs: number;
  readonly #refreshMs: number;
  /** Sockets per sub, counted from the upgrade until the socket is gone. */
  readonly #perSub = new Map<string, number>();
  #reserved = 0;
  readonly #caps: { perSub: number; perInstance: number };
  readonly #upgrades: LocalLimiter;
  /** Every upgraded socket until its close. */
  readonly #sockets = new WeakMap<WebSocket, SocketState>();
  readonly #events = { handleEvent: (evt: Event) => this.#onSocketEvent(evt) };
  #flushTimer: ReturnType<typeof setInterval> | undefined;
  #refreshTimer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;

  constructor(o: LiveHubOptions) {
    if (!o?.redis || !o.log) throw new TypeError('Live hub options "redis" and "log" are required');
    this.instanceId = o.instanceId ?? `e-${crypto.randomUUID().slice(0, 8)}`;
    this.log = o.log.child({ instance: this.instanceId });
    this.now = o.now ?? Date.now;
    this.deadlines = new Deadlines({
      now: this.now,
      onError: (err) => this.log.error("live feed deadline failed", { err }),
    });
    this.#decide = o.decide ?? compilePolicy(ACCESS_POLICY);
    const namespace = o.namespace ?? "pc";
    this.settings = {
      reauthGraceMs: positiveInt("reauthGraceMs", o.reauthGraceMs ?? 30_000),
      maxFrameBytes: positiveInt("maxFrameBytes", o.maxFrameBytes ?? 16_384),
      maxViolations: positiveInt("maxViolations", o.maxViolations ?? 10),
      maxKeys: positiveInt("maxKeysPerTopic", o.maxKeysPerTopic ?? 100),
      queue: {
        maxBytes: positiveInt("sendQueueMaxBytes", o.sendQueueMaxBytes ?? 1_048_576),
        maxMessages: positiveInt("sendQueueMaxMessages", o.sendQueueMaxMessages ?? 1000),
        highWaterBytes: positiveInt("sendHighWaterBytes", o.sendHighWaterBytes ?? 65_536),
      },
    };
    this.#pingIntervalMs = positiveInt("pingIntervalMs", o.pingIntervalMs ?? 25_000);
    this.#flushMs = positiveInt("flushMs", o.flushMs ?? 10);
    this.#refreshMs = positiveInt("registryRefreshMs", o.registryRefreshMs ?? 60_000);
    this.#caps = {
      perSub: positiveInt("maxSocketsPerSub", o.maxSocketsPerSub ?? 8),
      perInstance: positiveInt("maxSocketsPerInstance", o.maxSocketsPerInstance ?? 20_000),
    };
    this.#upgrades = createLocalLimiter({
      algorithm: "sliding_window",
      limit: positiveInt("upgradesPerMinute", o.upgradesPerMinute ?? 30),
      window_s: 60,
      on_store_error: "fail_open",
    });
    this.#publisher = createFeedPublisher({
      redis: o.redis,
      instanceId: this.instanceId,
      namespace,
      historyMaxLen: o.historyMaxLen,
      historyMaxAgeMs: o.historyMaxAgeMs,
    });
    this.#history = { scripts: bindFeedScripts(o.redis), keys: liveFeedKeys(namespace) };
    this.registry = createClientRegistry({ redis: o.redis, namespace, ttlMs: o.clientTtlMs });
    this.#registrations = new RegistryBatch({ registry: this.registry, log: this.log });
    this.bus = new FeedBus({
      redis: o.redis,
      instanceId: this.instanceId,
      namespace,
      heartbeatMs: o.heartbeatMs,
      timeoutMs: o.busTimeoutMs,
      log: this.log,
      onMessage: (m) => this.#fanOut(m),
      onGap: (topic) => {
        for (const conn of this.#byTopic.get(topic) ?? []) conn.gap(topic);
      },
    });
  }

  async start(): Promise<void> {
    this.#refreshTimer = setInterval(() => void this.#refresh(), this.#refreshMs);
    await this.bus.start();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#refreshTimer);
    clearInterval(this.#flushTimer);
    this.deadlines.stop();
    const ids = [...this.#all].map((c) => c.id);
    for (const conn of [...this.#all]) conn.close(CLOSE_CODES.goingAway, "server shutting down");
    // Registrations not sent are dropped; those in flight land before the removal below.
    this.#registrations.discard();
    await this.#registrations.flush();
    await this.registry.remove(ids).catch((err) =>
      this.log.warn("live feed registry cleanup failed", { err })
    );
    await this.bus.stop();
  }

  publish(topic: Topic, data: unknown, options?: PublishOptions): Promise<Published> {
    return this.#publisher.publish(topic, data, options);
  }

  publishMany(topic: Topic, items: readonly BatchItem[]): Promise<string[]> {
    return this.#publisher.publishMany(topic, items);
  }

  mayFollow(who: Principal, topic: Topic): boolean {
    return maySubscribe(who, topic, (path) => this.#decide(who, "GET", path).allowed);
  }

  connections(): LiveConnection[] {
    return [...this.#all];
  }

  lastOffset(topic: Topic): string | null {
    return this.bus.lastOffset(topic);
  }

  readHistory(topic: Topic, since: string | null): Promise<HistoryRead> {
    return readHistory(this.#history, topic, since);
  }

  index(conn: LiveConnection, topic: Topic, following: boolean): void {
    let set = this.#byTopic.get(topic);
    if (following) {
      if (set === undefined) this.#byTopic.set(topic, set = new Set());
      set.add(conn);
    } else if (set !== undefined) {
      set.delete(conn);
      if (set.size === 0) this.#byTopic.delete(topic);
    }
  }

  backlog(conn: LiveConnection): void {
    this.#backlogged.add(conn);
    this.#flushTimer ??= setInterval(() => this.#flush(), this.#flushMs);
  }

  detach(conn: LiveConnection): void {
    this.#all.delete(conn);
    this.#backlogged.delete(conn);
    this.metrics.connections = this.#all.size;
    if (!this.#stopped) this.#registrations.unregister(conn.id);
  }

  count(event: "slowConsumers" | "violations" | "expiredCloses" | "sent"): void {
    this.metrics[event]++;
  }

  dropped(reason: DropReason, frames: number): void {
    this.metrics.dropped[reason] += frames;
  }

  #flush(): void {
    for (const conn of this.#backlogged) {
      if (conn.closed || !conn.flush()) this.#backlogged.delete(conn);
    }
    if (this.#backlogged.size === 0) {
      clearInterval(this.#flushTimer);
      this.#flushTimer = undefined;
    }
  }

  #fanOut(message: FeedMessage): void {
    const conns = this.#byTopic.get(message.topic);
    if (conns === undefined) return;
    const frame = messageFrame(message);
    for (const conn of conns) conn.deliver(message, frame);
  }

  async #refresh(): Promise<void> {
    try {
      await this.registry.touch([...this.#all].map((c) => ({ id: c.id, info: null })));
    } catch (err) {
      this.log.warn("live feed registry refresh failed", { err });
    }
  }

  admit(sub: string): SocketRefusal | null {
    const refusal = this.#refusal(sub);
    if (refusal) this.metrics.refused[refusal.code]++;
    return refusal;
  }

  #refusal(sub: string): SocketRefusal | null {
    const now = this.now();
    const decision = this.#upgrades.limit(sub, now);
    const retryAfterS = Math.max(1, Math.ceil((decision.reset - now) / 1000));
    if (!decision.success) {
      return {
        code: "too-many-upgrades",
        status: 429,
        detail: "Too many live-feed connection attempts; wait before reconnecting",
        retryAfterS,
      };
    }
    if ((this.#perSub.get(sub) ?? 0) >= this.#caps.perSub) {
      return {
        code: "too-many-sockets",
        status: 429,
        detail: `At most ${this.#caps.perSub} live-feed sockets per caller; close one first`,
        retryAfterS,
      };
    }
    if (this.#reserved >= this.#caps.perInstance) {
      return {
        code: "live-feed-full",
        status: 503,
        detail: "This instance holds as many live-feed sockets as it may; retry later",
        retryAfterS: 5,
      };
    }
    return null;
  }

  /** Counts a socket of `sub` from its upgrade (until {@linkcode Hub.#release}). */
  #reserve(sub: string): void {
    this.#reserved++;
    this.#perSub.set(sub, (this.#perSub.get(sub) ?? 0) + 1);
  }

  /** Uncounts a socket's reservation, once. */
  #release(st: SocketState): void {
    if (st.released) return;
    st.released = true;
    this.#reserved--;
    const left = (this.#perSub.get(st.sub) ?? 1) - 1;
    if (left > 0) this.#perSub.set(st.sub, left);
    else this.#perSub.delete(st.sub);
  }

  accept(c: Context, request: AcceptRequest): Promise<Response> {
    // Deno.upgradeWebSocket directly: hono's helper compares the Upgrade
    // header case-sensitively, and clients that send `Upgrade: WebSocket`
    // (the header is case-insensitive, RFC 9110 §7.8) got a 500.
    const offered = c.req.header("sec-websocket-protocol")?.split(",")[0]?.trim();
    const { response, socket } = Deno.upgradeWebSocket(c.req.raw, {
      ...(offered ? { protocol: offered } : {}),
      idleTimeout: (this.#pingIntervalMs * 2) / 1000,
    });
    this.#reserve(request.principal.sub);
    this.#sockets.set(socket, { sub: request.principal.sub, request, conn: null, released: false });
    // One listener object for every socket of the hub, not four closures per
    // socket: the runtime keeps a handler wrapper per `on…` property, which
    // thousands of idle sockets paid for (docs/benchmarks.md, design measurements).
    for (const type of SOCKET_EVENTS) socket.addEventListener(type, this.#events);
    return Promise.resolve(response);
  }

  #onSocketEvent(evt: Event): void {
    const socket = evt.target as WebSocket;
    const st = this.#sockets.get(socket);
    if (st === undefined) return;
    switch (evt.type) {
      case "message":
        st.conn?.receive((evt as MessageEvent).data);
        return;
      case "open":
        socket.removeEventListener("open", this.#events);
        return this.#opened(socket, st);
      case "close":
        this.#sockets.delete(socket);
        this.#release(st);
        st.conn?.dispose();
        return;
      case "error":
        // A socket that never opened gets no close event everywhere; uncount it here too.
        if (st.conn === null) this.#release(st);
        this.log.debug("live feed socket error", { err: (evt as ErrorEvent).message });
        return;
    }
  }

  #opened(socket: WebSocket, st: SocketState): void {
    const request = st.request!;
    st.request = null;
    if (this.#stopped) {
      socket.close(CLOSE_CODES.goingAway, "server shutting down");
      return;
    }
    const conn = new LiveConnection(this, {
      id: crypto.randomUUID(),
      socket,
      principal: request.principal,
      verifier: request.verifier,
      expiresAt: request.expiresAt,
    });
    st.conn = conn;
    this.#all.add(conn);
    this.metrics.accepted++;
    this.metrics.connections = this.#all.size;
    this.#registrations.register(conn.id, {
      instance: this.instanceId,
      user: request.principal.sub,
      connected_at: conn.connectedAt,
    });
    conn.open(request.topics, request.types);
  }
}

/** The socket events the hub listens to. */
const SOCKET_EVENTS = ["open", "message", "close", "error"] as const;

/** What the hub knows about an upgraded socket, from the upgrade until its close. */
interface SocketState {
  sub: string;
  /** Until the socket opens. */
  request: AcceptRequest | null;
  conn: LiveConnection | null;
  /** The socket's reservation against the caps was given back. */
  released: boolean;
}

/** Creates the hub of one instance; call `start()` before serving. */
export function createLiveHub(options: LiveHubOptions): LiveHub {
  return new Hub(options);
}
