/**
 * The slow-call timers of one breaker, on one timer. A counted call still
 * running at `slow_call_ms` of net time (wall time minus this process's
 * event-loop stall, shared/loop_lag.ts) counts as a slow failure then, not
 * when it ends (docs/breakers.md). Arming a timer per call cost about 2 µs
 * on the hot path (docs/benchmarks.md); here a call only joins a queue.
 *
 * Every call of a breaker waits the same `ms`, and a call that started
 * earlier has run at least as much net time as a later one (wall time minus
 * stall never decreases), so the calls come due in the order they started:
 * the queue is FIFO and one timer, armed for its oldest live call, serves
 * all, armed only when none is pending. When that timer finds the oldest
 * call partly eaten by a stall it waits again for the rest, as `netTimer`
 * does.
 *
 * @module
 */
import { type LoopLag, netElapsed } from "../loop_lag.ts";

const LIVE = 0;
const ENDED = 1;
const SLOW = 2;

/** One watched call. */
export class WatchedCall {
  /** @internal */
  state: typeof LIVE | typeof ENDED | typeof SLOW = LIVE;

  constructor(
    /** Start, on the watch's clock. */
    readonly started: number,
    /** The stall source's total at the start. */
    readonly stalledAt: number,
    /** The breaker's epoch when the call started. */
    readonly epoch: number,
  ) {}
}

/** The slow-call watch of one breaker. */
export class SlowCallWatch {
  readonly #ms: number;
  readonly #now: () => number;
  readonly #lag: LoopLag;
  readonly #onSlow: (call: WatchedCall) => void;
  #queue: WatchedCall[] = [];
  #head = 0;
  #live = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `onSlow` runs for each call still running after `ms` of net time. */
  constructor(ms: number, now: () => number, lag: LoopLag, onSlow: (call: WatchedCall) => void) {
    this.#ms = ms;
    this.#now = now;
    this.#lag = lag;
    this.#onSlow = onSlow;
  }

  /** Calls running now. */
  get live(): number {
    return this.#live;
  }

  /** Watches a call that starts now. */
  start(epoch: number): WatchedCall {
    const call = new WatchedCall(this.#now(), this.#lag.stalledMs(), epoch);
    this.#queue.push(call);
    this.#live++;
    if (this.#timer === undefined) this.#arm(this.#ms);
    return call;
  }

  /** The call ended; true when it had already been reported slow. */
  end(call: WatchedCall): boolean {
    if (call.state !== LIVE) return call.state === SLOW;
    call.state = ENDED;
    if (--this.#live === 0) {
      // Nothing left to time: drop the ended calls. The timer is left to
      // lapse (its sweep finds nothing): clearing and re-arming it around
      // every call of a sequential caller would cost what a timer per call
      // did.
      this.#queue.length = 0;
      this.#head = 0;
    }
    return false;
  }

  /** Stops the timer (the registry's stop): calls still running are no longer timed. */
  halt(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Net time `call` has run so far. */
  elapsed(call: WatchedCall): number {
    return netElapsed(this.#now, this.#lag, call.started, call.stalledAt);
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#sweep(), ms);
    // A lapsing timer never keeps a process alive (a running call's own I/O does).
    Deno.unrefTimer(this.#timer);
  }

  #sweep(): void {
    this.#timer = undefined;
    const q = this.#queue;
    const due: WatchedCall[] = [];
    while (this.#head < q.length) {
      const call = q[this.#head]!;
      if (call.state === LIVE) {
        const left = this.#ms - this.elapsed(call);
        if (left > 0) {
          this.#arm(left);
          break;
        }
        call.state = SLOW;
        this.#live--;
        due.push(call);
      }
      this.#head++;
    }
    if (this.#head === q.length) {
      q.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > q.length) {
      this.#queue = q.slice(this.#head);
      this.#head = 0;
    }
    // After the bookkeeping: a handler may start or end calls.
    for (const call of due) this.#onSlow(call);
  }
}
