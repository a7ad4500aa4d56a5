/**
 * The worker runtime: claim → run → ack | retry | dead-letter.
 *
 * - Claims in batches up to the free concurrency slots (one script call),
 *   woken by a pub/sub notification when work arrives, by a timer at the
 *   earliest delayed due time, and by a slow poll as a safety net.
 * - Completions are group-committed: every ack/fail that arrives while the
 *   previous batch is in flight goes into the next single script call.
 * - A heartbeat renews all held leases in one call; a lost lease aborts the
 *   task's signal (its result would be fenced off anyway).
 * - stop(): stop claiming, let in-flight tasks finish within the grace
 *   period, then abort and release the rest to the front of their queue.
 *
 * @module
 */
import {
  context,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import type { Deps } from "../shared/deps.ts";
import type { Logger } from "../shared/log.ts";
import { canonicalJson } from "../shared/queue/canonical_json.ts";
import { isPermanent } from "../shared/queue/errors.ts";
import {
  ack,
  claim,
  type ClaimedTask,
  extendLeases,
  fail,
  release,
} from "../shared/queue/leases.ts";
import type { TaskQueue } from "../shared/queue/queue.ts";
import { backoffDelay } from "../shared/tasks/catalog.ts";

/** What a handler receives besides its payload. */
export interface TaskContext {
  deps: Deps;
  taskId: string;
  attempt: number;
  leaseToken: string;
  /** Aborts at the task's timeout, when the lease is lost, and at shutdown. */
  signal: AbortSignal;
  log: Logger;
}

/** A task handler: one file per type under workers/tasks/. */
// deno-lint-ignore no-explicit-any
export type Handler = (payload: any, ctx: TaskContext) => unknown;

/** Options for {@linkcode Runner}. */
export interface RunnerOptions {
  queue: TaskQueue;
  handlers: Record<string, Handler>;
  deps: Deps;
  /** @default 10 */
  concurrency?: number;
  /** Visibility timeout. @default 30_000 */
  leaseMs?: number;
  /** Safety-net poll. @default 1_000 */
  pollMs?: number;
  /** @default 25_000 */
  shutdownGraceMs?: number;
  /** Listen for "work ready" notifications. @default true */
  subscribe?: boolean;
  /** @default a random id */
  workerId?: string;
  /** Jitter source for backoff. @default Math.random */
  random?: () => number;
}

interface Running {
  task: ClaimedTask;
  controller: AbortController;
  /** Set when the lease was lost or the task was released: its outcome must not be reported. */
  abandoned: boolean;
}

type Outcome =
  | { kind: "ack"; id: string; leaseToken: string; resultJson: string }
  | {
    kind: "fail";
    id: string;
    leaseToken: string;
    error: string;
    permanent: boolean;
    backoffMs: number;
  };

function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 4000);
  try {
    return `Non-Error thrown: ${typeof err === "string" ? err : JSON.stringify(err)}`.slice(
      0,
      4000,
    );
  } catch {
    return `Non-Error thrown: ${String(err)}`.slice(0, 4000);
  }
}

/** A running worker. */
export class Runner {
  readonly workerId: string;
  readonly #o: Required<Omit<RunnerOptions, "workerId">>;
  readonly #log: Logger;
  readonly #running = new Map<string, Running>();
  readonly #tracer = trace.getTracer("pleasant-cove-worker");
  #outcomes: Outcome[] = [];
  #flushing: Promise<void> | null = null;
  #claiming = false;
  #claimAgain = false;
  #stopping = false;
  #started = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #subscriber: { unsubscribe(): Promise<void> } | null = null;
  #idle = Promise.withResolvers<void>();

  constructor(options: RunnerOptions) {
    const concurrency = options.concurrency ?? 10;
    if (!Number.isInteger(concurrency) || concurrency < 1) {
      throw new RangeError(
        `Cannot start a runner: concurrency must be a positive integer, got ${concurrency}`,
      );
    }
    for (const type of Object.keys(options.handlers)) {
      if (!options.queue.ctx.catalog[type]) {
        throw new RangeError(`Cannot start a runner: handler for "${type}" has no catalog entry`);
      }
    }
    this.workerId = options.workerId ?? `w-${crypto.randomUUID().slice(0, 8)}`;
    this.#o = {
      queue: options.queue,
      handlers: options.handlers,
      deps: options.deps,
      concurrency,
      leaseMs: options.leaseMs ?? 30_000,
      pollMs: options.pollMs ?? 1_000,
      shutdownGraceMs: options.shutdownGraceMs ?? 25_000,
      subscribe: options.subscribe ?? true,
      random: options.random ?? Math.random,
    };
    this.#log = options.deps.log.child({ worker_id: this.workerId });
  }

  /** Number of tasks being handled now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /** Starts claiming. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    if (this.#o.subscribe) {
      const sub = this.#o.deps.redis.subscribe(this.#o.queue.ctx.keys.notifyChannel);
      sub.on("message", () => this.#wake());
      sub.on("error", (err) => this.#log.warn("notification stream error", { err }));
      this.#subscriber = sub;
    }
    const beat = Math.max(50, Math.floor(this.#o.leaseMs / 3));
    this.#heartbeat = setInterval(() => this.#renewLeases(), beat);
    this.#wake();
  }

  /** Asks for a claim pass soon (coalesced). */
  #wake(): void {
    if (this.#stopping) return;
    if (this.#claiming) {
      this.#claimAgain = true;
      return;
    }
    this.#claiming = true;
    this.#claimLoop().catch((err) => this.#log.error("claim failed", { err })).finally(() => {
      this.#claiming = false;
      if (this.#claimAgain && !this.#stopping) {
        this.#claimAgain = false;
        this.#wake();
      }
    });
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    if (this.#stopping) return;
    this.#timer = setTimeout(() => this.#wake(), Math.max(1, ms));
  }

  async #claimLoop(): Promise<void> {
    let nextDueAt: number | null = null;
    try {
      while (!this.#stopping) {
        const free = this.#o.concurrency - this.#running.size;
        const res = await claim(this.#o.queue.ctx, {
          max: Math.max(0, free),
          leaseMs: this.#o.leaseMs,
          workerId: this.#workerTag(),
        });
        nextDueAt = res.nextDueAt;
        if (res.recovered > 0 || res.dead > 0) {
          this.#log.warn("took back expired leases", { recovered: res.recovered, dead: res.dead });
        }
        for (const task of res.tasks) this.#run(task);
        if (free <= 0 || res.tasks.length < free) break;
      }
    } finally {
      // Poll as a safety net; sooner when a delayed task falls due.
      const untilDue = nextDueAt === null ? Infinity : nextDueAt - this.#o.deps.now();
      this.#schedule(Math.min(this.#o.pollMs, untilDue));
    }
  }

  #workerTag(): string {
    return this.workerId;
  }

  #run(task: ClaimedTask): void {
    const controller = new AbortController();
    const entry: Running = { task, controller, abandoned: false };
    this.#running.set(task.id, entry);
    const log = this.#log.child({ task_id: task.id, task_type: task.type, attempt: task.attempt });
    const parent = task.traceparent
      ? trace.getSpanContext(
        propagation.extract(context.active(), { traceparent: task.traceparent }),
      )
      : undefined;
    this.#tracer.startActiveSpan(
      `task ${task.type}`,
      {
        kind: SpanKind.CONSUMER,
        links: parent ? [{ context: parent }] : [],
        attributes: { "task.id": task.id, "task.type": task.type, "task.attempt": task.attempt },
      },
      (span) => this.#execute(entry, log, span).finally(() => span.end()),
    );
  }

  async #execute(entry: Running, log: Logger, span: Span): Promise<void> {
    const { task, controller } = entry;
    const timeoutMs = task.timeoutMs > 0 ? task.timeoutMs : 30_000;
    const timedOut = Promise.withResolvers<never>();
    const timer = setTimeout(() => {
      const err = new Error(`Timed out after ${timeoutMs} ms`);
      err.name = "TaskTimeoutError";
      controller.abort(err);
      timedOut.reject(err);
    }, timeoutMs);
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener("abort", () => reject(controller.signal.reason), {
        once: true,
      });
    });
    aborted.catch(() => {});
    timedOut.promise.catch(() => {});
    let outcome: Outcome;
    try {
      const handler = this.#o.handlers[task.type];
      if (!handler) {
        throw Object.assign(new Error(`No handler for task type "${task.type}"`), {
          name: "PermanentTaskError",
        });
      }
      const payload = JSON.parse(task.payloadJson);
      const result = await Promise.race([
        Promise.resolve().then(() =>
          handler(payload, {
            deps: this.#o.deps,
            taskId: task.id,
            attempt: task.attempt,
            leaseToken: task.leaseToken,
            signal: controller.signal,
            log,
          })
        ),
        aborted,
      ]);
      let resultJson: string;
      try {
        resultJson = result === undefined ? "null" : canonicalJson(result);
      } catch (err) {
        throw Object.assign(
          new Error(`Handler returned a result that is not JSON: ${(err as Error).message}`),
          {
            name: "PermanentTaskError",
          },
        );
      }
      outcome = { kind: "ack", id: task.id, leaseToken: task.leaseToken, resultJson };
      span.setStatus({ code: SpanStatusCode.OK });
    } catch (err) {
      const permanent = isPermanent(err);
      const def = this.#o.queue.ctx.catalog[task.type];
      const backoffMs = def ? backoffDelay(def.backoff, task.attempt, this.#o.random) : 1000;
      outcome = {
        kind: "fail",
        id: task.id,
        leaseToken: task.leaseToken,
        error: errorText(err),
        permanent,
        backoffMs,
      };
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
      if (!entry.abandoned) log.warn("task failed", { err, permanent, backoff_ms: backoffMs });
    } finally {
      clearTimeout(timer);
    }
    if (entry.abandoned) return; // released or lease lost: someone else owns it now
    this.#outcomes.push(outcome);
    await this.#flush();
    this.#running.delete(task.id);
    if (this.#running.size === 0) this.#idle.resolve();
    this.#wake();
  }

  /** Group commit: one ack and one fail script call for everything pending. */
  #flush(): Promise<void> {
    if (this.#flushing) {
      return this.#flushing.then(() => this.#outcomes.length ? this.#flush() : undefined);
    }
    if (this.#outcomes.length === 0) return Promise.resolve();
    const batch = this.#outcomes;
    this.#outcomes = [];
    const ctx = this.#o.queue.ctx;
    const acks = batch.filter((o) => o.kind === "ack");
    const fails = batch.filter((o) => o.kind === "fail");
    this.#flushing = (async () => {
      try {
        const [ackCodes, failCodes] = await Promise.all([ack(ctx, acks), fail(ctx, fails)]);
        ackCodes.forEach((code, i) => {
          if (code !== 1) this.#log.warn("ack rejected: lease lost", { task_id: acks[i]!.id });
        });
        failCodes.forEach((code, i) => {
          const f = fails[i]!;
          if (code === 2 || code === 3) {
            this.#log.error("task dead-lettered", {
              task_id: f.id,
              error: f.error,
              permanent: f.permanent,
            });
          }
          if (code === 3) this.#log.error("dead-letter queue cap reached; oldest entries evicted");
          if (code === -1) this.#log.warn("failure report rejected: lease lost", { task_id: f.id });
        });
      } catch (err) {
        // Redis unreachable: the leases expire and the tasks run again (at-least-once).
        this.#log.error("reporting task outcomes failed; leases will expire and tasks rerun", {
          err,
          count: batch.length,
        });
      } finally {
        this.#flushing = null;
      }
    })();
    return this.#flushing;
  }

  async #renewLeases(): Promise<void> {
    const held = [...this.#running.values()].filter((r) => !r.abandoned);
    if (held.length === 0) return;
    try {
      const codes = await extendLeases(
        this.#o.queue.ctx,
        held.map((r) => ({ id: r.task.id, leaseToken: r.task.leaseToken })),
        this.#o.leaseMs,
      );
      codes.forEach((code, i) => {
        if (code === 1) return;
        const r = held[i]!;
        r.abandoned = true;
        r.controller.abort(Object.assign(new Error("Lease lost"), { name: "LeaseLostError" }));
        this.#running.delete(r.task.id);
        this.#log.warn("lease lost; task abandoned", { task_id: r.task.id });
      });
      if (this.#running.size === 0) this.#idle.resolve();
    } catch (err) {
      this.#log.warn("lease renewal failed", { err });
    }
  }

  /**
   * Graceful stop: no new claims; in-flight tasks get `shutdownGraceMs` to
   * finish; the rest are aborted and released to the front of their queue.
   */
  async stop(): Promise<{ finished: number; released: number }> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    const before = this.#running.size;
    await this.#subscriber?.unsubscribe().catch(() => {});
    if (this.#running.size > 0) {
      this.#idle = Promise.withResolvers<void>();
      if (this.#running.size === 0) this.#idle.resolve();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.#idle.promise,
        new Promise((r) => timer = setTimeout(r, this.#o.shutdownGraceMs)),
      ]);
      clearTimeout(timer);
    }
    clearInterval(this.#heartbeat);
    const leftovers = [...this.#running.values()];
    for (const r of leftovers) {
      r.abandoned = true;
      r.controller.abort(
        Object.assign(new Error("Worker shutting down"), { name: "ShutdownError" }),
      );
    }
    this.#running.clear();
    let released = 0;
    if (leftovers.length > 0) {
      const codes = await release(
        this.#o.queue.ctx,
        leftovers.map((r) => ({ id: r.task.id, leaseToken: r.task.leaseToken })),
      ).catch((err) => {
        this.#log.error("releasing tasks failed; their leases will expire", { err });
        return [] as number[];
      });
      released = codes.filter((c) => c === 1).length;
    }
    await this.#flush();
    while (this.#flushing) await this.#flushing;
    this.#log.info("worker runner stopped", { finished: before - leftovers.length, released });
    return { finished: before - leftovers.length, released };
  }
}
