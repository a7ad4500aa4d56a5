/**
 * Publishes every committed lead event on the live feed's `leads` topic,
 * keyed by lead id (`leads:<lead_id>` follows one lead), after its
 * transaction committed. Events are written by many paths (the repository's
 * transactions, the send-email ledger, scrapes, `POST /v1/events` with up to
 * 1000 per request), so instead of hooking each one the relay polls
 * `lead_events` itself (change data capture by transaction id; see
 * lead_events_relay_progress.ts for why a snapshot records progress exactly).
 *
 * One relay publishes at a time: every edge runs one, and a lease in Redis
 * (lead_events_relay.lua) elects the publisher. The leader records its
 * progress through the same script, fenced by the lease, so a relay taking
 * over continues where the last one stopped; with nothing recorded at all
 * it starts from now rather than replaying history.
 *
 * Exactly once: progress is recorded at the next poll (one Redis call per
 * poll), so a leader that dies leaves events published but not recorded; a
 * publish that fails may have landed too. Neither is deduplicated by the
 * publisher (a dedupe marker works only when the FIRST publish set one, and
 * a marker per event costs a write and a key per event). Instead, after
 * taking over or after a failure, the relay reads the `leads` history since
 * the last point it is sure of and skips events found there, until a
 * snapshot taken after that moment has been published whole. A leader
 * starts a publish only in the first half of its lease since it last renewed
 * it (renewing in the middle of a long page) and gives up on any call after
 * at most half a lease, so a successor, which can only take an expired
 * lease, starts after the predecessor's last publish was answered or
 * abandoned. Events go out in batches (`batchSize` per script call, in
 * order); a failed batch is treated like a failed publish. What remains: an
 * abandoned publish that still lands after the
 * successor read the history, or a history trimmed below that point
 * (logged), can repeat an event.
 *
 * @module
 */
import { bounded } from "../../shared/deadline.ts";
import type { Redis } from "@upstash/redis";
import type { Queryable } from "../../shared/leads/transaction.ts";
import type { Logger } from "../../shared/log.ts";
import { leadFeedKeys, liveFeedKeys } from "../../shared/redis/keys.ts";
import { bindScript, type LoadedScript } from "../../shared/redis/scripts.ts";
import { bindFeedScripts } from "../../shared/ws/scripts.ts";
import type { LiveHub } from "./hub.ts";
import stepSource from "./lead_events_relay.lua" with { type: "text" };
import { RepeatGuard } from "./lead_events_relay_guard.ts";
import {
  advance,
  currentSnapshot,
  parseProgress,
  type Progress,
  readPage,
  type RelayedEvent,
  snapshotBounds,
} from "./lead_events_relay_progress.ts";
import type { Relay } from "./relays.ts";
import { LEAD_EVENTS_RELAY } from "../../shared/redis/script_codes.ts";

/** Options for {@linkcode relayLeadEvents}. */
export interface LeadEventsRelayOptions {
  redis: Redis;
  /** Where `lead_events` lives (the pool). */
  sql: Queryable;
  /** Publishes into the feed; its namespace must be `namespace`. */
  hub: Pick<LiveHub, "publish" | "publishMany" | "instanceId">;
  /** Redis key namespace. @default "pc" */
  namespace?: string;
  /** Pause between polls when caught up, ms. @default 100 */
  pollMs?: number;
  /** Most events read and published per poll. @default 2000 */
  pageSize?: number;
  /** Most events per publish call (one script call each, in order). @default 500 */
  batchSize?: number;
  /** Leader lease; at least 4 × pollMs, ms. @default 5000, or 4 × pollMs when that is longer */
  leaseMs?: number;
  /** Longest wait for one Redis or Postgres call; at most leaseMs / 2, ms. @default 2000 or leaseMs / 2 */
  timeoutMs?: number;
  log?: Logger;
  /**
   * Called after each poll that left nothing to publish while this instance
   * leads (the `lead_events_relay_caught_up_timestamp_seconds` metric). @default none
   */
  onCaughtUp?: () => void;
}

function positiveInt(name: string, v: number, max = 3_600_000): number {
  if (!Number.isInteger(v) || v <= 0 || v > max) {
    throw new RangeError(
      `Lead events relay option "${name}" must be an integer from 1 to ${max}: got ${v}`,
    );
  }
  return v;
}

class LeaseLost extends Error {
  override name = "LeaseLost";
  constructor(readonly holder: string) {
    super(`Lead events relay lease is held by "${holder}"`);
  }
}

class LeadEventsRelay implements Relay {
  readonly #o: LeadEventsRelayOptions;
  readonly #pollMs: number;
  readonly #pageSize: number;
  readonly #batchSize: number;
  readonly #leaseMs: number;
  readonly #timeoutMs: number;
  readonly #keys: ReturnType<typeof leadFeedKeys>;
  readonly #step: LoadedScript;
  #token = "";
  #loop: Promise<void> | null = null;
  #stopping = false;
  #wake: (() => void) | null = null;
  #failing = false;
  // Leadership; #progress is null while leading until it is known.
  #leader = false;
  #progress: Progress | null = null;
  #unsaved = false;
  // Fresh snapshots used so far, and which one the current target is (0: inherited).
  #seq = 0;
  #targetSeq = 0;
  readonly #guard: RepeatGuard;

  constructor(o: LeadEventsRelayOptions) {
    if (!o?.redis) throw new TypeError('Lead events relay option "redis" is required');
    if (typeof o.sql?.query !== "function") {
      throw new TypeError('Lead events relay option "sql" is required');
    }
    if (typeof o.hub?.publish !== "function" || typeof o.hub.publishMany !== "function") {
      throw new TypeError('Lead events relay option "hub" is required');
    }
    const namespace = o.namespace ?? "pc";
    if (typeof namespace !== "string" || !/^[A-Za-z0-9_.-]{1,64}$/.test(namespace)) {
      throw new TypeError(`Lead events relay option "namespace" is invalid: got ${namespace}`);
    }
    this.#o = o;
    this.#pollMs = positiveInt("pollMs", o.pollMs ?? 100);
    this.#pageSize = positiveInt("pageSize", o.pageSize ?? 2000, 10_000);
    this.#batchSize = positiveInt("batchSize", o.batchSize ?? 500, 1000);
    this.#leaseMs = positiveInt("leaseMs", o.leaseMs ?? Math.max(5000, 4 * this.#pollMs));
    if (this.#leaseMs < 4 * this.#pollMs) {
      throw new RangeError(
        `Lead events relay option "leaseMs" must be at least 4 × pollMs (${
          4 * this.#pollMs
        }): got ${this.#leaseMs}`,
      );
    }
    // A call started before the publishing deadline (half the lease) must end
    // before the lease can expire.
    const half = Math.floor(this.#leaseMs / 2);
    this.#timeoutMs = positiveInt("timeoutMs", o.timeoutMs ?? Math.min(2000, half), half);
    this.#keys = leadFeedKeys(namespace);
    const feed = { scripts: bindFeedScripts(o.redis), keys: liveFeedKeys(namespace) };
    this.#guard = new RepeatGuard(feed, o.log);
    this.#step = bindScript(o.redis, stepSource, { name: "lead_events_relay" });
  }

  start(): Promise<void> {
    if (this.#loop) return Promise.resolve();
    this.#stopping = false;
    this.#token = `${this.#o.hub.instanceId}:${crypto.randomUUID().slice(0, 8)}`;
    this.#loop = this.#run();
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    if (!this.#loop) return;
    this.#stopping = true;
    this.#wake?.();
    await this.#loop;
    this.#loop = null;
    if (!this.#leader) return;
    // Record the last progress and hand the lease over now, not at its expiry.
    try {
      await this.#call(0, this.#unsaved && this.#progress ? JSON.stringify(this.#progress) : "");
    } catch (err) {
      this.#o.log?.warn("lead events relay could not record its progress on stop", { err });
    }
    this.#resign();
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      let again = false;
      try {
        again = await this.#poll();
        if (!again && this.#leader) this.#o.onCaughtUp?.();
        if (this.#failing) this.#o.log?.info("lead events relay recovered");
        this.#failing = false;
      } catch (err) {
        // An outage fails every poll: one warning, then quiet until it recovers.
        if (!this.#failing) this.#o.log?.warn("lead events relay poll failed", { err });
        this.#failing = true;
      }
      if (again || this.#stopping) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#pollMs);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  async #call(leaseMs: number, progress: string) {
    const out = await bounded(
      this.#step.run<unknown[]>([this.#keys.lease, this.#keys.state], [
        this.#token,
        leaseMs,
        progress,
      ]),
      this.#timeoutMs,
      "lead events relay lease",
    );
    return {
      status: Number(out[0]),
      text: String(out[1]),
      at: Number(out[2]),
      now: Number(out[3]),
    };
  }

  /** One poll; true when there is more to publish right away. */
  async #poll(): Promise<boolean> {
    const started = performance.now();
    const saving = this.#leader && this.#unsaved && this.#progress !== null;
    const step = await this.#call(this.#leaseMs, saving ? JSON.stringify(this.#progress) : "");
    if (step.status === LEAD_EVENTS_RELAY.heldByAnother) {
      if (this.#leader) this.#o.log?.info("lead events relay lost its lease", { to: step.text });
      this.#resign();
      return false;
    }
    // Held but not known as held: a call that took the lease lost its answer.
    if (step.status === LEAD_EVENTS_RELAY.taken || !this.#leader) {
      this.#takeOver(step.text, step.at, step.now);
    } else if (saving) this.#unsaved = false;
    // A successor can take the lease once it expires: publish only in its first half.
    let deadline = started + this.#leaseMs / 2;
    const sql = this.#o.sql;
    if (this.#progress === null) {
      const done = await bounded(currentSnapshot(sql), this.#timeoutMs, "snapshot");
      this.#progress = { done, target: null, cursor: null };
      this.#unsaved = true;
      this.#o.log?.info("lead events relay starts from now: no recorded progress");
    }
    await this.#guard.prepare((p, what) => bounded(p, this.#timeoutMs, what));
    const progress = this.#progress;
    const page = await bounded(readPage(sql, progress, this.#pageSize), this.#timeoutMs, "page");
    const seen = snapshotBounds(progress.target ?? progress.done).xmax;
    if (snapshotBounds(page.snapshot).xmax < seen) {
      // Transaction ids went back: another database (a restore). Its ids say nothing here.
      this.#o.log?.warn("lead events relay restarts from now: the database's xids went back", {
        recorded: progress.done,
        current: page.snapshot,
      });
      this.#progress = { done: page.snapshot, target: null, cursor: null };
      this.#unsaved = true;
      return false;
    }
    // Events go out in batches (one script call each, in order); `published`
    // counts the page's events that are out (or skipped as already out).
    let published = 0;
    let failure: unknown = null;
    while (published < page.events.length && !this.#stopping) {
      const end = Math.min(published + this.#batchSize, page.events.length);
      const batch = page.events.slice(published, end).filter((e) => !this.#guard.has(e.id, e.time));
      try {
        if (performance.now() > deadline) deadline = await this.#renew();
        for (const offset of await this.#publishBatch(batch)) this.#guard.published(offset);
      } catch (err) {
        failure = err;
        break;
      }
      published = end;
    }
    const fresh = progress.target === null;
    const { progress: next, completed } = advance(progress, page, published, this.#pageSize);
    if (fresh && next !== progress) this.#seq++;
    const seq = fresh ? this.#seq : this.#targetSeq;
    if (next.target !== null) this.#targetSeq = seq;
    if (completed) this.#guard.completed(seq);
    if (next !== progress) {
      this.#progress = next;
      this.#unsaved = true;
    }
    if (failure instanceof LeaseLost) {
      // What this page published is found in the history by whoever leads next.
      this.#o.log?.info("lead events relay lost its lease", { to: failure.holder });
      this.#resign();
      return false;
    }
    if (failure !== null) {
      this.#guard.failed(this.#seq);
      throw new Error(`Cannot publish lead event ${page.events[published]!.id}`, {
        cause: failure,
      });
    }
    return page.events.length === this.#pageSize || (completed && !fresh);
  }

  /** Renews the lease in the middle of a page; returns the new publishing deadline. */
  async #renew(): Promise<number> {
    const started = performance.now();
    const step = await this.#call(this.#leaseMs, "");
    // Taken anew (2): it had expired, so a successor may have published meanwhile;
    // the next poll takes over properly (held but not known as held).
    if (step.status !== LEAD_EVENTS_RELAY.held) {
      throw new LeaseLost(
        step.status === LEAD_EVENTS_RELAY.heldByAnother ? step.text : this.#token,
      );
    }
    return started + this.#leaseMs / 2;
  }

  #takeOver(text: string, at: number, now: number): void {
    this.#o.log?.info("lead events relay took the lease", { token: this.#token });
    this.#leader = true;
    this.#unsaved = false;
    this.#targetSeq = 0;
    this.#progress = text === "" ? null : parseProgress(text);
    if (text !== "" && this.#progress === null) {
      this.#o.log?.warn("lead events relay ignores unreadable progress", { progress: text });
    }
    // The predecessor may have published after it recorded `at` (Redis
    // clock, as stream ids are); a second of margin for a clock step back.
    const since = `${Math.max(0, (this.#progress ? at : now) - 1000)}-0`;
    this.#guard.begin(since, this.#progress !== null, this.#seq);
  }

  #resign(): void {
    this.#leader = false;
    this.#progress = null;
    this.#unsaved = false;
    this.#guard.reset();
  }

  /** Publishes events in one call; returns their offsets. */
  async #publishBatch(events: RelayedEvent[]): Promise<string[]> {
    if (events.length === 0) return [];
    try {
      return await bounded(
        this.#o.hub.publishMany(
          "leads",
          events.map((e) => ({ data: eventData(e), key: e.lead_id })),
        ),
        this.#timeoutMs,
        "publish",
      );
    } catch (err) {
      // One event too large for a feed message fails the whole (unwritten)
      // batch: publish them one by one, the large one truncated.
      if ((err as Error)?.name !== "RangeError") throw err;
      const offsets: string[] = [];
      for (const e of events) offsets.push(await this.#publish(e));
      return offsets;
    }
  }

  /** Publishes one event; returns its offset. */
  async #publish(e: RelayedEvent): Promise<string> {
    const data = eventData(e);
    const publish = (d: unknown) =>
      bounded(
        this.#o.hub.publish("leads", d, { key: e.lead_id }),
        this.#timeoutMs,
        "publish",
      );
    try {
      return (await publish(data)).offset;
    } catch (err) {
      // Too large for a feed message: it would never go out, so say so without the data.
      if ((err as Error)?.name !== "RangeError") throw err;
      return (await publish({ ...data, event_data: null, truncated: true })).offset;
    }
  }
}

/** A `leads` message's data. */
function eventData(e: RelayedEvent) {
  return {
    id: e.id,
    lead_id: e.lead_id,
    event_type: e.event_type,
    event_data: e.event_data,
    source: e.source,
    // Microseconds stay internal (the relay's progress); clients get milliseconds (docs/api.md "Time").
    time: new Date(e.time).toISOString(),
  };
}

/** Publishes every committed lead event on the `leads` topic (once across instances). */
export function relayLeadEvents(options: LeadEventsRelayOptions): Relay {
  return new LeadEventsRelay(options);
}
