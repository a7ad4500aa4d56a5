/**
 * A chaos live-feed follower, run as its own process by dev/chaos/main.ts:
 *
 *   deno run --allow-net dev/chaos/follower.ts <json options>
 *
 * It follows topics over `GET /v1/ws` like a dashboard does
 * (docs/live-feed.md): it subscribes, records every message's offset, and
 * reconnects — on purpose every `reconnectEveryMs`, and whenever the socket
 * closes (an edge killed, paused, stopped) — to the other edge, subscribing
 * again with `since` = the last offset it saw per topic. At the end it prints
 * one JSON line ({@linkcode FollowerReport}); dev/chaos/feed_check.ts compares
 * it with what was published.
 *
 * @module
 */
import { compareOffsets } from "../../shared/ws/topics.ts";

/** Options passed as the first argument. */
export interface FollowerOptions {
  id: string;
  edges: string[];
  token: string;
  topics: string[];
  /** How long to follow, ms. */
  durationMs: number;
  /** A voluntary reconnect (with `since`) this often, ms. */
  reconnectEveryMs: number;
}

/** What one follower saw of one topic. */
export interface TopicLog {
  /** Offset after which the first subscription delivers (its `subscribed.offset`); null: never subscribed. */
  start: string | null;
  /** Offsets received, in arrival order (repeats and reorders included). */
  offsets: string[];
  /**
   * Announced gaps (`subscribed` with `recovered: false` after a first
   * subscription): messages after `from` up to the next one received are
   * excused — the client was told to reload its state (docs/live-feed.md).
   */
  gaps: string[];
}

/** The follower's one output line. */
export interface FollowerReport {
  t: "follower";
  id: string;
  topics: Record<string, TopicLog>;
  /** Sockets opened after the first. */
  reconnects: number;
  /** Of which not on purpose (the socket closed or failed to open). */
  involuntary: number;
}

/**
 * Folds one server frame into `log` (exported for the unit test). `since`:
 * the offset this socket's subscription asked to resume after (undefined on
 * the very first subscription).
 */
export function applyFrame(
  logs: Record<string, TopicLog>,
  frame: { type?: string; topic?: string; offset?: string; recovered?: boolean },
  since: Record<string, string | undefined>,
): void {
  const topic = frame.topic ?? "";
  const log = logs[topic];
  if (log === undefined || typeof frame.offset !== "string") return;
  if (frame.type === "subscribed") {
    if (log.start === null) log.start = frame.offset;
    else if (frame.recovered !== true) log.gaps.push(since[topic] ?? frame.offset);
  } else if (frame.type === "message") {
    log.offsets.push(frame.offset);
  }
}

/** The newest offset of `log` (what a resubscription asks to resume after). */
export function lastOffset(log: TopicLog): string | undefined {
  let last: string | undefined = log.start ?? undefined;
  for (const o of log.offsets) if (last === undefined || compareOffsets(o, last) > 0) last = o;
  return last;
}

/** One socket's life: resolves true when it closed on purpose (timer or the end). */
function session(
  o: FollowerOptions,
  edge: string,
  logs: Record<string, TopicLog>,
  stopAt: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const url = `${edge.replace(/^http/, "ws")}/v1/ws`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, ["bearer", o.token]);
    } catch {
      resolve(false);
      return;
    }
    let purposeful = false;
    const since: Record<string, string | undefined> = {};
    const until = Math.min(Date.now() + o.reconnectEveryMs, stopAt);
    const timer = setTimeout(() => {
      purposeful = true;
      ws.close(1000);
    }, Math.max(0, until - Date.now()));
    // A socket that opens nothing (a paused edge accepts and stalls) is given up after 5 s.
    const openTimer = setTimeout(() => ws.close(), 5_000);
    ws.onmessage = (e) => {
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(String(e.data));
      } catch {
        return;
      }
      if (frame.type === "welcome") {
        clearTimeout(openTimer);
        const resume: Record<string, string> = {};
        for (const t of o.topics) {
          since[t] = lastOffset(logs[t]!);
          if (since[t] !== undefined) resume[t] = since[t]!;
        }
        const sub = Object.keys(resume).length > 0
          ? { type: "subscribe", topics: o.topics, since: resume }
          : { type: "subscribe", topics: o.topics };
        ws.send(JSON.stringify(sub));
        return;
      }
      // The history could not be read (Redis away): that topic is not followed on this socket.
      if (frame.type === "error" && frame.code === "unavailable") ws.close();
      applyFrame(logs, frame as Parameters<typeof applyFrame>[1], since);
    };
    ws.onclose = () => {
      clearTimeout(timer);
      clearTimeout(openTimer);
      resolve(purposeful);
    };
    ws.onerror = () => {};
  });
}

if (import.meta.main) {
  const o = JSON.parse(Deno.args[0] ?? "{}") as FollowerOptions;
  const logs: Record<string, TopicLog> = {};
  for (const t of o.topics) logs[t] = { start: null, offsets: [], gaps: [] };
  const stopAt = Date.now() + o.durationMs;
  let sockets = 0;
  let involuntary = 0;
  for (let edge = 0; Date.now() < stopAt; edge = (edge + 1) % o.edges.length) {
    const onPurpose = await session(o, o.edges[edge]!, logs, stopAt);
    sockets++;
    if (!onPurpose) {
      involuntary++;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const report: FollowerReport = {
    t: "follower",
    id: o.id,
    topics: logs,
    reconnects: Math.max(0, sockets - 1),
    involuntary,
  };
  console.log(JSON.stringify(report));
}
