/**
 * The breakers of one process, sharing their state through Redis.
 *
 * - State lives in one hash per breaker; every transition is one Lua script
 *   (scripts/), which also counts it and PUBLISHes it on one channel.
 * - Each instance caches every breaker's state and follows the channel
 *   (`redis.subscribe`, SSE through the Upstash bridge), so a breaker opened
 *   anywhere refuses calls here as soon as the message arrives. The SDK does
 *   not notice a stream that ended, so the registry publishes a heartbeat
 *   ping every `heartbeatMs` and expects its own echo: two missing echoes
 *   mean the stream is dead, and it resubscribes and re-reads every state
 *   (and polls every heartbeat until a stream works again). Every
 *   `syncEvery` heartbeats it re-reads the states anyway.
 * - Outcomes are batched (see breaker.ts). The trade-off: a trip decided by
 *   the failure-rate rule, or by consecutive failures spread over several
 *   instances, lands up to `flushMs` (+ one round trip) later than with
 *   per-call reporting; an instance that alone sees `fail_max` failures in a
 *   row reports at once.
 * - Redis unreachable (a script or ping fails, or takes longer than
 *   `storeTimeoutMs`): every breaker switches to a local in-process breaker
 *   with the same rules, starting from the cached state (a CLOSED breaker
 *   keeps the failures it had not reported yet). Every heartbeat the registry
 *   tries Redis again; when it answers it resubscribes and reconciles:
 *   operator states and any change made meanwhile in Redis win; a local
 *   OPEN/HALF_OPEN over an unchanged shared CLOSED is pushed to Redis (OPEN
 *   for the local remaining time, so one probe soon verifies it); otherwise
 *   the shared state is adopted. Local counts are not replayed.
 *
 * @example
 * ```ts
 * const breakers = createBreakerRegistry({ redis: deps.redis, log: deps.log });
 * await breakers.start();
 * const res = await breakers.get("places").fetch("https://places.example/v1/search?q=x");
 * ```
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { Logger } from "../log.ts";
import { DependencyUnavailableError } from "../errors.ts";
import { Breaker } from "./breaker.ts";
import { type BreakerContext, type BreakerMetrics, createBreakerMetrics } from "./context.ts";
import { breakerKeys } from "./keys.ts";
import { type BreakerPolicyInput, DEFAULT_BREAKER_POLICIES, resolvePolicies } from "./policy.ts";
import { bindBreakerScripts, type BreakerScripts, type SharedState } from "./scripts.ts";
import type { BreakerSnapshot, BreakerStateName, BreakerTransition } from "./types.ts";

/** Options for {@linkcode createBreakerRegistry}. */
export interface BreakerRegistryOptions {
  /** Upstash client built with `createRedis` (raw strings, bounded retries). */
  redis: Redis;
  /** Policies by breaker name. @default DEFAULT_BREAKER_POLICIES */
  policies?: Readonly<Record<string, BreakerPolicyInput>>;
  /** Transitions, outages and resyncs are logged here. @default no logging */
  log?: Logger;
  /** Clock, ms. @default Date.now */
  now?: () => number;
  /** Names this instance in Redis and in events. @default "i-" + 8 random hex digits */
  instanceId?: string;
  /** Redis key namespace. @default "pc" */
  namespace?: string;
  /** Longest time an outcome waits before it is reported, ms. @default 50 */
  flushMs?: number;
  /** Outcomes that trigger a report at once. @default 256 */
  flushMax?: number;
  /** Heartbeat (subscription check) and, while Redis is away, retry period, ms. @default 500 */
  heartbeatMs?: number;
  /** Full state re-read every this many heartbeats. @default 10 */
  syncEvery?: number;
  /** A Redis operation slower than this counts as a failure, ms. @default 1000 */
  storeTimeoutMs?: number;
}

/** The registry of breakers of one process. */
export interface BreakerRegistry {
  /** The breaker of one downstream; throws RangeError for an unknown name. */
  get(name: string): Breaker;
  /** Subscribes to transitions and reads every state; never throws (falls back to local breakers). */
  start(): Promise<void>;
  /** Reports pending outcomes and unsubscribes. */
  stop(): Promise<void>;
  /** Current state of every breaker (read from Redis; local snapshots while it is away). */
  list(): Promise<BreakerSnapshot[]>;
  /** Operator: CLOSED, counters cleared. */
  reset(name: string): Promise<BreakerSnapshot>;
  /** Operator: refuse every call until a reset. */
  forceOpen(name: string): Promise<BreakerSnapshot>;
  /** Operator: let every call through, count nothing, until a reset. */
  disable(name: string): Promise<BreakerSnapshot>;
  /** Dispatches `CustomEvent<BreakerTransition>` events of type "transition". */
  readonly events: EventTarget;
  readonly metrics: BreakerMetrics;
  /** "redis" normally; "local" while Redis is unreachable. */
  readonly mode: "redis" | "local";
  readonly instanceId: string;
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

function snapshotOf(name: string, s: SharedState): BreakerSnapshot {
  return {
    name,
    state: s.state,
    source: "redis",
    epoch: s.epoch,
    openRemainingMs: s.state === "open" ? Math.max(0, s.openRemainingMs) : null,
    probeRemainingMs: s.probeRemainingMs >= 0 ? s.probeRemainingMs : null,
    consecutiveFailures: s.consecutive,
    trips: s.trips,
    reason: s.reason,
    by: s.by,
  };
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) {
    throw new RangeError(
      `Breaker registry option "${name}" must be positive: current value is ${v}`,
    );
  }
  return v;
}

class Registry implements BreakerRegistry {
  readonly events = new EventTarget();
  readonly metrics = createBreakerMetrics();
  readonly instanceId: string;
  readonly #redis: Redis;
  readonly #log: Logger | null;
  readonly #channel: string;
  readonly #scripts: BreakerScripts;
  readonly #breakers = new Map<string, Breaker>();
  readonly #heartbeatMs: number;
  readonly #syncEvery: number;
  readonly #storeTimeoutMs: number;
  #mode: "redis" | "local" = "redis";
  #started = false;
  #stopped = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking = false;
  #ticks = 0;
  #sub: ReturnType<Redis["subscribe"]> | null = null;
  #subReady = false;
  #pingSent = 0;
  #pingAcked = 0;

  constructor(options: BreakerRegistryOptions) {
    if (!options?.redis) throw new TypeError('Breaker registry option "redis" is required');
    this.#redis = options.redis;
    this.#log = options.log ?? null;
    this.instanceId = options.instanceId ?? `i-${crypto.randomUUID().slice(0, 8)}`;
    const keys = breakerKeys(options.namespace ?? "pc");
    this.#channel = keys.channel;
    this.#scripts = bindBreakerScripts(options.redis, keys, this.instanceId);
    this.#heartbeatMs = positive("heartbeatMs", options.heartbeatMs ?? 500);
    this.#syncEvery = positive("syncEvery", options.syncEvery ?? 10);
    this.#storeTimeoutMs = positive("storeTimeoutMs", options.storeTimeoutMs ?? 1000);
    const ctx: BreakerContext = {
      instanceId: this.instanceId,
      now: options.now ?? Date.now,
      scripts: this.#scripts,
      flushMs: positive("flushMs", options.flushMs ?? 50),
      flushMax: positive("flushMax", options.flushMax ?? 256),
      metrics: this.metrics,
      op: (what, fn) => this.#op(what, fn),
      emit: (t) => this.#emit(t),
    };
    const policies = resolvePolicies(options.policies ?? DEFAULT_BREAKER_POLICIES);
    for (const [name, policy] of Object.entries(policies)) {
      this.#breakers.set(name, new Breaker(name, policy, ctx));
    }
  }

  get mode(): "redis" | "local" {
    return this.#mode;
  }

  get(name: string): Breaker {
    const b = this.#breakers.get(name);
    if (b === undefined) {
      throw new RangeError(
        `Unknown breaker "${name}": configured are ${[...this.#breakers.keys()].join(", ")}`,
      );
    }
    return b;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#timer = setInterval(() => void this.#tick(), this.#heartbeatMs);
    try {
      await this.#subscribe();
    } catch (err) {
      // The heartbeat resubscribes; until then every heartbeat re-reads the states.
      this.#log?.warn("breaker events subscription failed: polling", { err });
    }
    try {
      await this.#syncAll();
    } catch {
      // Redis unreachable: #op has switched to local breakers.
    }
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    if (this.#mode === "redis") {
      await Promise.allSettled([...this.#breakers.values()].map((b) => b.drain()));
    }
    for (const b of this.#breakers.values()) b.halt();
    await this.#unsubscribe();
  }

  async list(): Promise<BreakerSnapshot[]> {
    const names = [...this.#breakers.keys()];
    if (this.#mode === "redis") {
      try {
        const states = await this.#readAll();
        return states.map((s, i) => snapshotOf(names[i]!, s));
      } catch {
        // fell back to local breakers: report those
      }
    }
    return names.map((n) => this.#breakers.get(n)!.snapshot());
  }

  reset(name: string): Promise<BreakerSnapshot> {
    return this.#operate(name, "reset");
  }

  forceOpen(name: string): Promise<BreakerSnapshot> {
    return this.#operate(name, "force_open");
  }

  disable(name: string): Promise<BreakerSnapshot> {
    return this.#operate(name, "disable");
  }

  async #operate(
    name: string,
    action: "reset" | "force_open" | "disable",
  ): Promise<BreakerSnapshot> {
    const breaker = this.get(name);
    if (this.#mode === "local") {
      throw new DependencyUnavailableError(
        `Cannot ${action.replace("_", " ")} breaker "${name}": Redis is unreachable`,
      );
    }
    const s = await this.#op(`operate ${action}`, () => this.#scripts.operate(name, action));
    breaker.apply(s);
    this.#log?.info("breaker operator action", {
      breaker: name,
      action,
      state: s.state,
      changed: s.code === 1,
    });
    return snapshotOf(name, s);
  }

  async #op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new DependencyUnavailableError(
                  `Breaker store did not answer "${what}" within ${this.#storeTimeoutMs}ms`,
                ),
              ),
            this.#storeTimeoutMs,
          );
        }),
      ]);
    } catch (err) {
      this.metrics.storeErrors++;
      this.#enterLocal(err, what);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  #readAll(): Promise<SharedState[]> {
    const names = [...this.#breakers.keys()];
    // One HTTP request: the SDK auto-pipelines concurrent commands.
    return this.#op("read", () => Promise.all(names.map((n) => this.#scripts.read(n))));
  }

  async #syncAll(): Promise<void> {
    const states = await this.#readAll();
    const breakers = [...this.#breakers.values()];
    states.forEach((s, i) => breakers[i]!.apply(s));
  }

  #emit(t: BreakerTransition): void {
    const key = `${t.from}>${t.to}`;
    this.metrics.transitions[key] = (this.metrics.transitions[key] ?? 0) + 1;
    const fields = {
      breaker: t.name,
      from: t.from,
      to: t.to,
      reason: t.reason,
      source: t.source,
      by: t.by,
      epoch: t.epoch,
    };
    if (t.source === "local" || t.by === this.instanceId) {
      const opened = t.to === "open" || t.to === "forced_open";
      this.#log?.[opened ? "warn" : "info"]("breaker transition", fields);
    } else {
      this.#log?.debug("breaker transition observed", fields);
    }
    this.events.dispatchEvent(new CustomEvent<BreakerTransition>("transition", { detail: t }));
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
      if (msg.from === this.instanceId && typeof msg.seq === "number") {
        this.#pingAcked = Math.max(this.#pingAcked, msg.seq);
      }
      return;
    }
    const breaker = typeof msg.name === "string" ? this.#breakers.get(msg.name) : undefined;
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

  /** Opens a new event stream; resolves once Redis confirmed the subscription. */
  async #subscribe(): Promise<void> {
    await this.#unsubscribe();
    const sub = this.#redis.subscribe<unknown>(this.#channel);
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
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        ready.promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new DependencyUnavailableError("Breaker event subscription not confirmed")),
            this.#storeTimeoutMs * 2,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #unsubscribe(): Promise<void> {
    const sub = this.#sub;
    this.#sub = null;
    this.#subReady = false;
    if (sub !== null) await sub.unsubscribe();
  }

  #enterLocal(err: unknown, what: string): void {
    if (this.#mode === "local" || this.#stopped) return;
    this.#mode = "local";
    this.metrics.fallbacks++;
    this.#log?.warn("breaker store unreachable: breakers decide locally", { err, op: what });
    for (const b of this.#breakers.values()) b.enterLocal();
    void this.#unsubscribe();
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = true;
    try {
      if (this.#mode === "local") {
        await this.#recover();
        return;
      }
      const alive = this.#subReady && this.#pingSent - this.#pingAcked < 2;
      if (!alive) {
        this.metrics.resubscribes++;
        this.#log?.warn("breaker events stream lost: resubscribing", {
          pings_sent: this.#pingSent,
          pings_echoed: this.#pingAcked,
        });
        // Still broken: the re-read below is a poll; next heartbeat tries again.
        await this.#subscribe().catch(() => {});
        await this.#syncAll();
      } else if (++this.#ticks % this.#syncEvery === 0) {
        await this.#syncAll();
      }
      if (this.#stopped || this.#mode !== "redis") return;
      const seq = ++this.#pingSent;
      const ping = JSON.stringify({ t: "ping", from: this.instanceId, seq });
      await this.#op("ping", () => this.#redis.publish(this.#channel, ping));
    } catch {
      // #op has switched to local breakers; the next heartbeat retries Redis.
    } finally {
      this.#ticking = false;
    }
  }

  /** Local mode: tries Redis; when it answers, resubscribes and reconciles every breaker. */
  async #recover(): Promise<void> {
    const names = [...this.#breakers.keys()];
    const breakers = [...this.#breakers.values()];
    const timeout = this.#storeTimeoutMs;
    const bounded = <T>(p: Promise<T>) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("Breaker store retry timed out")), timeout);
        }),
      ]).finally(() => clearTimeout(timer));
    };
    try {
      let states = await bounded(Promise.all(names.map((n) => this.#scripts.read(n))));
      await this.#subscribe().catch(() => {});
      // Re-read after subscribing: nothing published in between is missed.
      states = await bounded(Promise.all(names.map((n) => this.#scripts.read(n))));
      const final = await bounded(Promise.all(states.map((s, i) => {
        const adopt = breakers[i]!.reconcilePlan(s);
        if (adopt === null) return Promise.resolve(s);
        const b = breakers[i]!;
        return this.#scripts.report(b.name, b.policy, s.epoch, null, { adoptOpenMs: adopt });
      })));
      if (this.#stopped) return;
      this.#mode = "redis";
      this.metrics.resyncs++;
      final.forEach((s, i) => breakers[i]!.leaveLocal(s));
      this.#log?.info("breaker store reachable: resynced", {
        states: Object.fromEntries(final.map((s, i) => [names[i], s.state])),
      });
    } catch {
      await this.#unsubscribe().catch(() => {});
    }
  }
}

/** Creates the breaker registry of one process; call `start()` to follow transitions. */
export function createBreakerRegistry(options: BreakerRegistryOptions): BreakerRegistry {
  return new Registry(options);
}
