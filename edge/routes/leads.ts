/**
 * Leads: `GET /v1/leads` (filters, keyset pages), `POST /v1/leads`,
 * `GET /v1/leads/:id` (with its recent events) and `PATCH /v1/leads/:id`
 * (status changes go through the outreach state machine); the POST actions
 * on one lead (transitions, notes, admin reopen) are in edge/routes/lead_actions.ts,
 * its history in edge/routes/lead_history.ts, its erasure (`DELETE`, admins) in
 * edge/routes/lead_erasure.ts.
 *
 * Lead JSON uses the column names of `businesses`; timestamps are ISO 8601.
 * Events are recorded with source `api:<principal>`. The schemas and route
 * definitions are in edge/routes/lead_schemas.ts.
 *
 * With a breaker registry every query goes through the `database` breaker
 * (edge/routes/lead_guard.ts): reads fall back to their last good answer,
 * refused writes are queued (202) as `apply_lead_write` tasks, and a failing
 * query is 503 `dependency-unavailable`. Read answers do not depend on the
 * caller, so the cache identity is the path and the validated query.
 *
 * @module
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { BreakerRegistry } from "../../shared/breakers/registry.ts";
import type { Deps } from "../../shared/deps.ts";
import { decodeCursor } from "../../shared/leads/cursor.ts";
import { InvalidCursorError } from "../../shared/leads/errors.ts";
import type { LeadPatch } from "../../shared/leads/lead.ts";
import { createLead, getLead, listLeads, updateLead } from "../../shared/leads/repository.ts";
import type { OutreachStatus } from "../../shared/leads/status.ts";
import { canonicalJson } from "../../shared/queue/canonical_json.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { LeadScorer } from "../../shared/scoring/champion.ts";
import { leadScoreDetails } from "../../shared/scoring/scores.ts";
import type { AppEnv } from "../app_env.ts";
import type { ResponseCache } from "../degraded/response_cache.ts";
import { RequestValidationError, validationHook } from "../validation.ts";
import { leadActionRoutes } from "./lead_actions.ts";
import { leadErasureRoutes } from "./lead_erasure.ts";
import { leadHistoryRoutes } from "./lead_history.ts";
import { eventView, leadView } from "./lead_view.ts";
import { type Guard, runRead, runWrite } from "./lead_guard.ts";
import { createLeadRoute, getLeadRoute, listRoute, patchLeadRoute } from "./lead_schemas.ts";
import { parseIdempotencyKey } from "../idempotency/request.ts";
import { type WriteKey, writeKey } from "../../shared/leads/idempotent_write.ts";
import type { Context } from "hono";
import type { LoopLag } from "../../shared/loop_lag.ts";

function toDate(s: string | undefined): Date | undefined;
function toDate(s: string | null | undefined): Date | null | undefined;
function toDate(s: string | null | undefined) {
  return s === undefined ? undefined : s === null ? null : new Date(s);
}

/**
 * The database side of the request's Idempotency-Key (the middleware guards
 * it in Redis; shared/leads/idempotent_write.ts says why that is not enough),
 * scoped like the middleware's: principal, method and route. A malformed
 * key never gets here (the middleware answers 400).
 */
async function requestWriteKey(
  c: Context<AppEnv>,
  route: string,
  write: unknown,
): Promise<WriteKey | undefined> {
  const header = c.req.header("Idempotency-Key");
  const key = header === undefined ? null : parseIdempotencyKey(header);
  if (key === null) return undefined;
  return await writeKey(`${c.get("principal").sub} ${c.req.method} ${route}`, key, write);
}

/** Collaborators of {@linkcode leadRoutes}. */
export interface LeadRouteOptions {
  /**
   * Guards every query with its `database` breaker; needs `queue` and
   * `cache`. @default none: queries run unguarded
   */
  breakers?: BreakerRegistry;
  /** Where refused writes are queued. */
  queue?: TaskQueue;
  /** Last good answers of the reads. */
  cache?: ResponseCache;
  /**
   * Scores leads as they are written: created, patched, transitioned,
   * reopened (shared/scoring/, docs/lead-scoring.md §Scoring). @default none
   */
  scorer?: LeadScorer;
  /**
   * Deadline of a write's transaction, ms (`DB_WRITE_TIMEOUT_MS`): a write on
   * a connection that stopped answering fails as a database failure instead
   * of hanging with its Idempotency-Key locked. @default none
   */
  writeTimeoutMs?: number;
  /**
   * This process's event-loop stall (the breaker registry's `loopLag`): the
   * deadline counts net of it, so a starved edge does not fail a write that
   * Postgres was answering. @default none (wall time)
   */
  loopLag?: LoopLag;
}

/** Routes of `/v1/leads`. */
export function leadRoutes(
  deps: Pick<Deps, "sql" | "now">,
  options: LeadRouteOptions = {},
): OpenAPIHono<AppEnv> {
  const { breakers, queue, cache } = options;
  let guard: Guard | null = null;
  if (breakers) {
    if (!queue || !cache) {
      throw new TypeError("leadRoutes: a breaker registry needs a queue and a response cache");
    }
    // Throws now, at startup, when no database policy is configured.
    guard = { breaker: breakers.get("database"), queue, cache, now: deps.now };
  }
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const actor = (sub: string) => `api:${sub}`;

  app.route(
    "/",
    leadActionRoutes(deps, guard, options.scorer ? { scorer: options.scorer } : {}),
  );
  app.route("/", leadHistoryRoutes(deps, guard));
  app.route("/", leadErasureRoutes(deps, guard));

  app.openapi(listRoute, async (c) => {
    const q = c.req.valid("query");
    if (q.cursor !== undefined) {
      // Checked before the query: a bad cursor is the caller's, whatever the database's state.
      try {
        decodeCursor(q.cursor, { sort: q.sort ?? "created_at", order: q.order ?? "desc" });
      } catch (err) {
        if (!(err instanceof InvalidCursorError)) throw err;
        throw new RequestValidationError([{ field: "query.cursor", message: err.message }]);
      }
    }
    const identity = [c.req.path, canonicalJson(q)];
    const res = await runRead(c, { guard, identity }, async () => {
      const page = await listLeads(deps.sql, {
        status: q.status?.split(",") as OutreachStatus[] | undefined,
        min_score: q.min_score,
        city: q.city,
        category: q.category,
        source: q.source,
        has_website: q.has_website,
        has_email: q.has_email,
        created_after: toDate(q.created_after),
        created_before: toDate(q.created_before),
        updated_after: toDate(q.updated_after),
        updated_before: toDate(q.updated_before),
        q: q.q,
        sort: q.sort,
        order: q.order,
        cursor: q.cursor,
        limit: q.limit,
      });
      return { data: page.data.map(leadView), next_cursor: page.next_cursor };
    });
    // Built by c.json/c.body (or a fallback) after validation; the route types only see c.json.
    return res as never;
  });

  app.openapi(createLeadRoute, async (c) => {
    const { last_contacted, ...body } = c.req.valid("json");
    const input = { ...body, source: body.source ?? "api" };
    const source = actor(c.get("principal").sub);
    const write = { op: "create" as const, input: { ...input, last_contacted }, source };
    const key = await requestWriteKey(c, "/v1/leads", write);
    const lead = await runWrite(
      c,
      { guard, payload: key === undefined ? write : { ...write, write_key: key } },
      () =>
        createLead(deps.sql, { ...input, last_contacted: toDate(last_contacted) }, source, {
          ...(options.scorer ? { scorer: options.scorer, now: deps.now() } : {}),
          writeKey: key,
          deadlineMs: options.writeTimeoutMs,
          ...(options.loopLag ? { lag: options.loopLag } : {}),
        }),
    );
    if (lead instanceof Response) return lead as never;
    c.header("Location", `/v1/leads/${lead.id}`);
    return c.json(leadView(lead), 201);
  });

  app.openapi(getLeadRoute, async (c) => {
    const id = c.req.valid("param").id;
    const res = await runRead(c, { guard, identity: [c.req.path, ""] }, async () => {
      // getLead first: it rejects an id that is not a uuid (404) before any other query.
      const { recent_events, ...lead } = await getLead(deps.sql, id);
      const score = await leadScoreDetails(deps.sql, id);
      return {
        ...leadView(lead),
        score_details: score,
        recent_events: recent_events.map(eventView),
      };
    });
    return res as never;
  });

  app.openapi(patchLeadRoute, async (c) => {
    const { last_contacted, ...body } = c.req.valid("json");
    const id = c.req.valid("param").id;
    const patch: LeadPatch = { ...body, last_contacted: toDate(last_contacted) };
    const source = actor(c.get("principal").sub);
    const write = {
      op: "update" as const,
      lead_id: id,
      patch: { ...body, last_contacted },
      source,
    };
    const key = await requestWriteKey(c, "/v1/leads/:id", write);
    const lead = await runWrite(
      c,
      { guard, payload: key === undefined ? write : { ...write, write_key: key } },
      () =>
        updateLead(deps.sql, id, patch, source, {
          ...(options.scorer ? { scorer: options.scorer, now: deps.now() } : {}),
          writeKey: key,
          deadlineMs: options.writeTimeoutMs,
          ...(options.loopLag ? { lag: options.loopLag } : {}),
        }),
    );
    if (lead instanceof Response) return lead as never;
    return c.json(leadView(lead), 200);
  });

  return app;
}
