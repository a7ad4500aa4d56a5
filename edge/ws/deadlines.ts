/**
 * Deadlines shared by every socket of a hub (token expiry, reauth grace): one
 * runtime timer for all of them instead of one per socket. A runtime timer
 * cost about 0.9 KB of edge heap each, which thousands of idle sockets paid
 * for a deadline hours away (memory per idle connection, docs/benchmarks.md).
 *
 * Deadlines fall into buckets of `resolutionMs`; a callback runs at the end
 * of its bucket at the earliest (never before its deadline), in the order
 * the buckets come due. Cancelling removes the callback from its bucket, so
 * nothing is kept for a socket that closed.
 *
 * @module
 */

/** Options for {@linkcode Deadlines}. */
export interface DeadlinesOptions {
  /** Epoch ms. @default Date.now */
  now?: () => number;
  /** Width of a bucket, ms. @default 100 */
  resolutionMs?: number;
  /** @default globalThis.setTimeout */
  setTimer?: (fn: () => void, ms: number) => unknown;
  /** @default globalThis.clearTimeout */
  clearTimer?: (id: unknown) => void;
  /** Called with what a callback threw (the others still run). @default none */
  onError?: (err: unknown) => void;
}

/** A scheduled callback, for {@linkcode Deadlines.cancel}. */
export interface Deadline {
  readonly bucket: number;
  readonly fn: () => void;
}

// setTimeout's largest delay; deadlines may lie further out (tokens live up to 30 days).
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One timer for many deadlines. */
export class Deadlines {
  readonly #now: () => number;
  readonly #resolution: number;
  readonly #setTimer: (fn: () => void, ms: number) => unknown;
  readonly #clearTimer: (id: unknown) => void;
  readonly #onError: (err: unknown) => void;
  readonly #buckets = new Map<number, Set<() => void>>();
  /** Bucket ends, a min-heap; each bucket appears once. */
  readonly #heap: number[] = [];
  #timer: unknown;
  #armedFor = Infinity;

  constructor(options: DeadlinesOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#resolution = options.resolutionMs ?? 100;
    if (!Number.isFinite(this.#resolution) || this.#resolution <= 0) {
      throw new RangeError(
        `Deadlines option "resolutionMs" must be positive: got ${this.#resolution}`,
      );
    }
    this.#setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.#clearTimer = options.clearTimer ??
      ((id) => clearTimeout(id as ReturnType<typeof setTimeout>));
    this.#onError = options.onError ?? (() => {});
  }

  /** Callbacks waiting. */
  get size(): number {
    let n = 0;
    for (const set of this.#buckets.values()) n += set.size;
    return n;
  }

  /** Buckets remembered, live or cancelled (at most twice the live ones, plus 64). */
  get buckets(): number {
    return this.#heap.length;
  }

  /** Runs `fn` once, at or after `at` (epoch ms). */
  add(at: number, fn: () => void): Deadline {
    const bucket = Math.ceil(at / this.#resolution) * this.#resolution;
    let set = this.#buckets.get(bucket);
    if (set === undefined) {
      this.#buckets.set(bucket, set = new Set());
      this.#push(bucket);
    }
    set.add(fn);
    if (bucket < this.#armedFor) this.#arm();
    return { bucket, fn };
  }

  /** Forgets a deadline (a no-op once it ran). */
  cancel(d: Deadline | undefined): void {
    if (d === undefined) return;
    const set = this.#buckets.get(d.bucket);
    if (set === undefined) return;
    set.delete(d.fn);
    if (set.size > 0) return;
    // The bucket's heap entry stays (skipped when it comes due) unless stale
    // entries outnumber live buckets: sockets closed long before their deadline.
    this.#buckets.delete(d.bucket);
    if (this.#buckets.size === 0) return this.stop();
    if (this.#heap.length > 2 * this.#buckets.size + 64) {
      this.#heap.length = 0;
      for (const bucket of this.#buckets.keys()) this.#push(bucket);
    }
  }

  /** Cancels everything and stops the timer. */
  stop(): void {
    this.#buckets.clear();
    this.#heap.length = 0;
    this.#disarm();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = this.#now();
    while (this.#heap.length > 0 && this.#heap[0]! <= now) {
      const bucket = this.#pop();
      const set = this.#buckets.get(bucket);
      if (set === undefined) continue;
      this.#buckets.delete(bucket);
      for (const fn of set) {
        try {
          fn();
        } catch (err) {
          this.#onError(err);
        }
      }
    }
    this.#arm();
  }

  /** Arms the timer for the earliest bucket that still holds a callback. */
  #arm(): void {
    while (this.#heap.length > 0 && !this.#buckets.has(this.#heap[0]!)) this.#pop();
    const next = this.#heap[0];
    if (next === undefined) return this.#disarm();
    if (next >= this.#armedFor) return;
    this.#disarm();
    this.#armedFor = next;
    const wait = Math.min(Math.max(0, next - this.#now()), MAX_TIMER_MS);
    this.#timer = this.#setTimer(() => this.#fire(), wait);
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clearTimer(this.#timer);
    this.#timer = undefined;
    this.#armedFor = Infinity;
  }

  #push(v: number): void {
    const h = this.#heap;
    let i = h.push(v) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]! <= v) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = v;
  }

  #pop(): number {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const c = l + 1 < h.length && h[l + 1]! < h[l]! ? l + 1 : l;
        if (h[c]! >= last) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}
