/**
 * `GET /v1/leads/{id}/history`: every change to a lead, with the old and new
 * value of each field, who made it and when (shared/leads/history.ts), in
 * the list envelope with keyset cursors (edge/routes/list_page.ts). Readable
 * by whoever may read the lead (the `control` group, edge/auth/policy.ts).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import { HISTORY_ACTIONS, type HistoryEntry, listLeadHistory } from "../../shared/leads/history.ts";
import { canonicalJson } from "../../shared/queue/canonical_json.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { type Guard, runRead } from "./lead_guard.ts";
import {
  decodePageCursor,
  encodePageCursor,
  MICROS_TIMESTAMP,
  pageQuery,
  pageSchema,
} from "./list_page.ts";
import { problemResponses } from "./schemas.ts";

/** Fields whose history values are timestamps, rendered like every other time of the API. */
const TIMESTAMP_FIELDS = new Set(["last_contacted"]);

/** A cursor: the order it was made for (another order's is refused), the last entry's time and id. */
const historyCursor = (order: "asc" | "desc") =>
  z.tuple([z.literal(order), MICROS_TIMESTAMP, z.string().regex(/^\d{1,19}$/)]);

const FieldChangeSchema = z.object({
  old: z.unknown().openapi({ description: "Value before (null for a created lead)" }),
  new: z.unknown().openapi({ description: "Value after" }),
}).openapi("FieldChange");

const HistoryEntrySchema = z.object({
  id: z.string().openapi({ description: "Entry id (increasing)", example: "1042" }),
  lead_id: z.uuid(),
  at: z.string().openapi({
    description: "When, ISO 8601 UTC with milliseconds",
    example: "2026-03-02T09:15:00.123Z",
  }),
  source: z.string().openapi({
    description:
      "Who: `api:<principal sub>` (a request), `worker:<task>…` (a task), `platform` (any other platform write)",
    example: "api:sa:minerva",
  }),
  action: z.enum(HISTORY_ACTIONS).openapi({
    description:
      "created, updated (fields edited), status_changed, scored, reopened (admin), note_added (`changes.note.new` is the note)",
  }),
  changes: z.record(z.string(), FieldChangeSchema).openapi({
    description: "Per field: `{old, new}`; a created lead lists its non-null initial values",
    example: { outreach_status: { old: "contacted", new: "responded" } },
  }),
}).openapi("LeadHistoryEntry");

const historyRoute = createRoute({
  method: "get",
  path: "/v1/leads/{id}/history",
  operationId: "getLeadHistory",
  tags: ["leads"],
  summary: "Every change to a lead: old/new values per field, who, when",
  description:
    "Who: like `GET /v1/leads/{id}` (services sa:minerva and sa:api-gateway, users with role admin, operator or viewer). Newest first by default.",
  security: [{ bearer: [] }],
  request: {
    params: z.object({ id: z.uuid() }),
    query: z.object({
      order: z.enum(["asc", "desc"]).default("desc").openapi({
        description: "`desc` (default): newest first; `asc`: oldest first",
      }),
      ...pageQuery({ defaultLimit: 50, maxLimit: 200 }),
    }),
  },
  responses: {
    200: {
      description: "One page of the lead's history",
      content: {
        "application/json": { schema: pageSchema(HistoryEntrySchema, "LeadHistoryPage") },
      },
    },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});

/** The public JSON of a history entry: times as ISO 8601 UTC with milliseconds. */
export function historyView(entry: HistoryEntry) {
  const changes: Record<string, { old: unknown; new: unknown }> = {};
  for (const [field, change] of Object.entries(entry.changes)) {
    changes[field] = TIMESTAMP_FIELDS.has(field)
      ? { old: isoOrNull(change.old), new: isoOrNull(change.new) }
      : change;
  }
  return { ...entry, at: entry.at.toISOString(), changes };
}

function isoOrNull(value: unknown): unknown {
  if (typeof value !== "string") return value;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : value;
}

/** The history route; `guard` as for leadRoutes (edge/routes/leads.ts). */
export function leadHistoryRoutes(
  deps: Pick<Deps, "sql">,
  guard: Guard | null,
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.openapi(historyRoute, async (c) => {
    const id = c.req.valid("param").id;
    const q = c.req.valid("query");
    // Checked before the query: a bad cursor is the caller's, whatever the database's state.
    const after = q.cursor === undefined
      ? undefined
      : decodePageCursor(q.cursor, historyCursor(q.order));
    const res = await runRead(c, { guard, identity: [c.req.path, canonicalJson(q)] }, async () => {
      const page = await listLeadHistory(deps.sql, id, {
        order: q.order,
        limit: q.limit,
        ...(after ? { after: { at: after[1], id: after[2] } } : {}),
      });
      return {
        data: page.data.map(historyView),
        next_cursor: page.next ? encodePageCursor([q.order, page.next.at, page.next.id]) : null,
      };
    });
    return res as never;
  });
  return app;
}
