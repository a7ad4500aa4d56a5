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
 *   `syncEvery` heartbeats it re-reads the states anyway (event_channel.ts).
 * - Outcomes are batched (see outcome_reporter.ts). The trade-off: a trip
 *   decided by the failure-rate rule, or by consecutive failures spread over
 *   several instances, lands up to `flushMs` (+ one round trip) later than
 *   with per-call reporting; an instance that alone sees `fail_max` failures
 *   in a row reports at once.
 * - Redis unreachable (a script or ping fails, or takes longer than
 *   `storeTimeoutMs`): every breaker switches to a local in-process breaker
 *   with the same rules, starting from the cached state (a CLOSED breaker
 *   keeps the failures it had not reported yet). Every heartbeat the registry
 *   tries Redis again; when it answers it resubscribes and reconciles:
 *   operator states and any change made meanwhile in Redis win; a local
 *   OPEN/HALF_OPEN over an unchanged shared CLOSED is pushed to Redis (OPEN
 *   for the local remaining time, so one probe soon verifies it; HALF_OPEN
 *   at once when the local breaker had already left OPEN); an unchanged
 *   shared OPEN whose local copy left OPEN (its background probe saw the
 *   dependency answer) half-opens; otherwise the shared state is adopted.
 *   Local counts are not replayed (local_fallback.ts).
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
import { DependencyUnavailableError } from "../errors.ts";
import { Breaker } from "./breaker.ts";
import { type BreakerContext, type BreakerMetrics, createBreakerMetrics } from "./context.ts";
import { BreakerEventChannel } from "./event_channel.ts";
import { breakerKeys } from "./keys.ts";
import { createLoopLagMeter, type LoopLag, type LoopLagMeter, netTimer } from "../loop_lag.ts";
import { resyncStates } from "./local_fallback.ts";
import {
  type BreakerRegistryOptions,
  type ResolvedRegistryOptions,
  resolveRegistryOptions,
} from "./registry_options.ts";
import { bindBreakerScripts, type BreakerScripts, type SharedState } from "./scripts.ts";
import { snapshotOf } from "./shared_view.ts";
import { announceTransition } from "./transition_log.ts";
import type { BreakerSnapshot } from "./types.ts";
import { BREAKER_OPERATE } from "../redis/script_codes.ts";

export type { BreakerRegistryOptions };

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
  /**
   * The downstream answered a background health check: an OPEN breaker
   * moves to HALF_OPEN now instead of at its reset timeout (any other state
   * is left alone); while Redis is unreachable, the local breaker does.
   * shared/breakers/background_probe.ts calls it.
   */
  halfOpen(name: string): Promise<BreakerSnapshot>;
  /** Dispatches `CustomEvent<BreakerTransition>` events of type "transition". */
  readonly events: EventTarget;
  readonly metrics: BreakerMetrics;
  /** "redis" normally; "local" while Redis is unreachable. */
  readonly mode: "redis" | "local";
  /** This process's event-loop stall, which slow calls are judged net of (loop_lag.ts). */
  readonly loopLag: LoopLag;
  readonly instanceId: string;
}

class Registry implements BreakerRegistry {
  readonly events = new EventTarget();
  readonly metrics = createBreakerMetrics();
  readonly instanceId: string;
  readonly loopLag: LoopLag;
  /** The meter this registry runs itself (none when the caller gave a stall source). */
  readonly #meter: LoopLagMeter | null;
  readonly #o: ResolvedRegistryOptions;
  readonly #scripts: BreakerScripts;
  readonly #channel: BreakerEventChannel;
  readonly #breakers = new Map<string, Breaker>();
  #mode: "redis" | "local" = "redis";
  #started = false;
  #stopped = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking = false;
  #ticks = 0;

  constructor(options: BreakerRegistryOptions) {
    this.#o = resolveRegistryOptions(options);
    const o = this.#o;
    this.instanceId = o.instanceId;
    this.#meter = o.loopLag === null ? createLoopLagMeter() : null;
    this.loopLag = o.loopLag ?? this.#meter!;
    const keys = breakerKeys(o.namespace);
    this.#scripts = bindBreakerScripts(o.redis, keys, this.instanceId);
    this.#channel = new BreakerEventChannel({
      redis: o.redis,
      channel: keys.channel,
      instanceId: this.instanceId,
      confirmTimeoutMs: o.storeTimeoutMs * 2,
      breakers: this.#breakers,
    });
    const ctx: BreakerContext = {
      instanceId: this.instanceId,
      now: o.now,
      lag: this.loopLag,
      scripts: this.#scripts,
      flushMs: o.flushMs,
      flushMax: o.flushMax,
      metrics: this.metrics,
      op: (what, fn) => this.#op(what, fn),
      emit: (t) =>
        announceTransition(t, {
          events: this.events,
          metrics: this.metrics,
          log: o.log,
          instanceId: this.instanceId,
        }),
    };
    for (const [name, policy] of Object.entries(o.policies)) {
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
    this.#meter?.start();
    this.#timer = setInterval(() => void this.#tick(), this.#o.heartbeatMs);
    try {
      await this.#channel.subscribe();
    } catch (err) {
      // The heartbeat resubscribes; until then every heartbeat re-reads the states.
      this.#o.log?.warn("breaker events subscription failed: polling", { err });
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
    this.#meter?.stop();
    if (this.#mode === "redis") {
      await Promise.allSettled([...this.#breakers.values()].map((b) => b.drain()));
    }
    for (const b of this.#breakers.values()) b.halt();
    await this.#channel.unsubscribe();
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

  halfOpen(name: string): Promise<BreakerSnapshot> {
    // While Redis is unreachable the local breaker takes it: otherwise a
    // local OPEN would wait its whole reset timeout although the
    // downstream answers.
    const local = this.#mode === "local" ? this.get(name).halfOpenLocal() : null;
    if (local !== null) {
      this.#o.log?.info("local breaker half-opened by its health check", {
        breaker: name,
        state: local.state,
      });
      return Promise.resolve(local);
    }
    return this.#operate(name, "half_open");
  }

  async #operate(
    name: string,
    action: "reset" | "force_open" | "disable" | "half_open",
  ): Promise<BreakerSnapshot> {
    const breaker = this.get(name);
    if (this.#mode === "local") {
      throw new DependencyUnavailableError(
        `Cannot ${action.replace("_", " ")} breaker "${name}": Redis is unreachable`,
      );
    }
    const s = await this.#op(`operate ${action}`, () => this.#scripts.operate(name, action));
    breaker.apply(s);
    this.#o.log?.info(
      action === "half_open"
        ? "breaker half-opened by its health check"
        : "breaker operator action",
      { breaker: name, action, state: s.state, changed: s.code === BREAKER_OPERATE.changed },
    );
    return snapshotOf(name, s);
  }

  async #op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const ms = this.#o.storeTimeoutMs;
    let cancel = () => {};
    // Net of this process's stall (loop_lag.ts): a starved process would
    // otherwise declare Redis unreachable and leave the shared breakers for
    // local ones, whose OPEN waits its whole reset timeout (no background
    // probe half-opens a local breaker).
    const late = new Promise<never>((_, reject) => {
      cancel = netTimer(ms, () => performance.now(), this.loopLag, () =>
        reject(
          new DependencyUnavailableError(`Breaker store did not answer "${what}" within ${ms}ms`),
        ));
    });
    try {
      return await Promise.race([fn(), late]);
    } catch (err) {
      this.metrics.storeErrors++;
      this.#enterLocal(err, what);
      throw err;
    } finally {
      cancel();
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

  #enterLocal(err: unknown, what: string): void {
    if (this.#mode === "local" || this.#stopped) return;
    this.#mode = "local";
    this.metrics.fallbacks++;
    this.#o.log?.warn("breaker store unreachable: breakers decide locally", { err, op: what });
    for (const b of this.#breakers.values()) b.enterLocal();
    void this.#channel.unsubscribe();
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = true;
    try {
      if (this.#mode === "local") {
        await this.#recover();
        return;
      }
      if (!this.#channel.alive) {
        this.metrics.resubscribes++;
        this.#o.log?.warn("breaker events stream lost: resubscribing", {
          pings_sent: this.#channel.pingsSent,
          pings_echoed: this.#channel.pingsEchoed,
        });
        // Still broken: the re-read below is a poll; next heartbeat tries again.
        await this.#channel.subscribe().catch(() => {});
        await this.#syncAll();
      } else if (++this.#ticks % this.#o.syncEvery === 0) {
        await this.#syncAll();
      }
      if (this.#stopped || this.#mode !== "redis") return;
      await this.#op("ping", () => this.#channel.ping());
    } catch {
      // #op has switched to local breakers; the next heartbeat retries Redis.
    } finally {
      this.#ticking = false;
    }
  }

  /** Local mode: tries Redis; when it answers, resubscribes and reconciles every breaker. */
  async #recover(): Promise<void> {
    const breakers = [...this.#breakers.values()];
    try {
      const final = await resyncStates(breakers, {
        scripts: this.#scripts,
        subscribe: () => this.#channel.subscribe(),
        timeoutMs: this.#o.storeTimeoutMs,
      });
      if (this.#stopped) return;
      this.#mode = "redis";
      this.metrics.resyncs++;
      final.forEach((s, i) => breakers[i]!.leaveLocal(s));
      this.#o.log?.info("breaker store reachable: resynced", {
        states: Object.fromEntries(final.map((s, i) => [breakers[i]!.name, s.state])),
      });
    } catch {
      await this.#channel.unsubscribe().catch(() => {});
    }
  }
}

/** Creates the breaker registry of one process; call `start()` to follow transitions. */
export function createBreakerRegistry(options: BreakerRegistryOptions): BreakerRegistry {
  return new Registry(options);
}
