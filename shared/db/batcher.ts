/**
 * Coalesces calls that arrive close together into one call over a batch:
 * the group commit of a worker's concurrent tasks. Each task still awaits its
 * own item; the batch runs as ONE statement (or SQL function call), so a
 * round trip, its parse, plan and commit are paid per batch instead of per
 * task (docs/benchmarks.md, bench:outreach).
 *
 * - Items submitted in one turn of the event loop share a batch; while
 *   `maxInFlight` batches run, new items wait and go together in the next.
 *   An idle batcher adds one turn of latency, nothing more.
 * - Items with the same `keyOf` never share a batch: the later one waits for
 *   the next, so a batch statement never sees one key twice (two sends of one
 *   lead decide one after the other, as two statements would).
 * - When a batch fails with an error the database answered (a SQLSTATE: a
 *   constraint, a deadlock), one item may be the cause, so each item is run
 *   again alone and gets its own outcome. Any other error (connection lost,
 *   timeout) fails every item of the batch: a retry alone would fail too.
 *   `run` must therefore be safe to repeat for an item whose batch failed.
 *
 * @module
 */
import { setImmediate } from "node:timers";

/** Options of {@linkcode createBatcher}. */
export interface BatcherOptions<I> {
  /** Most items in one batch. @default 100 */
  maxBatch?: number;
  /** Batches running at once. @default 2 */
  maxInFlight?: number;
  /** Items with equal keys never share a batch. @default every item its own key */
  keyOf?: (item: I) => string;
}

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (reason: unknown) => void;
}

/** Whether the database answered with an error (node-postgres sets a SQLSTATE `code`). */
function answeredByDatabase(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code);
}

/**
 * A function of one item that runs `run` over batches of items; `run` returns
 * one output per input, in order.
 */
export function createBatcher<I, O>(
  run: (items: I[]) => Promise<O[]>,
  options: BatcherOptions<I> = {},
): (item: I) => Promise<O> {
  const maxBatch = options.maxBatch ?? 100;
  const maxInFlight = options.maxInFlight ?? 2;
  for (const [name, value] of [["maxBatch", maxBatch], ["maxInFlight", maxInFlight]] as const) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`Cannot create a batcher: ${name} must be a positive integer`);
    }
  }
  const keyOf = options.keyOf;
  let pending: Pending<I, O>[] = [];
  let inFlight = 0;
  let scheduled = false;

  const runOne = async (p: Pending<I, O>) => {
    try {
      const [out] = await run([p.item]);
      p.resolve(out as O);
    } catch (err) {
      p.reject(err);
    }
  };

  const runBatch = async (batch: Pending<I, O>[]) => {
    try {
      const outs = await run(batch.map((p) => p.item));
      if (outs.length !== batch.length) {
        throw new Error(`A batch of ${batch.length} returned ${outs.length} results`);
      }
      batch.forEach((p, i) => p.resolve(outs[i] as O));
    } catch (err) {
      if (batch.length > 1 && answeredByDatabase(err)) {
        await Promise.all(batch.map(runOne));
      } else {
        for (const p of batch) p.reject(err);
      }
    }
  };

  /** The next batch: up to maxBatch items in arrival order, one per key. */
  const take = (): Pending<I, O>[] => {
    if (!keyOf) {
      const batch = pending.slice(0, maxBatch);
      pending = pending.slice(batch.length);
      return batch;
    }
    const batch: Pending<I, O>[] = [];
    const rest: Pending<I, O>[] = [];
    const keys = new Set<string>();
    for (const p of pending) {
      const key = keyOf(p.item);
      if (batch.length < maxBatch && !keys.has(key)) {
        keys.add(key);
        batch.push(p);
      } else {
        rest.push(p);
      }
    }
    pending = rest;
    return batch;
  };

  const flush = () => {
    scheduled = false;
    while (inFlight < maxInFlight && pending.length > 0) {
      const batch = take();
      inFlight++;
      runBatch(batch).finally(() => {
        inFlight--;
        flush();
      });
    }
  };

  return (item: I) =>
    new Promise<O>((resolve, reject) => {
      pending.push({ item, resolve, reject });
      if (!scheduled && inFlight < maxInFlight) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
