/**
 * Preloaded (`deno run --preload`) into the campaign's edges and workers by
 * dev/chaos/cluster.ts: an uncaught exception or unhandled rejection is
 * logged with where it was thrown (file, line and column: what found the
 * uncaught pool-client error in shared/db/pool.ts) before the runtime ends
 * the process as usual; the report lists this line among the process
 * errors. A thrown non-Error value (`throw null`) carries no location in
 * Deno, so for those only the value is known. It changes nothing else: no
 * default is prevented.
 *
 * @module
 */
import { EventEmitter } from "node:events";
import process from "node:process";

function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}\n${value.stack ?? ""}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

globalThis.addEventListener("error", (e) => {
  console.error(JSON.stringify({
    level: "error",
    msg: "uncaught exception (the process ends)",
    file: e.filename,
    line: e.lineno,
    column: e.colno,
    error: describe(e.error),
  }));
});

globalThis.addEventListener("unhandledrejection", (e) => {
  console.error(JSON.stringify({
    level: "error",
    msg: "unhandled rejection (the process ends)",
    error: describe(e.reason),
  }));
});

/**
 * For a thrown non-Error (which has no stack of its own): callbacks of
 * timers, `setImmediate`, `process.nextTick`, microtasks and event listeners
 * are wrapped so that such a throw is logged with the stack of the code that
 * SCHEDULED the callback, then rethrown unchanged. A stack per scheduled
 * callback costs a few microseconds; only the campaign's children pay it.
 */
function traced<F extends (...args: never[]) => unknown>(fn: F, kind: string): F {
  const origin = new Error(`${kind} scheduled here`);
  return function (this: unknown, ...args: Parameters<F>) {
    try {
      return fn.apply(this, args);
    } catch (err) {
      if (!(err instanceof Error)) {
        console.error(JSON.stringify({
          level: "error",
          msg: "a callback threw a non-Error (the process ends)",
          thrown: describe(err),
          scheduled: origin.stack,
        }));
      }
      throw err;
    }
  } as F;
}

type Scheduler = (...args: unknown[]) => number;
const plainSetTimeout = globalThis.setTimeout as unknown as Scheduler;
const plainSetInterval = globalThis.setInterval as unknown as Scheduler;
const plainQueueMicrotask = globalThis.queueMicrotask;
const tracedArg = (fn: unknown, kind: string) =>
  typeof fn === "function" ? traced(fn as () => void, kind) : fn;
globalThis.setTimeout =
  ((fn: unknown, ...rest: unknown[]) =>
    plainSetTimeout(tracedArg(fn, "setTimeout"), ...rest)) as unknown as typeof setTimeout;
globalThis.setInterval =
  ((fn: unknown, ...rest: unknown[]) =>
    plainSetInterval(tracedArg(fn, "setInterval"), ...rest)) as unknown as typeof setInterval;
globalThis.queueMicrotask = (fn: VoidFunction) => plainQueueMicrotask(traced(fn, "queueMicrotask"));
// The npm packages' Node-style scheduling (the Neon pool's `ws` sockets): a throw in one of these
// callbacks is an "Uncaught" error too, not a rejection.
const plainSetImmediate = globalThis.setImmediate as unknown as Scheduler;
globalThis.setImmediate =
  ((fn: unknown, ...rest: unknown[]) =>
    plainSetImmediate(tracedArg(fn, "setImmediate"), ...rest)) as unknown as typeof setImmediate;
const plainNextTick = process.nextTick as unknown as (...args: unknown[]) => void;
process.nextTick =
  ((fn: unknown, ...rest: unknown[]) =>
    plainNextTick(tracedArg(fn, "process.nextTick"), ...rest)) as typeof process.nextTick;

/**
 * Node's own stream code schedules its callbacks past the wrappers above and
 * calls emitters' listeners from them: a listener that throws a non-Error is
 * logged with the emitter, the event and the stack of the `emit` call.
 * Listeners themselves are not wrapped (`once` and `removeListener` compare
 * them by identity).
 */
const plainEmit = EventEmitter.prototype.emit;
EventEmitter.prototype.emit = function (
  this: EventEmitter,
  type: string | symbol,
  ...args: unknown[]
): boolean {
  try {
    return plainEmit.call(this, type, ...args);
  } catch (err) {
    if (!(err instanceof Error)) {
      console.error(JSON.stringify({
        level: "error",
        msg: "an event listener threw a non-Error (the process ends unless its caller catches it)",
        thrown: describe(err),
        emitter: this?.constructor?.name,
        event: String(type),
        listeners: this.listeners(type).map((l) => l.name || String(l).slice(0, 120)),
        emitted: new Error("emitted here").stack,
      }));
    }
    throw err;
  }
};

const wrappedListeners = new WeakMap<object, EventListener>();
const plainAdd = EventTarget.prototype.addEventListener;
const plainRemove = EventTarget.prototype.removeEventListener;
EventTarget.prototype.addEventListener = function (type, listener, options) {
  if (typeof listener !== "function") return plainAdd.call(this, type, listener, options);
  let wrapped = wrappedListeners.get(listener);
  if (wrapped === undefined) {
    wrapped = traced(listener as EventListener, `"${type}" listener`);
    wrappedListeners.set(listener, wrapped);
  }
  return plainAdd.call(this, type, wrapped, options);
};
EventTarget.prototype.removeEventListener = function (type, listener, options) {
  const wrapped = typeof listener === "function" ? wrappedListeners.get(listener) : undefined;
  return plainRemove.call(this, type, wrapped ?? listener, options);
};
