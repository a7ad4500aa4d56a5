/**
 * `scrape_leads`: finds leads with a provider and upserts them.
 *
 * - `places`: the Google Places Text Search (New) API through the `places`
 *   breaker, at the configured QPS; `file`: an uploaded CSV or JSON array.
 * - Businesses are upserted by (source, external_id), so a rerun (retry,
 *   replay, the same file twice) never duplicates a lead; new leads get a
 *   `lead_created` event.
 * - One `scrape_runs` row per task (keyed by task id) records the counts and
 *   every rejected row with its line number and reason.
 * - A file that cannot be parsed at all, or a request Places rejects, is
 *   permanent (DLQ with the reason); Places 5xx/timeouts are retried.
 *
 * @module
 */
import type { z } from "zod";
import type { Breaker } from "../../shared/breakers/breaker.ts";
import { recordLeadEvents } from "../../shared/leads/events.ts";
import { parseLeadCsv, parseLeadJson } from "../../shared/leads/sourcing/csv.ts";
import { LeadImportError } from "../../shared/leads/sourcing/errors.ts";
import { createPlacesClient } from "../../shared/leads/sourcing/places.ts";
import { type LeadRejection, toLeadRecords } from "../../shared/leads/sourcing/record.ts";
import {
  finishScrapeRun,
  startScrapeRun,
  upsertLeads,
} from "../../shared/leads/sourcing/upsert.ts";
import { PermanentTaskError } from "../../shared/queue/errors.ts";
import type { ScrapeLeadsPayload } from "../../shared/tasks/catalog.ts";
import type { LeadScorer } from "../../shared/scoring/champion.ts";
import { scoreLeadsById } from "../../shared/scoring/scores.ts";
import type { TaskContext } from "../runner.ts";

/** What scrape_leads needs besides the task context. */
export interface ScrapeLeadsServices {
  places: { apiKey: string | null; baseUrl: string; qps: number };
  /** The `places` breaker; provider calls go through its fetch. */
  placesBreaker?: Breaker;
  defaultPhoneRegion: string;
  /** Scores the imported leads, new and updated (shared/scoring/). @default none */
  scorer?: LeadScorer;
}

/** The task result. */
export interface ScrapeLeadsResult {
  run_id: string;
  inserted: number;
  updated: number;
  unchanged: number;
  rejected: number;
  rejections: LeadRejection[];
}

/** Builds the handler. */
export function scrapeLeadsHandler(s: ScrapeLeadsServices) {
  return async function scrapeLeads(
    p: z.output<typeof ScrapeLeadsPayload>,
    ctx: TaskContext,
  ): Promise<ScrapeLeadsResult> {
    const sql = ctx.deps.sql;
    const run = await startScrapeRun(sql, {
      taskId: ctx.taskId,
      provider: p.provider,
      query: p.provider === "places" ? p.query : (p.filename ?? null),
      location: p.provider === "places" ? (p.location ?? null) : null,
    });
    try {
      const { records, rejected } = p.provider === "file"
        ? await parseFile(p, s.defaultPhoneRegion)
        : await search(p, s, ctx.signal);
      const counts = await upsertLeads(sql, records);
      if (counts.insertedIds.length > 0) {
        await recordLeadEvents(
          sql,
          counts.insertedIds.map((id) => ({
            lead_id: id,
            event_type: "lead_created",
            event_data: { scrape_run_id: run.id, provider: p.provider },
            source: `worker:scrape_leads:${ctx.taskId}`,
          })),
        );
      }
      // New leads and leads whose imported values changed, right after the
      // upsert (its chunks commit one by one, outside any transaction here).
      // A crash in between leaves those scores to the next activation's
      // rescoring; a rerun of the import finds the rows unchanged.
      const scorer = s.scorer;
      const written = [...counts.insertedIds, ...counts.updatedIds];
      if (scorer && written.length > 0) {
        const at = ctx.deps.now();
        await scoreLeadsById(sql, written, (lead) => scorer.score(lead, at));
      }
      await finishScrapeRun(sql, run.id, {
        status: "succeeded",
        inserted: counts.inserted,
        updated: counts.updated,
        rejected: rejected.length,
        rejections: rejected,
      });
      return {
        run_id: run.id,
        inserted: counts.inserted,
        updated: counts.updated,
        unchanged: counts.unchanged,
        rejected: rejected.length,
        rejections: rejected.slice(0, 100),
      };
    } catch (err) {
      await finishScrapeRun(sql, run.id, {
        status: "failed",
        inserted: 0,
        updated: 0,
        rejected: 0,
        rejections: [],
        error: (err as Error).message?.slice(0, 2000) ?? String(err),
      }).catch((e) => ctx.log.warn("recording the failed scrape run failed", { err: e }));
      throw err;
    }
  };
}

async function parseFile(
  p: Extract<z.output<typeof ScrapeLeadsPayload>, { provider: "file" }>,
  defaultRegion: string,
) {
  const options = { source: `import:${p.format}`, defaultRegion };
  try {
    return p.format === "csv"
      ? await parseLeadCsv(p.content, options)
      : await parseLeadJson(p.content, options);
  } catch (err) {
    // The file itself is unusable: retrying cannot fix it.
    if (err instanceof LeadImportError) {
      throw new PermanentTaskError(err.message, { cause: err });
    }
    throw err;
  }
}

async function search(
  p: Extract<z.output<typeof ScrapeLeadsPayload>, { provider: "places" }>,
  s: ScrapeLeadsServices,
  signal: AbortSignal,
) {
  if (!s.places.apiKey) {
    throw new PermanentTaskError("The places provider is not configured (set PLACES_API_KEY)");
  }
  const breaker = s.placesBreaker;
  const client = createPlacesClient({
    apiKey: s.places.apiKey,
    baseUrl: s.places.baseUrl,
    qps: s.places.qps,
    ...(breaker ? { fetch: (input, init) => breaker.fetch(input, init) } : {}),
  });
  const query = p.location ? `${p.query} in ${p.location}` : p.query;
  const { leads } = await client.searchText(query, { maxPages: p.max_pages, signal });
  return await toLeadRecords(leads, { source: "places", defaultRegion: s.defaultPhoneRegion });
}
