/**
 * Reading a topic's history: every message after an offset, in order, and
 * whether that is ALL of them (nothing after the offset was trimmed away or
 * lost with a Redis that forgot its data). One script call per page
 * (ws_read_history.lua), so the answer and the entries are consistent.
 *
 * @module
 */
import type { LiveFeedKeys } from "../redis/keys.ts";
import type { Target } from "./publisher.ts";
import type { FeedScripts } from "./scripts.ts";
import type { Topic } from "./topics.ts";

/** One feed message, from the channel or from history. */
export interface FeedMessage {
  topic: Topic;
  offset: string;
  /** Publish time, epoch ms (the offset's time part, Redis's clock). */
  ts: number;
  /** Instance id of the publisher. */
  origin: string;
  key: string | null;
  target: Target | null;
  /** The message data as JSON text. */
  data: string;
}

/** The answer of {@linkcode readHistory}. */
export interface HistoryRead {
  /** True when no message after `since` is missing from `messages`' source. */
  complete: boolean;
  /** The newest offset of the topic when the last page was read ("0-0": none yet). */
  tail: string;
  messages: FeedMessage[];
}

/** Options for {@linkcode readHistory}. */
export interface ReadHistoryOptions {
  /** Entries per script call. @default 1000 */
  pageSize?: number;
}

function parseTarget(text: string): Target | null {
  if (text === "") return null;
  try {
    const t = JSON.parse(text) as Target;
    return t && typeof t === "object" ? t : null;
  } catch {
    return null;
  }
}

/**
 * Reads `topic` after `since` (exclusive; null reads only the tail). Pages
 * until the stream is exhausted; the stream holds at most its configured
 * length, which bounds the result.
 */
export async function readHistory(
  ctx: { scripts: FeedScripts; keys: LiveFeedKeys },
  topic: Topic,
  since: string | null,
  options: ReadHistoryOptions = {},
): Promise<HistoryRead> {
  const pageSize = options.pageSize ?? 1000;
  const redisKeys = [ctx.keys.history(topic), ctx.keys.historyMeta(topic)];
  const messages: FeedMessage[] = [];
  let from = since ?? "";
  let complete = true;
  let tail = "0-0";
  let first = true;
  while (true) {
    const out = await ctx.scripts.readHistory.run<unknown[]>(redisKeys, [from, pageSize]);
    // Only the first page says whether the range starting at `since` is whole.
    if (first) complete = Number(out[0]) === 1;
    first = false;
    tail = String(out[1]);
    const scanned = Number(out[2]);
    const lastScanned = String(out[3]);
    for (let i = 4; i + 4 < out.length; i += 5) {
      const offset = String(out[i]);
      messages.push({
        topic,
        offset,
        ts: Number(offset.slice(0, offset.indexOf("-"))),
        data: String(out[i + 1]),
        origin: String(out[i + 2]),
        key: String(out[i + 3]) || null,
        target: parseTarget(String(out[i + 4])),
      });
    }
    if (since === null || scanned < pageSize || lastScanned === "") break;
    from = lastScanned;
  }
  return { complete, tail, messages };
}
