/**
 * One breaker as an instance sees it: a cached view of the shared state
 * (kept fresh by pub/sub and by every script reply), a batch of outcomes
 * waiting to be reported, and, while Redis is unreachable, a local breaker.
 * Built only by the registry (registry.ts).
 *
 * The hot path (a CLOSED breaker) makes no Redis call: it runs the call,
 * classifies the outcome and adds it to the batch; the batch is reported in
 * ONE script call per breaker every `flushMs`, or at once when it holds
 * `flushMax` outcomes or when this instance alone has seen `fail_max`
 * failures in a row.
 *
 * @module
 */
import type { BreakerPolicy } from "./policy.ts";
import { OutcomeBatch } from "./batch.ts";
import { classifyError, classifyStatus, type Outcome, parseRetryAfter } from "./classify.ts";
import { type CallOptions, invoke, type Judge, settleProbe } from "./invoke.ts";
import { BreakerOpenError, BreakerThrottledError, BreakerTimeoutError } from "./errors.ts";
import { LocalBreaker } from "./local_breaker.ts";
import type { ProbeOutcome, SharedState } from "./scripts.ts";
import type { BreakerSnapshot, BreakerStateName, BreakerView } from "./types.ts";
import { type BreakerContext, toView } from "./context.ts";

export type { CallOptions };
export type { BreakerMetrics } from "./context.ts";

/** `fetch` init plus the breaker's own timeout. */
export type BreakerFetchInit = RequestInit & {
  /** @default the policy's timeout_ms */
  timeoutMs?: number;
};

const LOCAL = -1;

function judgeResponse(policy: BreakerPolicy): Judge<Response> {
  return (res) => classifyStatus(res.status, policy);
}

/** A circuit breaker for one downstream. Get one from `registry.get(name)`. */
export class Breaker {
  readonly name: string;
  readonly policy: BreakerPolicy;
  readonly #ctx: BreakerContext;
  readonly #judgeResponse: Judge<Response>;
  #view: BreakerView = { state: "closed", epoch: 0 };
  #local: LocalBreaker | null = null;
  /** Shared epoch when the local breaker took over. */
  #baseEpoch = 0;
  #batch = new OutcomeBatch();
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> | null = null;
  /** Failures in a row seen by this instance in the current epoch. */
  #consecutive = 0;
  /** A probe lease request of this instance is in flight. */
  #acquiring = false;
  readonly #flushCallback = () => {
    this.#flushTimer = undefined;
    void this.#flush();
  };

  /** @internal Built by the registry. */
  constructor(name: string, policy: BreakerPolicy, ctx: BreakerContext) {
    this.name = name;
    this.policy = policy;
    this.#ctx = ctx;
    this.#judgeResponse = judgeResponse(policy);
  }

  /** Cached state (synchronous, no Redis call). OPEN stays OPEN until a call starts the probe. */
  get state(): BreakerStateName {
    return this.#local === null ? this.#view.state : this.#local.state;
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
    const now = this.#ctx.now();
    const local = this.#local;
    if (local !== null) {
      return {
        name: this.name,
        state: local.state,
        source: "local",
        epoch: this.#baseEpoch,
        openRemainingMs: local.openRemainingMs(),
        probeRemainingMs: local.probeRemainingMs(),
        consecutiveFailures: local.consecutiveFailures,
        trips: 0,
        reason: null,
        by: this.#ctx.instanceId,
      };
    }
    const v = this.#view;
    const probe = v.state === "half_open" && v.probeUntil !== null ? v.probeUntil - now : -1;
    return {
      name: this.name,
      state: v.state,
      source: "redis",
      epoch: v.epoch,
      openRemainingMs: v.state === "open" ? Math.max(0, v.openUntil - now) : null,
      probeRemainingMs: probe > 0 ? probe : null,
      consecutiveFailures: this.#consecutive,
      trips: 0,
      reason: null,
      by: null,
    };
  }

  /** Read through a method: the field changes across awaits, which narrowing ignores. */
  #currentLocal(): LocalBreaker | null {
    return this.#local;
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
    const local = this.#local;
    if (local === null) {
      const v = this.#view;
      switch (v.state) {
        case "closed":
          // This instance alone saw fail_max failures in a row and is
          // reporting them: hold calls until Redis answers (one round trip)
          // instead of sending more to a downstream that is likely down.
          if (this.#consecutive >= this.policy.fail_max) {
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
      if (this.#acquiring) {
        return Promise.reject(this.#refuse("half_open", this.policy.probe_lease_ms));
      }
      return this.#sharedProbe(fn, options, judge);
    }
    this.#ctx.metrics.localDecisions++;
    const admission = local.admit();
    if (admission.kind === "reject") {
      return Promise.reject(this.#refuse(admission.state, admission.retryAfterMs));
    }
    if (admission.kind === "probe") return this.#localProbe(fn, options, judge, local);
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
    const started = this.#ctx.now();
    let value: T;
    try {
      value = await invoke(this.name, fn, options.signal, options.timeoutMs);
    } catch (err) {
      this.#record(classifyError(err, this.policy, options.signal?.aborted === true), false, epoch);
      throw err;
    }
    const slowMs = this.policy.slow_call_ms;
    const slow = slowMs !== null && this.#ctx.now() - started > slowMs;
    this.#record(judge === null ? "success" : judge(value), slow, epoch);
    return value;
  }

  #record(outcome: Outcome, slow: boolean, epoch: number): void {
    if (outcome === "ignored") return;
    const local = this.#local;
    if (local !== null) {
      local.record(outcome, slow);
      return;
    }
    const v = this.#view;
    // Observed under an earlier state: says nothing about the current one.
    if (v.epoch !== epoch || v.state !== "closed") return;
    const failed = outcome === "failure" || slow;
    this.#batch.add(failed, slow);
    if (failed) {
      if (++this.#consecutive >= this.policy.fail_max) return this.#flushSoon(true);
    } else {
      this.#consecutive = 0;
    }
    this.#flushSoon(this.#batch.size >= this.#ctx.flushMax);
  }

  #flushSoon(now: boolean): void {
    if (this.#flushing !== null) return; // the running flush reschedules when it ends
    if (now) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
      void this.#flush();
    } else if (this.#flushTimer === undefined) {
      this.#flushTimer = setTimeout(this.#flushCallback, this.#ctx.flushMs);
    }
  }

  #flush(): Promise<void> {
    if (this.#flushing !== null) return this.#flushing;
    if (this.#batch.size === 0 || this.#local !== null) return Promise.resolve();
    const batch = this.#batch;
    const epoch = this.#view.epoch;
    this.#batch = new OutcomeBatch();
    this.#flushing = (async () => {
      const { metrics, scripts } = this.#ctx;
      try {
        const s = await this.#ctx.op(
          "report",
          () => scripts.report(this.name, this.policy, epoch, batch, {}),
        );
        metrics.flushes++;
        metrics.flushedOutcomes += batch.size;
        if (s.code === 0) metrics.staleReports++;
        this.#apply(s);
        // Every failure reported and still CLOSED (other instances' successes
        // broke the run): stop holding calls.
        if (s.code === 1 && this.#batch.size === 0 && this.#consecutive >= this.policy.fail_max) {
          this.#consecutive = 0;
        }
      } catch {
        // Redis unreachable: the registry has switched to local breakers;
        // these outcomes are recent and belong to the local one.
        this.#local?.ingest(batch);
      } finally {
        this.#flushing = null;
        if (this.#batch.size > 0 && this.#local === null) {
          this.#flushSoon(this.#consecutive >= this.policy.fail_max);
        }
      }
    })();
    return this.#flushing;
  }

  /** @internal Reports what is pending now (registry stop). */
  async drain(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    await this.#flushing;
    await this.#flush();
  }

  /** @internal Stops the flush timer without reporting. */
  halt(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
  }

  async #sharedProbe<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    options: CallOptions,
    judge: Judge<T>,
  ): Promise<T> {
    const lease = this.policy.probe_lease_ms;
    const token = crypto.randomUUID();
    let s: SharedState;
    this.#acquiring = true;
    try {
      s = await this.#ctx.op(
        "acquire_probe",
        () => this.#ctx.scripts.acquireProbe(this.name, token, lease),
      );
    } catch (err) {
      // Redis unreachable: the local breaker (if the registry switched) decides.
      if (this.#local !== null) return this.#run(fn, options, judge);
      throw err;
    } finally {
      this.#acquiring = false;
    }
    this.#apply(s);
    if (s.code === 2 || this.#local !== null) return this.#run(fn, options, judge);
    if (s.code !== 1) {
      const retry = s.state === "open"
        ? s.openRemainingMs
        : s.state === "half_open"
        ? Math.max(0, s.probeRemainingMs)
        : null;
      throw this.#refuse(s.state, retry);
    }
    this.#ctx.metrics.probes++;
    const settled = await settleProbe(
      this.name,
      this.policy,
      this.#ctx.now,
      fn,
      options,
      judge,
      lease,
    );
    const outcome: ProbeOutcome = settled.outcome === "ignored"
      ? "release"
      : settled.outcome === "failure" || settled.slow
      ? "failure"
      : "success";
    try {
      const after = await this.#ctx.op(
        "end_probe",
        () => this.#ctx.scripts.endProbe(this.name, this.policy, token, outcome),
      );
      this.#apply(after);
    } catch {
      // Redis went away during the probe: the local breaker takes its outcome.
      this.#currentLocal()?.endProbe(settled.outcome, settled.slow);
    }
    if (settled.failed) throw settled.error;
    return settled.value as T;
  }

  async #localProbe<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T>,
    options: CallOptions,
    judge: Judge<T>,
    local: LocalBreaker,
  ): Promise<T> {
    this.#ctx.metrics.probes++;
    const settled = await settleProbe(
      this.name,
      this.policy,
      this.#ctx.now,
      fn,
      options,
      judge,
      this.policy.probe_lease_ms,
    );
    // Redis may be back meanwhile; the shared state then decides.
    if (this.#local === local) local.endProbe(settled.outcome, settled.slow);
    if (settled.failed) throw settled.error;
    return settled.value as T;
  }

  /**
   * @internal Adopts a shared state reported by a script or a sync. Older
   * epochs are ignored (a message may overtake a reply).
   */
  apply(s: SharedState): void {
    this.#apply(s);
  }

  #apply(s: SharedState): void {
    if (this.#local !== null) return;
    const prev = this.#view;
    if (s.epoch < prev.epoch) return;
    const now = this.#ctx.now();
    this.#view = toView(s, now);
    if (s.epoch === prev.epoch) return;
    this.#newEpoch();
    if (s.state !== prev.state) {
      this.#ctx.emit({
        name: this.name,
        from: prev.state,
        to: s.state,
        epoch: s.epoch,
        at: now,
        reason: s.reason,
        source: "redis",
        by: s.by,
      });
    }
  }

  #newEpoch(): void {
    this.#batch = new OutcomeBatch();
    this.#consecutive = 0;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
  }

  /** @internal A transition published by any instance. */
  applyTransition(msg: {
    to: BreakerStateName;
    epoch: number;
    open_ms?: number;
    reason?: string;
    by?: string;
  }): void {
    if (this.#local !== null || msg.epoch <= this.#view.epoch) return;
    this.#apply({
      code: 1,
      state: msg.to,
      epoch: msg.epoch,
      openRemainingMs: msg.open_ms ?? -1,
      probeRemainingMs: -1,
      consecutive: 0,
      reason: msg.reason ?? null,
      by: msg.by ?? null,
      trips: 0,
    });
  }

  /** @internal A probe lease taken (probe_ms ≥ 0) or freed (-1) by any instance. */
  applyProbe(msg: { epoch: number; probe_ms: number }): void {
    const v = this.#view;
    if (this.#local !== null || v.state !== "half_open" || v.epoch !== msg.epoch) return;
    this.#view = {
      state: "half_open",
      epoch: v.epoch,
      probeUntil: msg.probe_ms >= 0 ? this.#ctx.now() + msg.probe_ms : null,
    };
  }

  /** @internal Redis is unreachable: a local breaker takes over from the cached view. */
  enterLocal(): void {
    if (this.#local !== null) return;
    this.halt();
    this.#baseEpoch = this.#view.epoch;
    const ctx = this.#ctx;
    const local = new LocalBreaker(this.policy, {
      now: ctx.now,
      initial: this.#view,
      onTransition: (t) =>
        ctx.emit({
          name: this.name,
          ...t,
          epoch: this.#baseEpoch,
          at: ctx.now(),
          source: "local",
          by: ctx.instanceId,
        }),
    });
    local.ingest(this.#batch);
    this.#batch = new OutcomeBatch();
    this.#consecutive = 0;
    this.#local = local;
  }

  /**
   * @internal The reconcile rule, part 1: given the shared state read after
   * Redis came back, how long the shared breaker should be opened for to
   * adopt this instance's local trip, or null to just adopt the shared state.
   * A local OPEN/HALF_OPEN is pushed only over a shared CLOSED breaker that
   * nobody changed meanwhile (same epoch); operator states always win.
   */
  reconcilePlan(shared: SharedState): number | null {
    const local = this.#local;
    if (local === null || shared.state !== "closed" || shared.epoch !== this.#baseEpoch) {
      return null;
    }
    if (local.state !== "open" && local.state !== "half_open") return null;
    return local.openRemainingMs() ?? 0;
  }

  /** @internal The reconcile rule, part 2: leave local mode and adopt `shared`. */
  leaveLocal(shared: SharedState): void {
    const local = this.#local;
    if (local === null) return this.#apply(shared);
    this.#local = null;
    const now = this.#ctx.now();
    this.#view = toView(shared, now);
    this.#newEpoch();
    // Local observations are not replayed: the counts restart from the shared state.
    if (local.state !== shared.state) {
      this.#ctx.emit({
        name: this.name,
        from: local.state,
        to: shared.state,
        epoch: shared.epoch,
        at: now,
        reason: shared.code === 2 ? "local_trip" : "resync",
        source: "redis",
        by: shared.by,
      });
    }
  }
}
