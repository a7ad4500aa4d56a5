/**
 * The `lead_events` scenario of `bench:ws`: how fast committed lead events
 * reach the live feed's `leads` topic through the edges' relay
 * (edge/ws/lead_events_relay.ts; one edge leads). N events are inserted into
 * Postgres in batches of 1,000 (4 statements in flight, as `POST /v1/events`
 * writes them); this process follows the `leads` history from the moment
 * before the first insert and matches each published event to its insert.
 *
 * - `events_per_s`: N / (first insert started → last event published);
 * - `p50_ms`/`p99_ms`: an event's insert statement returned → its message's
 *   offset time (Redis clock; same machine);
 * - `lost`: events never published (or trimmed from the history before this
 *   process read them: `history_gaps` counts such reads), `duplicates`: events
 *   published more than once.
 *
 * With `rate` (the `lead_events_paced` scenario), events are inserted at that
 * rate instead, in batches of 100 due every 100 / rate s (a late batch is not
 * forgiven: its lag still counts from when it returned), so the lag is the
 * relay's at that load rather than a backlog's.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { Pool } from "@neondatabase/serverless";
import { insertLeadEvents, type NewLeadEvent } from "../shared/leads/events.ts";
import { liveFeedKeys } from "../shared/redis/keys.ts";
import { readHistory } from "../shared/ws/history.ts";
import { bindFeedScripts } from "../shared/ws/scripts.ts";
import { percentile, round3 } from "./lib/report.ts";

const BATCH = 1000;
const PACED_BATCH = 100;
const IN_FLIGHT = 4;

/** Runs the scenario; returns the fields of its bench line. */
export async function leadEventsScenario(
  redis: Redis,
  sql: Pool,
  n: number,
  rate?: number,
): Promise<Record<string, unknown>> {
  const batchSize = rate === undefined ? BATCH : PACED_BATCH;
  const run = crypto.randomUUID().slice(0, 8);
  const source = `bench:ws:${run}`;
  const ctx = { scripts: bindFeedScripts(redis), keys: liveFeedKeys("pc") };
  let since = (await readHistory(ctx, "leads", null)).tail;
  const insertedAt = new Map<string, number>();
  const publishedAt = new Map<string, number>();
  let duplicates = 0;
  let gaps = 0;
  let inserting = true;

  const follow = (async () => {
    const deadline = () => !inserting && performance.now() > lastProgress + 10_000;
    let lastProgress = performance.now();
    while (publishedAt.size < n && !deadline()) {
      const read = await readHistory(ctx, "leads", since);
      if (!read.complete) gaps++;
      for (const m of read.messages) {
        const data = JSON.parse(m.data) as { id: string; source: string };
        if (data.source !== source) continue;
        if (publishedAt.has(data.id)) duplicates++;
        else publishedAt.set(data.id, m.ts);
        lastProgress = performance.now();
      }
      if (read.messages.length > 0) since = read.messages.at(-1)!.offset;
      else await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const t0 = Date.now();
  const batches = Array.from(
    { length: Math.ceil(n / batchSize) },
    (_, b) =>
      Array.from({ length: Math.min(batchSize, n - b * batchSize) }, (): NewLeadEvent => ({
        id: crypto.randomUUID(),
        lead_id: crypto.randomUUID(),
        event_type: "email.opened",
        event_data: { run },
        source,
      })),
  );
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < batches.length) {
      const b = next++;
      const batch = batches[b]!;
      if (rate !== undefined) {
        const wait = t0 + (b * batchSize * 1000) / rate - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await insertLeadEvents(sql, batch);
      const at = Date.now();
      for (const e of batch) insertedAt.set(e.id!, at);
    }
  }));
  const insertS = (Date.now() - t0) / 1000;
  inserting = false;
  await follow;

  const lags: number[] = [];
  let last = t0;
  for (const [id, ts] of publishedAt) {
    const at = insertedAt.get(id);
    if (at !== undefined) lags.push(Math.max(0, ts - at));
    last = Math.max(last, ts);
  }
  const totalS = (last - t0) / 1000;
  return {
    n,
    ...(rate === undefined ? {} : { rate }),
    events_per_s: Math.round(publishedAt.size / totalS),
    insert_events_per_s: Math.round(n / insertS),
    p50_ms: round3(percentile(lags, 50)),
    p99_ms: round3(percentile(lags, 99)),
    max_ms: round3(percentile(lags, 100)),
    lost: n - publishedAt.size,
    duplicates,
    history_gaps: gaps,
    total_s: round3(totalS),
  };
}
