/**
 * The live-feed half of a chaos run's verification: what was published on
 * each followed topic (read straight from the topic's history stream in
 * Redis, not through the fault proxies, every 2 s, so nothing is trimmed
 * before it is read: the history keeps 2 minutes), and whether each
 * follower (dev/chaos/follower.ts) saw every message of its topics exactly
 * once, in order, across its reconnects.
 *
 * A follower is judged from its first subscription's offset to the newest
 * offset it received (after that it had stopped). Messages inside a gap the
 * server announced (`subscribed` with `recovered: false`) are excused up to
 * the next message received: that is the documented answer when the history
 * no longer holds them (docs/live-feed.md); announced gaps are counted.
 * Messages with a target (one user or client) are not in the truth: a
 * follower is not meant to see them.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { liveFeedKeys } from "../../shared/redis/keys.ts";
import { readHistory } from "../../shared/ws/history.ts";
import { bindFeedScripts } from "../../shared/ws/scripts.ts";
import { compareOffsets, type Topic } from "../../shared/ws/topics.ts";
import type { TopicLog } from "./follower.ts";

/** What the check found for one follower's topic. */
export interface FeedFindings {
  /** Messages received (repeats included). */
  received: number;
  /** Published messages in the judged range neither received nor excused by an announced gap. */
  lost: string[];
  /** Offsets received more than once. */
  duplicated: string[];
  /** Messages received after a newer one (not repeats). */
  out_of_order: number;
  /** Gaps the server announced (`recovered: false` on a resubscription). */
  gaps_announced: number;
  /** Messages excused by those gaps. */
  excused: number;
}

/** Compares one follower's log of a topic with the topic's published offsets (sorted). */
export function checkTopic(log: TopicLog, published: readonly string[]): FeedFindings {
  const seen = new Map<string, number>();
  let newest: string | null = null;
  let outOfOrder = 0;
  for (const o of log.offsets) {
    const n = (seen.get(o) ?? 0) + 1;
    seen.set(o, n);
    if (n > 1) continue;
    if (newest !== null && compareOffsets(o, newest) < 0) outOfOrder++;
    if (newest === null || compareOffsets(o, newest) > 0) newest = o;
  }
  const received = [...seen.keys()].sort(compareOffsets);
  // Each gap excuses (from, first offset received after from).
  const excusedUntil = log.gaps.map((from) => ({
    from,
    to: received.find((o) => compareOffsets(o, from) > 0) ?? null,
  }));
  const lost: string[] = [];
  let excused = 0;
  if (log.start !== null && newest !== null) {
    for (const o of published) {
      if (compareOffsets(o, log.start) <= 0 || compareOffsets(o, newest) > 0) continue;
      if (seen.has(o)) continue;
      const inGap = excusedUntil.some((g) =>
        compareOffsets(o, g.from) > 0 && (g.to === null || compareOffsets(o, g.to) < 0)
      );
      if (inGap) excused++;
      else lost.push(o);
    }
  }
  return {
    received: log.offsets.length,
    lost,
    duplicated: [...seen].filter(([, n]) => n > 1).map(([o]) => o),
    out_of_order: outOfOrder,
    gaps_announced: log.gaps.length,
    excused,
  };
}

/** A running collection of published offsets. */
export interface FeedTruth {
  /** Stops polling after one last read; the offsets per topic, in order. */
  stop(): Promise<Record<string, string[]>>;
}

/** Polls the history streams of `topics` every `everyMs` through `redis` (a direct client). */
export function collectFeedTruth(
  redis: Redis,
  topics: readonly Topic[],
  everyMs = 2_000,
): FeedTruth {
  const ctx = { scripts: bindFeedScripts(redis), keys: liveFeedKeys() };
  const out: Record<string, string[]> = Object.fromEntries(topics.map((t) => [t, []]));
  const last: Record<string, string> = {};
  let busy: Promise<void> = Promise.resolve();
  const poll = async () => {
    for (const topic of topics) {
      // The project's own reader (ws_read_history.lua), after the newest offset read so far;
      // Redis away (a fault): the next poll reads on from the same offset.
      const read = await readHistory(ctx, topic, last[topic] ?? "0-0").catch(() => null);
      for (const m of read?.messages ?? []) {
        if (last[topic] !== undefined && compareOffsets(m.offset, last[topic]!) <= 0) continue;
        if (m.target === null) out[topic]!.push(m.offset);
        last[topic] = m.offset;
      }
    }
  };
  const timer = setInterval(() => {
    busy = busy.then(poll);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await busy;
      await poll();
      return out;
    },
  };
}
