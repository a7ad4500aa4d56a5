/**
 * Which lead events may already be on the `leads` topic although the relay's
 * recorded progress says they are not (edge/ws/lead_events_relay.ts): those
 * a predecessor published after it last recorded progress, and one whose
 * publish failed after it may have landed. The publisher's dedupe markers
 * cannot catch these (a marker exists only when the FIRST publish set one,
 * and a marker on every event costs a write and a key per event), so the
 * guard reads the topic's history since the last point the relay is sure of
 * and the relay skips the events found there.
 *
 * The events in doubt are all in any snapshot taken after the doubt arose,
 * so the skip set is dropped once such a snapshot has been published whole.
 *
 * @module
 */
import type { Logger } from "../../shared/log.ts";
import type { LiveFeedKeys } from "../../shared/redis/keys.ts";
import { readHistory } from "../../shared/ws/history.ts";
import type { FeedScripts } from "../../shared/ws/scripts.ts";
import { compareOffsets } from "../../shared/ws/topics.ts";

/**
 * An event's identity: `lead_events`' primary key is (id, time). The feed
 * publishes times in milliseconds (docs/api.md "Time") while the table keeps
 * microseconds, so both sides are compared at milliseconds: two rows of one
 * id less than a millisecond apart (an ingest duplicate, never the platform's
 * own events) would count as one here, and the second would be skipped only
 * in the takeover window this guard covers.
 */
export function eventIdentity(id: unknown, time: unknown): string {
  const ms = typeof time === "string" ? Date.parse(time) : NaN;
  return `${id}|${Number.isFinite(ms) ? new Date(ms).toISOString() : time}`;
}

/** Tracks events in doubt; one per relay. */
export class RepeatGuard {
  readonly #feed: { scripts: FeedScripts; keys: LiveFeedKeys };
  readonly #log: Logger | undefined;
  #skip: Set<string> | null = null;
  #untilSeq = 0;
  #scanSince: string | null = null;
  #known = "0-0";

  constructor(feed: { scripts: FeedScripts; keys: LiveFeedKeys }, log?: Logger) {
    this.#feed = feed;
    this.#log = log;
  }

  /** Forgets everything (the relay is no longer the leader). */
  reset(): void {
    this.#skip = null;
    this.#scanSince = null;
  }

  /**
   * A term begins. `since`: a history offset this relay's publishes will
   * follow, and after which a predecessor may have published (when
   * `predecessor`: progress was recorded). `seq`: the last snapshot already
   * taken; a later one published whole ends the doubt.
   */
  begin(since: string, predecessor: boolean, seq: number): void {
    this.#skip = null;
    this.#known = since;
    this.#scanSince = predecessor ? since : null;
    this.#untilSeq = seq;
  }

  /** Every publish of this relay up to `offset` is known. */
  published(offset: string): void {
    this.#known = offset;
  }

  /** A publish failed, and may have landed. */
  failed(seq: number): void {
    this.#scanSince = this.#known;
    this.#untilSeq = seq;
  }

  /** Snapshot `seq` was published whole. */
  completed(seq: number): void {
    if (seq > this.#untilSeq) this.#skip = null;
  }

  /** True when the event is already on the topic. */
  has(id: string, time: string): boolean {
    return this.#skip?.has(eventIdentity(id, time)) ?? false;
  }

  /** Reads the history the doubt is about, if that is still to do. */
  async prepare(bound: <T>(p: Promise<T>, what: string) => Promise<T>): Promise<void> {
    const since = this.#scanSince;
    if (since === null) return;
    const read = await bound(readHistory(this.#feed, "leads", since), "leads history");
    const skip = this.#skip ??= new Set();
    for (const m of read.messages) {
      try {
        const d = JSON.parse(m.data) as { id?: unknown; time?: unknown };
        if (typeof d?.id === "string") skip.add(eventIdentity(d.id, d.time));
      } catch {
        // Not a relayed event.
      }
    }
    // A `since` past the tail reads as incomplete too; nothing was published after it.
    if (!read.complete && compareOffsets(read.tail, since) > 0) {
      this.#log?.warn("lead events relay: history trimmed, events may be published twice", {
        since,
        tail: read.tail,
      });
    }
    this.#scanSince = null;
  }
}
