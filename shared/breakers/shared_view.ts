/**
 * One breaker's shared state as this instance caches it. Every script reply
 * and every channel message updates the view; an older epoch is ignored (a
 * message may overtake a reply), a new epoch restarts the outcome count, and
 * a changed state is published as a transition. Also: the view, or a script
 * reply, as a snapshot.
 *
 * @module
 */
import { type BreakerContext, toView } from "./context.ts";
import type { ProbeMessage, TransitionMessage } from "./event_channel.ts";
import type { SharedState } from "./scripts.ts";
import type { BreakerSnapshot, BreakerStateName, BreakerView } from "./types.ts";
import { BREAKER_REPORT } from "../redis/script_codes.ts";

/** What a view needs from its breaker. */
export interface SharedViewHost {
  readonly name: string;
  readonly ctx: BreakerContext;
  /** The epoch changed: outcomes counted so far say nothing about the new state. */
  onNewEpoch(): void;
}

/** A script reply as `registry.list()` reports it. */
export function snapshotOf(name: string, s: SharedState): BreakerSnapshot {
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

/** The cached shared state of one breaker. */
export class SharedView {
  readonly #host: SharedViewHost;
  #view: BreakerView = { state: "closed", epoch: 0 };

  constructor(host: SharedViewHost) {
    this.#host = host;
  }

  /** The current view (times on this instance's clock). */
  get current(): BreakerView {
    return this.#view;
  }

  /** Adopts a shared state reported by a script or a sync, unless it is older than the view. */
  apply(s: SharedState): void {
    const prev = this.#view;
    if (s.epoch < prev.epoch) return;
    const now = this.#host.ctx.now();
    this.#view = toView(s, now);
    if (s.epoch === prev.epoch) return;
    this.#host.onNewEpoch();
    if (s.state !== prev.state) this.#emit(prev.state, s, now, s.reason);
  }

  /** Adopts a transition message newer than the view. */
  applyTransition(msg: TransitionMessage): void {
    if (msg.epoch <= this.#view.epoch) return;
    this.apply({
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

  /** Adopts a probe lease message of the current HALF_OPEN epoch. */
  applyProbe(msg: ProbeMessage): void {
    const v = this.#view;
    if (v.state !== "half_open" || v.epoch !== msg.epoch) return;
    this.#view = {
      state: "half_open",
      epoch: v.epoch,
      probeUntil: msg.probe_ms >= 0 ? this.#host.ctx.now() + msg.probe_ms : null,
    };
  }

  /**
   * Adopts `shared` whatever its epoch, on leaving local mode; `from` is the
   * local state left behind.
   */
  resync(shared: SharedState, from: BreakerStateName): void {
    const now = this.#host.ctx.now();
    this.#view = toView(shared, now);
    // Local observations are not replayed: the counts restart from the shared state.
    this.#host.onNewEpoch();
    if (from !== shared.state) {
      this.#emit(
        from,
        shared,
        now,
        shared.code === BREAKER_REPORT.tripped ? "local_trip" : "resync",
      );
    }
  }

  /** The view as a snapshot; `consecutiveFailures` are this instance's own. */
  snapshot(consecutiveFailures: number): BreakerSnapshot {
    const now = this.#host.ctx.now();
    const v = this.#view;
    const probe = v.state === "half_open" && v.probeUntil !== null ? v.probeUntil - now : -1;
    return {
      name: this.#host.name,
      state: v.state,
      source: "redis",
      epoch: v.epoch,
      openRemainingMs: v.state === "open" ? Math.max(0, v.openUntil - now) : null,
      probeRemainingMs: probe > 0 ? probe : null,
      consecutiveFailures,
      trips: 0,
      reason: null,
      by: null,
    };
  }

  #emit(from: BreakerStateName, s: SharedState, at: number, reason: string | null): void {
    this.#host.ctx.emit({
      name: this.#host.name,
      from,
      to: s.state,
      epoch: s.epoch,
      at,
      reason,
      source: "redis",
      by: s.by,
    });
  }
}
