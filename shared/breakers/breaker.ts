/**
 * One breaker as an instance sees it: a cached view of the shared state
 * (kept fresh by pub/sub and by every script reply; shared_view.ts), a batch
 * of outcomes waiting to be reported (outcome_reporter.ts), and, while Redis
 * is unreachable, a local breaker (local_fallback.ts). Built only by the
 * registry (registry.ts).
 *
 * The hot path (a CLOSED breaker) makes no Redis call: it runs the call,
 * classifies the outcome and adds it to the batch; the batch is reported in
 * ONE script call per breaker every `flushMs`, or at once when it holds
 * `flushMax` outcomes or when this instance alone has seen `fail_max`
 * failures in a row. A HALF_OPEN breaker lets a call through only as the
 * probe (probes.ts).
 *
 * @module
 */
import type { BreakerPolicy } from "./policy.ts";
import { classifyError, classifyStatus, type Outcome, parseRetryAfter } from "./classify.ts";
import { type CallOptions, invoke, type Judge } from "./invoke.ts";
import { BreakerOpenError, BreakerThrottledError, BreakerTimeoutError } from "./errors.ts";
import { type FallbackHost, LocalFallback, type ReconcilePlan } from "./local_fallback.ts";
import { OutcomeReporter, type ReporterHost } from "./outcome_reporter.ts";
import { type ProbeHost, Probes } from "./probes.ts";
import type { SharedState } from "./scripts.ts";
import type { ProbeMessage, TransitionMessage } from "./event_channel.ts";
import { SharedView, type SharedViewHost } from "./shared_view.ts";
import type { BreakerSnapshot, BreakerStateName } from "./types.ts";
import type { BreakerContext } from "./context.ts";
import { SlowCallWatch } from "./slow_call_watch.ts";

export type { CallOptions };
export type { BreakerMetrics } from "./context.ts";

/** `fetch` init plus the breaker's own timeout. */
export type BreakerFetchInit = RequestInit & {
  /** @default the policy's timeout_ms */
  timeoutMs?: number;
};

const LOCAL = -1;

/** What the parts of a breaker need from each other, passed through the breaker. */
type Host = SharedViewHost & ReporterHost & ProbeHost & FallbackHost;

/** A circuit breaker for one downstream. Get one from `registry.get(name)`. */
export class Breaker {
  readonly name: string;
  readonly policy: BreakerPolicy;
  readonly #ctx: BreakerContext;
  readonly #judgeResponse: Judge<Response>;
  readonly #host: Host;
  readonly #shared: SharedView;
  readonly #reporter: OutcomeReporter;
  readonly #probes: Probes;
  /** Times counted calls against slow_call_ms; null without that rule. */
  readonly #slowCalls: SlowCallWatch | null;
  #local: LocalFallback | null = null;

  /** @internal Built by the registry. */
  constructor(name: string, policy: BreakerPolicy, ctx: BreakerContext) {
    this.name = name;
    this.policy = policy;
    this.#ctx = ctx;
    this.#judgeResponse = (res) => classifyStatus(res.status, policy);
    // The parts reach each other through this breaker, which knows whether
    // the shared state or a local breaker decides.
    this.#host = {
      name,
      policy,
      ctx,
      epoch: () => this.#shared.current.epoch,
      local: () => this.#local?.breaker ?? null,
      apply: (s) => this.apply(s),
      refuse: (state, retryAfterMs) => this.#refuse(state, retryAfterMs),
      onNewEpoch: () => this.#reporter.restart(),
    };
    this.#shared = new SharedView(this.#host);
    this.#reporter = new OutcomeReporter(this.#host);
    this.#probes = new Probes(this.#host);
    this.#slowCalls = policy.slow_call_ms === null ? null : new SlowCallWatch(
      policy.slow_call_ms,
      ctx.now,
      ctx.lag,
      (call) => this.#record("failure", true, call.epoch),
    );
  }

  /** Cached state (synchronous, no Redis call). OPEN stays OPEN until a call starts the probe. */
  get state(): BreakerStateName {
    return this.#local === null ? this.#shared.current.state : this.#local.breaker.state;
  }

  /** True while this breaker decides locally (Redis unreachable). */
  get local(): boolean {
    return this.#local !== null;
  }

  /**
   * Runs `fn` through the breaker. A thrown error is classified (timeouts,
   * connection errors, 5xx `status` → failure; 4xx → success; 429 →
   * ignored); a value is a success unless slower than `slow_call_ms`.
   * Throws BreakerOpenError without calling `fn` while calls are refused.
   */
  call<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    options: CallOptions = {},
  ): Promise<T> {
    return this.#run(fn, options, null);
  }

  /**
   * `fetch` through the breaker with the policy's timeout. Responses are
   * returned as they are (a 5xx counts as a failure, a 4xx as a success);
   * a 429 with `Retry-After` throws BreakerThrottledError carrying the wait
   * and the response, and counts as nothing.
   */
  async fetch(input: string | URL | Request, init: BreakerFetchInit = {}): Promise<Response> {
    const { timeoutMs = this.policy.timeout_ms, ...rest } = init;
    // fetch honours its signal, so the timeout needs no Promise.race; the
    // timer stops once the headers are in (a slow body is the caller's).
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new BreakerTimeoutError(this.name, timeoutMs)),
      timeoutMs,
    );
    const callerSignal = rest.signal ?? undefined;
    const signal = callerSignal
      ? AbortSignal.any([callerSignal, controller.signal])
      : controller.signal;
    let res: Response;
    try {
      res = await this.#run(
        () => fetch(input, { ...rest, signal }),
        { signal: callerSignal },
        this.#judgeResponse,
      );
    } finally {
      clearTimeout(timer);
    }
    if (res.status === 429) {
      const wait = parseRetryAfter(res.headers.get("retry-after"), Date.now());
      if (wait !== null) throw new BreakerThrottledError(this.name, wait, res);
    }
    return res;
  }

  /** This instance's view as a snapshot (no Redis call). */
  snapshot(): BreakerSnapshot {
    if (this.#local !== null) return this.#local.snapshot();
    return this.#shared.snapshot(this.#reporter.consecutive);
  }

  #refuse(state: BreakerStateName, retryAfterMs: number | null): BreakerOpenError {
    this.#ctx.metrics.rejected++;
    return new BreakerOpenError(
      this.name,
      state,
      retryAfterMs === null ? null : Math.max(0, Math.ceil(retryAfterMs)),
    );
  }

  #run<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    options: CallOptions,
    judge: Judge<T>,
  ): Promise<T> {
    const fallback = this.#local;
    if (fallback === null) {
      const v = this.#shared.current;
      switch (v.state) {
        case "closed":
          // This instance alone saw fail_max failures in a row and is
          // reporting them: hold calls until Redis answers (one round trip)
          // instead of sending more to a downstream that is likely down.
          if (this.#reporter.holding) {
            return Promise.reject(this.#refuse("open", this.policy.reset_timeout_ms));
          }
          return this.#counted(fn, options, judge, v.epoch);
        case "disabled":
          return invoke(this.name, fn, options.signal, options.timeoutMs);
        case "forced_open":
          return Promise.reject(this.#refuse("forced_open", null));
        case "open": {
          const left = v.openUntil - this.#ctx.now();
          if (left > 0) return Promise.reject(this.#refuse("open", left));
          break;
        }
        case "half_open":
          if (v.probeUntil !== null) {
            const left = v.probeUntil - this.#ctx.now();
            if (left > 0) return Promise.reject(this.#refuse("half_open", left));
          }
      }
      // One lease request per instance at a time: the other callers are refused.
      if (this.#probes.acquiring) {
        return Promise.reject(this.#refuse("half_open", this.policy.probe_lease_ms));
      }
      return this.#sharedProbe(fn, options, judge);
    }
    this.#ctx.metrics.localDecisions++;
    const local = fallback.breaker;
    const admission = local.admit();
    if (admission.kind === "reject") {
      return Promise.reject(this.#refuse(admission.state, admission.retryAfterMs));
    }
    if (admission.kind === "probe") return this.#probes.runLocal(local, fn, options, judge);
    if (local.state === "disabled") return invoke(this.name, fn, options.signal, options.timeoutMs);
    return this.#counted(fn, options, judge, LOCAL);
  }

  /** A call outside HALF_OPEN whose outcome is counted (in the batch, or by the local breaker). */
  async #counted<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    options: CallOptions,
    judge: Judge<T>,
    epoch: number,
  ): Promise<T> {
    const watch = this.#slowCalls;
    // A call still running at slow_call_ms counts as a slow failure THEN, not
    // when it ends: calls hanging on a dead downstream (each until its
    // connect timeout) open the breaker after slow_call_ms, not after
    // fail_max full timeouts. Its eventual outcome is then not counted again.
    // Both measure the call net of this process's own event-loop stall
    // (loop_lag.ts): a starved process is not a slow downstream.
    const watched = watch?.start(epoch) ?? null;
    let value: T;
    try {
      value = await invoke(this.name, fn, options.signal, options.timeoutMs);
    } catch (err) {
      if (watched === null || !watch!.end(watched)) {
        this.#record(
          classifyError(err, this.policy, options.signal?.aborted === true),
          false,
          epoch,
        );
      }
      throw err;
    }
    if (watched !== null && watch!.end(watched)) return value;
    const slow = watched !== null && watch!.elapsed(watched) > this.policy.slow_call_ms!;
    this.#record(judge === null ? "success" : judge(value), slow, epoch);
    return value;
  }

  #record(outcome: Outcome, slow: boolean, epoch: number): void {
    if (outcome === "ignored") return;
    const fallback = this.#local;
    if (fallback !== null) {
      fallback.breaker.record(outcome, slow);
      return;
    }
    const v = this.#shared.current;
    // Observed under an earlier state: says nothing about the current one.
    if (v.epoch !== epoch || v.state !== "closed") return;
    this.#reporter.add(outcome === "failure" || slow, slow);
  }

  async #sharedProbe<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    options: CallOptions,
    judge: Judge<T>,
  ): Promise<T> {
    const token = await this.#probes.acquire();
    // No lease needed after all (the state moved on, or Redis went away): decide again.
    if (token === null) return this.#run(fn, options, judge);
    return this.#probes.runShared(token, fn, options, judge);
  }

  /** @internal Reports what is pending now (registry stop). */
  drain(): Promise<void> {
    return this.#reporter.drain();
  }

  /** @internal Stops the flush and slow-call timers without reporting. */
  halt(): void {
    this.#reporter.halt();
    this.#slowCalls?.halt();
  }

  /**
   * @internal Adopts a shared state reported by a script or a sync. Older
   * epochs are ignored (a message may overtake a reply).
   */
  apply(s: SharedState): void {
    if (this.#local === null) this.#shared.apply(s);
  }

  /** @internal A transition published by any instance. */
  applyTransition(msg: TransitionMessage): void {
    if (this.#local === null) this.#shared.applyTransition(msg);
  }

  /** @internal A probe lease taken (probe_ms ≥ 0) or freed (-1) by any instance. */
  applyProbe(msg: ProbeMessage): void {
    if (this.#local === null) this.#shared.applyProbe(msg);
  }

  /**
   * @internal The background health check answered while Redis is
   * unreachable: the local breaker half-opens (probeAnswered). Null when
   * this breaker is not in local mode.
   */
  halfOpenLocal(): BreakerSnapshot | null {
    const fallback = this.#local;
    if (fallback === null) return null;
    fallback.breaker.probeAnswered();
    return fallback.snapshot();
  }

  /** @internal Redis is unreachable: a local breaker takes over from the cached view. */
  enterLocal(): void {
    if (this.#local !== null) return;
    const pending = this.#reporter.handOver();
    const fallback = new LocalFallback(this.#host, this.#shared.current);
    // A CLOSED breaker keeps the failures it had not reported yet.
    fallback.breaker.ingest(pending);
    this.#local = fallback;
  }

  /**
   * @internal The reconcile rule, part 1 (see LocalFallback.reconcilePlan):
   * what the resync does with the shared state.
   */
  reconcilePlan(shared: SharedState): ReconcilePlan {
    return this.#local?.reconcilePlan(shared) ?? { kind: "adopt" };
  }

  /** @internal The reconcile rule, part 2: leave local mode and adopt `shared`. */
  leaveLocal(shared: SharedState): void {
    const fallback = this.#local;
    if (fallback === null) return this.apply(shared);
    this.#local = null;
    this.#shared.resync(shared, fallback.breaker.state);
  }
}
