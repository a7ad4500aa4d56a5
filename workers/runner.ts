/**
 * The worker runtime: claim → run → ack | retry | dead-letter.
 *
 * - Work moves in exchanges: one round trip that reports every finished task
 *   (one ack and one fail script call for the whole batch) and claims tasks
 *   for every free slot (one claim call). The calls are issued in the same
 *   tick, so the auto-pipelining client sends them as ONE request; every
 *   completion and wake-up of one event-loop turn shares it (setImmediate).
 * - A slot frees as soon as its handler settles; the task's lease is held
 *   until the next exchange reports the outcome (fenced by lease token).
 * - Woken by a pub/sub notification when work arrives, by a timer at the
 *   earliest delayed due time, and by a slow poll as a safety net.
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
import { setImmediate } from "node:timers";
import { bounded } from "../shared/deadline.ts";
import type { BreakerRegistry } from "../shared/breakers/registry.ts";
import type { Deps } from "../shared/deps.ts";
import type { Logger } from "../shared/log.ts";
import { canonicalJson } from "../shared/queue/canonical_json.ts";
import {
  isDeferred,
  isPermanent,
  LeaseExpiredError,
  LeaseLostError,
  PermanentTaskError,
  ShutdownError,
  TaskTimeoutError,
} from "../shared/queue/errors.ts";
import {
  ack,
  claim,
  type ClaimedTask,
  type Completion,
  extendLeases,
  fail,
  type Failure,
  release,
} from "../shared/queue/leases.ts";
import type { TaskQueue } from "../shared/queue/queue.ts";
import { backoffDelay } from "../shared/tasks/catalog.ts";
import { ACK, EXTEND_LEASES, FAIL, RELEASE } from "../shared/redis/script_codes.ts";

/**
 * Retry a deferred task (breaker refusal, DeferredTaskError) when it said it
 * could run again — e.g. the breaker's next probe — bounded and jittered. The
 * attempt is not counted.
 *
 * A refusal by an OPEN breaker that parks the task's type (its catalog
 * `breaker`) says "until the reset timeout" (up to a minute), but the
 * background probe half-opens the breaker as soon as the downstream answers,
 * often within a second. Parking already keeps the type unclaimed while the
 * breaker is OPEN, so such a task waits at most `PARKED_REFUSAL_MS` and then
 * simply stays parked: it runs as soon as the breaker leaves OPEN instead of
 * up to a minute later (the starvation runs of docs/reliability.md).
 */
function refusalDelay(
  err: { retryAfterMs?: unknown; breaker?: unknown; state?: unknown },
  random: () => number,
  parkedBy: string | undefined,
): number {
  let hint = typeof err.retryAfterMs === "number" ? err.retryAfterMs : 5_000;
  if (parkedBy !== undefined && err.breaker === parkedBy && err.state === "open") {
    hint = Math.min(hint, PARKED_REFUSAL_MS);
  }
  return Math.round(Math.min(60_000, Math.max(200, hint)) * (1 + 0.2 * random()));
}

/** Longest wait of a task refused by the OPEN breaker that parks its type (see refusalDelay). */
const PARKED_REFUSAL_MS = 1_000;

/** What a handler receives besides its payload. */
export interface TaskContext {
  deps: Deps;
  taskId: string;
  attempt: number;
  leaseToken: string;
  /**
   * When the task was enqueued (epoch ms; kept across retries and DLQ
   * replays). Effects keyed by day use it, so a retry after midnight is still
   * the same effect. Absent in hand-built contexts.
   */
  enqueuedAt?: number;
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
  /**
   * Circuit breakers (started by the composition root). Task types whose
   * catalog `breaker` is open are not claimed. @default none: nothing is paused
   */
  breakers?: BreakerRegistry;
}

interface Running {
  task: ClaimedTask;
  controller: AbortController;
  /** Set when the lease was lost or the task was released: its outcome must not be reported. */
  abandoned: boolean;
  /**
   * Until when (performance.now()) Redis is known to hold our lease: the
   * send time of the last claim or renewal it confirmed, plus the lease.
   */
  leaseUntil: number;
}

/** Report-and-claim round trips in flight at once (see `#exchange`). */
const MAX_EXCHANGES = 2;

type Outcome =
  | { kind: "ack"; id: string; type: string; leaseToken: string; resultJson: string }
  | {
    kind: "fail";
    id: string;
    type: string;
    leaseToken: string;
    error: string;
    permanent: boolean;
    backoffMs: number;
    refused: boolean;
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
  readonly #o: Required<Omit<RunnerOptions, "workerId" | "breakers">> & {
    breakers?: BreakerRegistry;
  };
  readonly #log: Logger;
  readonly #running = new Map<string, Running>();
  readonly #tracer = trace.getTracer("pleasant-cove-worker");
  /** Finished tasks whose outcome is not reported yet: their leases are still held. */
  #outcomes: Outcome[] = [];
  /** Report-and-claim round trips in flight, and the slots their claims asked for. */
  readonly #exchanges = new Set<Promise<void>>();
  #reserved = 0;
  /**
   * Handlers that timed out or were aborted but have not returned yet: their
   * outcome is reported, but they still hold resources (connections, locks),
   * so they keep their slot until they settle.
   */
  #lingering = 0;
  #scheduled = false;
  /** Whether every wake-up since the last exchange came from the safety-net poll. */
  #pollOnly = false;
  /** The last claim filled every slot it asked for: the queue has a backlog. */
  #backlog = false;
  #again = false;
  /** A Redis call failed: the notification stream may have ended with it. */
  #suspect = false;
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
      ...(options.breakers ? { breakers: options.breakers } : {}),
    };
    for (const [type, def] of Object.entries(options.queue.ctx.catalog)) {
      if (def.breaker && options.breakers) {
        try {
          options.breakers.get(def.breaker);
        } catch {
          throw new RangeError(
            `Cannot start a runner: task "${type}" names unknown breaker "${def.breaker}"`,
          );
        }
      }
    }
    this.#log = options.deps.log.child({ worker_id: this.workerId });
  }

  /** Number of tasks being handled now. */
  get inFlight(): number {
    return this.#running.size;
  }

  /**
   * Task types whose downstream breaker refuses calls now: claiming them would
   * only burn attempts into the DLQ, so they stay queued (parked) until it
   * closes. HALF_OPEN is not paused: a task may be the probe.
   */
  #pausedTypes(): string[] {
    const registry = this.#o.breakers;
    const out: string[] = [];
    for (const [type, def] of Object.entries(this.#o.queue.ctx.catalog)) {
      // Types this worker has no handler for (an older worker in a rolling
      // deploy, a specialised worker) stay queued for a worker that has one,
      // instead of being claimed and dead-lettered here.
      if (!Object.hasOwn(this.#o.handlers, type)) {
        out.push(type);
        continue;
      }
      if (!def.breaker || !registry) continue;
      try {
        const state = registry.get(def.breaker).state;
        if (state === "open" || state === "forced_open") out.push(type);
      } catch {
        // an unknown breaker name pauses nothing (checked at construction)
      }
    }
    return out;
  }

  /** Starts claiming. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    // A breaker that closes (or opens) changes what may be claimed: look again.
    this.#o.breakers?.events.addEventListener("transition", this.#onTransition);
    if (this.#o.subscribe) this.#subscribe();
    const beat = this.#beatMs();
    this.#heartbeat = setInterval(() => {
      this.#abandonUnconfirmed();
      this.#renewLeases();
    }, beat);
    this.#wake();
  }

  /**
   * (Re)opens the "work is ready" notification stream. The SDK's stream ends
   * silently when the connection drops (a Redis restart ends it at the
   * bridge) and never reconnects; until it is reopened only the poll finds
   * new work.
   */
  #subscribe(): void {
    const previous = this.#subscriber;
    previous?.unsubscribe().catch(() => {});
    // Over TCP when the queue's scripts use it: no REST gateway between the
    // enqueue's notification and this worker (docs/queue.md, Transports).
    const channel = this.#o.queue.ctx.keys.notifyChannel;
    const tcp = this.#o.queue.ctx.tcp;
    const sub = tcp ? tcp.subscribe(channel) : this.#o.deps.redis.subscribe(channel);
    sub.on("message", () => this.#wake());
    sub.on("error", (err) => {
      this.#suspect = true;
      this.#log.warn("notification stream error", { err });
    });
    this.#subscriber = sub;
  }

  /**
   * Asks for an exchange once this turn of the event loop is over, so every
   * completion and wake-up of the turn shares one round trip.
   */
  #wake(poll = false): void {
    if (!poll) this.#pollOnly = false;
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#pollOnly = poll;
    setImmediate(this.#onImmediate);
  }

  readonly #onTransition = () => this.#wake();

  readonly #onImmediate = () => {
    this.#scheduled = false;
    this.#exchange();
  };

  /**
   * One round trip: reports every finished task (ack, fail) and claims tasks
   * for the free slots, as script calls issued in the same tick, which the
   * auto-pipelining client sends as ONE request. At most MAX_EXCHANGES are in
   * flight; a claim reserves its slots until it returns.
   */
  #exchange(): void {
    if (this.#exchanges.size >= MAX_EXCHANGES) {
      this.#again = true;
      return;
    }
    const free = this.#stopping
      ? 0
      : this.#o.concurrency - this.#running.size - this.#reserved - this.#lingering;
    const batch = this.#outcomes;
    if (batch.length === 0 && free <= 0) {
      // Slots held for a claim in flight: that claim may have run before the
      // work this wake-up announces, so look again once it is back.
      if (this.#reserved > 0) this.#again = true;
      return;
    }
    this.#outcomes = [];
    // While the queue has a backlog (the last claim came back full), at most
    // half the slots per claim: with two exchanges in flight, Redis runs one
    // while this process starts and finishes the tasks of the other, instead
    // of both taking turns (docs/queue.md, Delivery). Without a backlog, one
    // claim for every free slot (no second, empty round trip per wake-up).
    const open = Math.max(0, free);
    const take = this.#backlog
      ? Math.min(open, Math.ceil(this.#o.concurrency / MAX_EXCHANGES))
      : open;
    this.#reserved += take;
    const done = this.#roundTrip(batch, take, this.#pollOnly).finally(() => {
      this.#exchanges.delete(done);
      this.#reserved -= take;
      if (this.#again || this.#outcomes.length > 0) {
        this.#again = false;
        this.#wake();
      }
    });
    this.#exchanges.add(done);
    // The other half in a second exchange (next tick: its own round trip).
    if (open > take) this.#wake();
  }

  async #roundTrip(batch: Outcome[], free: number, byPoll: boolean): Promise<void> {
    const ctx = this.#o.queue.ctx;
    const acks: (Completion & { type: string })[] = [];
    const fails: (Failure & { type: string })[] = [];
    for (const o of batch) {
      if (o.kind === "ack") acks.push(o);
      else fails.push(o);
    }
    const claimSentAt = performance.now();
    // A store call that never answers (a request stuck on a dead connection)
    // must not hold this exchange, its reserved slots and the worker with it:
    // past a lease's length it counts as failed. Whatever it did meanwhile is
    // covered by leases: an abandoned claim's tasks expire and run again, an
    // abandoned ack or fail is repeated by the rerun (docs/queue.md).
    const bound = <T>(p: Promise<T>, what: string) => bounded(p, this.#o.leaseMs, what);
    const [reported, claimed] = await Promise.allSettled([
      batch.length === 0
        ? Promise.resolve(null)
        : bound(Promise.all([ack(ctx, acks), fail(ctx, fails)]), "reporting task outcomes"),
      free > 0
        ? bound(
          claim(ctx, {
            max: free,
            leaseMs: this.#o.leaseMs,
            workerId: this.workerId,
            pausedTypes: this.#pausedTypes(),
          }),
          "claiming tasks",
        )
        : Promise.resolve(null),
    ]);
    if (reported.status === "rejected") {
      this.#o.deps.metrics.storeErrors.inc({ store: "redis", component: "runner" });
      // Redis unreachable: the leases expire and the tasks run again (at-least-once).
      this.#suspect = true;
      this.#log.error("reporting task outcomes failed; leases will expire and tasks rerun", {
        err: reported.reason,
        count: batch.length,
      });
    } else if (reported.value !== null) {
      this.#logReport(acks, fails, reported.value[0], reported.value[1]);
    }
    if (free === 0) return;
    let nextDueAt: number | null = null;
    if (claimed.status === "rejected") {
      this.#o.deps.metrics.storeErrors.inc({ store: "redis", component: "runner" });
      this.#suspect = true;
      this.#log.error("claim failed", { err: claimed.reason });
    } else if (claimed.value !== null) {
      const res = claimed.value;
      nextDueAt = res.nextDueAt;
      this.#checkNotifications(byPoll && res.tasks.length > 0 && res.recovered === 0);
      if (res.recovered > 0 || res.dead > 0) {
        this.#log.warn("took back expired leases", { recovered: res.recovered, dead: res.dead });
      }
      for (const task of res.tasks) {
        this.#countClaim(task);
        this.#run(task, claimSentAt + this.#o.leaseMs);
      }
      // A full claim: there may be more, claim again as soon as slots free up.
      this.#backlog = res.tasks.length === free;
      if (this.#backlog && !this.#stopping) this.#again = true;
    }
    // Poll as a safety net; sooner when a delayed task falls due.
    const untilDue = nextDueAt === null ? Infinity : nextDueAt - this.#o.deps.now();
    this.#schedule(Math.min(this.#o.pollMs, untilDue));
  }

  /** Counts a claim; a first attempt also records its wait since enqueue. */
  #countClaim(task: ClaimedTask): void {
    const m = this.#o.deps.metrics;
    m.tasksClaimed.inc({ type: task.type });
    if (task.attempt === 1 && task.createdAt > 0) {
      m.taskQueueWait.observe(
        { type: task.type },
        Math.max(0, this.#o.deps.now() - task.createdAt) / 1000,
      );
    }
  }

  #logReport(
    acks: (Completion & { type: string })[],
    fails: (Failure & { type: string })[],
    ackCodes: number[],
    failCodes: number[],
  ) {
    const outcomes = this.#o.deps.metrics.taskOutcomes;
    for (let i = 0; i < ackCodes.length; i++) {
      const type = acks[i]!.type;
      if (ackCodes[i] === ACK.completed) outcomes.inc({ type, outcome: "succeeded" });
      else {
        outcomes.inc({ type, outcome: "lease_lost" });
        this.#log.warn("ack rejected: lease lost", { task_id: acks[i]!.id });
      }
    }
    failCodes.forEach((code, i) => {
      const f = fails[i]!;
      const dead = code === FAIL.deadLettered || code === FAIL.deadLetteredAndEvicted;
      outcomes.inc({
        type: f.type,
        outcome: dead
          ? "dead_lettered"
          : code === FAIL.staleLease
          ? "lease_lost"
          : (f.refused ? "deferred" : "retried"),
      });
      if (dead) {
        this.#log.error("task dead-lettered", {
          task_id: f.id,
          error: f.error,
          permanent: f.permanent,
        });
      }
      if (code === FAIL.deadLetteredAndEvicted) {
        this.#log.error("dead-letter queue cap reached; oldest entries evicted");
      }
      if (code === FAIL.staleLease) {
        this.#log.warn("failure report rejected: lease lost", { task_id: f.id });
      }
    });
  }

  /**
   * Reopens the notification stream after Redis failed us (the stream most
   * likely ended with the connection) or when the safety-net poll found work
   * that no notification announced.
   */
  #checkNotifications(pollFoundWork: boolean): void {
    if (!this.#o.subscribe || this.#stopping || !(this.#suspect || pollFoundWork)) return;
    this.#log.info("reopening the notification stream", {
      reason: this.#suspect ? "redis_error" : "poll_found_work",
    });
    this.#suspect = false;
    this.#subscribe();
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    if (this.#stopping) return;
    // A due time earlier than the poll is expected work, not a missed notification.
    const poll = ms >= this.#o.pollMs;
    this.#timer = setTimeout(() => this.#wake(poll), Math.max(1, ms));
  }

  #run(task: ClaimedTask, leaseUntil: number): void {
    const controller = new AbortController();
    const entry: Running = { task, controller, abandoned: false, leaseUntil };
    this.#running.set(task.id, entry);
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
      (span) => this.#execute(entry, span).finally(() => span.end()),
    );
  }

  async #execute(entry: Running, span: Span): Promise<void> {
    const { task, controller } = entry;
    // The task's logger is built on first use: most tasks never log.
    let taskLog: Logger | undefined;
    const log = () =>
      taskLog ??= this.#log.child({
        task_id: task.id,
        task_type: task.type,
        attempt: task.attempt,
      });
    const timeoutMs = task.timeoutMs > 0 ? task.timeoutMs : 30_000;
    const timer = setTimeout(() => {
      controller.abort(new TaskTimeoutError(timeoutMs));
    }, timeoutMs);
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener("abort", () => reject(controller.signal.reason), {
        once: true,
      });
    });
    aborted.catch(() => {});
    const started = performance.now();
    let outcome: Outcome;
    try {
      const handler = this.#o.handlers[task.type];
      if (!handler) {
        throw new PermanentTaskError(`No handler for task type "${task.type}"`);
      }
      const payload = JSON.parse(task.payloadJson);
      const ctx: TaskContext = {
        deps: this.#o.deps,
        taskId: task.id,
        attempt: task.attempt,
        leaseToken: task.leaseToken,
        enqueuedAt: task.createdAt,
        signal: controller.signal,
        get log() {
          return log();
        },
      };
      const running = Promise.resolve().then(() => handler(payload, ctx));
      const result = await Promise.race([running, aborted]).catch((err) => {
        if (controller.signal.aborted) this.#linger(task, running);
        throw err;
      });
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
      outcome = {
        kind: "ack",
        id: task.id,
        type: task.type,
        leaseToken: task.leaseToken,
        resultJson,
      };
      span.setStatus({ code: SpanStatusCode.OK });
    } catch (err) {
      const permanent = isPermanent(err);
      const refused = !permanent && isDeferred(err);
      const def = this.#o.queue.ctx.catalog[task.type];
      const backoffMs = refused
        ? refusalDelay(err as { retryAfterMs?: unknown }, this.#o.random, def?.breaker)
        : def
        ? backoffDelay(def.backoff, task.attempt, this.#o.random)
        : 1000;
      outcome = {
        kind: "fail",
        id: task.id,
        type: task.type,
        leaseToken: task.leaseToken,
        error: errorText(err),
        permanent,
        backoffMs,
        refused,
      };
      span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error });
      if (!entry.abandoned) log().warn("task failed", { err, permanent, backoff_ms: backoffMs });
    } finally {
      clearTimeout(timer);
      this.#o.deps.metrics.taskRunDuration.observe(
        { type: task.type },
        (performance.now() - started) / 1000,
      );
    }
    if (entry.abandoned) return; // released or lease lost: someone else owns it now
    // The slot frees now; the lease is held until the next exchange reports the outcome.
    this.#running.delete(task.id);
    this.#outcomes.push(outcome);
    if (this.#running.size === 0) this.#idle.resolve();
    this.#wake();
  }

  /** Keeps a slot for an aborted handler until it really returns. */
  #linger(task: ClaimedTask, running: Promise<unknown>): void {
    this.#lingering++;
    const started = this.#o.deps.now();
    running.catch(() => {}).finally(() => {
      this.#lingering--;
      this.#log.warn("aborted handler returned", {
        task_id: task.id,
        task_type: task.type,
        lingered_ms: this.#o.deps.now() - started,
      });
      this.#wake();
    });
  }

  #beatMs(): number {
    return Math.max(50, Math.floor(this.#o.leaseMs / 3));
  }

  /**
   * A task whose lease this worker cannot confirm until the next heartbeat
   * is abandoned now, before Redis can hand it to another worker: renewals
   * that keep failing (Redis unreachable, or this process was paused past
   * the lease) must not let a task run on while a second worker runs it too.
   * Its outcome is not reported; the lease expires and the task runs again
   * elsewhere (at-least-once, with idempotent effects).
   */
  #abandonUnconfirmed(): void {
    const horizon = performance.now() + this.#beatMs();
    for (const r of [...this.#running.values()]) {
      if (r.abandoned || r.leaseUntil > horizon) continue;
      this.#abandon(r, new LeaseExpiredError(), "lease not confirmed in time");
    }
    if (this.#running.size === 0) this.#idle.resolve();
  }

  #abandon(r: Running, reason: Error, message: string): void {
    r.abandoned = true;
    r.controller.abort(reason);
    this.#running.delete(r.task.id);
    this.#log.warn(`${message}; task abandoned`, { task_id: r.task.id, task_type: r.task.type });
  }

  async #renewLeases(): Promise<void> {
    const held = [...this.#running.values()].filter((r) => !r.abandoned);
    if (held.length === 0) return;
    const sentAt = performance.now();
    try {
      const codes = await extendLeases(
        this.#o.queue.ctx,
        held.map((r) => ({ id: r.task.id, leaseToken: r.task.leaseToken })),
        this.#o.leaseMs,
      );
      codes.forEach((code, i) => {
        const r = held[i]!;
        if (code === EXTEND_LEASES.renewed) {
          r.leaseUntil = Math.max(r.leaseUntil, sentAt + this.#o.leaseMs);
          return;
        }
        // Finished meanwhile (its ack may have reached Redis before this
        // renewal, which then finds no lease) or replaced by a new claim of
        // the same id: nothing was lost.
        if (this.#running.get(r.task.id) !== r) return;
        this.#abandon(r, new LeaseLostError(), "lease lost");
      });
      if (this.#running.size === 0) this.#idle.resolve();
    } catch (err) {
      this.#suspect = true;
      this.#log.warn("lease renewal failed", { err });
    }
  }

  /** Waits until every finished task's outcome has been reported (or its report failed). */
  async #settle(): Promise<void> {
    while (this.#exchanges.size > 0 || this.#outcomes.length > 0) {
      if (this.#outcomes.length > 0) this.#exchange();
      await Promise.all(this.#exchanges);
    }
  }

  /**
   * Graceful stop: no new claims; in-flight tasks get `shutdownGraceMs` to
   * finish; the rest are aborted and released to the front of their queue.
   */
  async stop(): Promise<{ finished: number; released: number }> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    this.#o.breakers?.events.removeEventListener("transition", this.#onTransition);
    await this.#subscriber?.unsubscribe().catch(() => {});
    // A claim already in flight still hands over its tasks: they run (or are released) below.
    await Promise.all(this.#exchanges);
    const before = this.#running.size;
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
        new ShutdownError(),
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
      released = codes.filter((c) => c === RELEASE.released).length;
    }
    await this.#settle();
    this.#log.info("worker runner stopped", { finished: before - leftovers.length, released });
    return { finished: before - leftovers.length, released };
  }
}
