/**
 * Actions on one lead, as POSTs (services such as Minerva may GET and POST
 * the control API, never PATCH; see edge/auth/policy.ts):
 *
 * - `POST /v1/leads/{id}/transitions` `{to, reason?}`: a status change
 *   through the outreach state machine (shared/leads/status.ts), the same
 *   rules as `PATCH outreach_status`; the reason is stored on the
 *   `status_changed` event. Answers `{from, to, changed, lead}`.
 * - `POST /v1/leads/{id}/notes` `{text}`: a `note_added` event.
 * - `POST /v1/admin/leads/{id}/reopen` `{reason, to?}` (admins): moves a
 *   `not_interested` lead back into the pipeline (shared/leads/actions.ts).
 *
 * None of them is queued while the database breaker refuses (503 with
 * Retry-After): each is decided against the lead's state at the time.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import { addLeadNote, reopenLead } from "../../shared/leads/actions.ts";
import { transitionLead } from "../../shared/leads/repository.ts";
import { OUTREACH_STATUSES, PIPELINE } from "../../shared/leads/status.ts";
import type { LeadScorer } from "../../shared/scoring/champion.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import type { Guard } from "./lead_guard.ts";
import { runWrite } from "./lead_guard.ts";
import { LeadEventSchema, LeadSchema } from "./lead_schemas.ts";
import { eventView, leadView } from "./lead_view.ts";
import { problemResponses, ProblemSchema } from "./schemas.ts";

const text = (max: number) =>
  z.string().trim().min(1).max(max).refine(
    (s) => !s.includes("\0"),
    "must not contain NUL characters",
  );

const IdParam = z.object({ id: z.uuid() });

const TransitionBody = z.object({
  to: z.enum(OUTREACH_STATUSES).openapi({
    description:
      "new → contacted → responded → meeting_scheduled → client, one step at a time; any → not_interested",
    example: "responded",
  }),
  reason: text(1000).optional().openapi({
    description: "Why; stored on the status_changed event",
    example: "Replied asking for prices",
  }),
}).strict().openapi("TransitionRequest");

const TransitionResult = z.object({
  from: z.enum(OUTREACH_STATUSES),
  to: z.enum(OUTREACH_STATUSES),
  changed: z.boolean().openapi({ description: "false when the lead already had this status" }),
  lead: LeadSchema,
}).openapi("TransitionResult");

const NoteBody = z.object({
  text: text(10_000).openapi({ example: "Owner prefers calls after 3 pm" }),
}).strict().openapi("NoteRequest");

const ReopenBody = z.object({
  reason: text(1000).openapi({ example: "Owner called back, wants a quote after all" }),
  to: z.enum(PIPELINE as [string, ...string[]]).optional().openapi({
    description: "Default: the status the lead had before not_interested (else new)",
  }),
}).strict().openapi("ReopenRequest");

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ProblemSchema } },
});

const transitionRoute = createRoute({
  method: "post",
  path: "/v1/leads/{id}/transitions",
  operationId: "transitionLead",
  tags: ["leads"],
  summary: "Move a lead to another outreach status (the state machine decides)",
  description:
    "Who: services sa:minerva and sa:api-gateway, users with role admin or operator. Moving to the current status is a no-op (`changed: false`).",
  security: [{ bearer: [] }],
  request: {
    params: IdParam,
    body: { required: true, content: { "application/json": { schema: TransitionBody } } },
  },
  responses: {
    200: {
      description: "The status after the call",
      content: { "application/json": { schema: TransitionResult } },
    },
    ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429, 503),
    409: problem("`illegal-transition` (lists the `allowed` next states)"),
  },
});

const noteRoute = createRoute({
  method: "post",
  path: "/v1/leads/{id}/notes",
  operationId: "addLeadNote",
  tags: ["leads"],
  summary: "Add a note to a lead (a note_added event)",
  description: "Who: services sa:minerva and sa:api-gateway, users with role admin or operator.",
  security: [{ bearer: [] }],
  request: {
    params: IdParam,
    body: { required: true, content: { "application/json": { schema: NoteBody } } },
  },
  responses: {
    201: {
      description: "The recorded event",
      content: { "application/json": { schema: LeadEventSchema } },
    },
    ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
  },
});

const reopenRoute = createRoute({
  method: "post",
  path: "/v1/admin/leads/{id}/reopen",
  operationId: "reopenLead",
  tags: ["leads"],
  summary: "Reopen a not_interested lead (admins)",
  description:
    "Who: users with role admin. Records `lead_reopened` {from, to, reason}; the lead can be emailed and booked again.",
  security: [{ bearer: [] }],
  request: {
    params: IdParam,
    body: { required: true, content: { "application/json": { schema: ReopenBody } } },
  },
  responses: {
    200: { description: "The lead", content: { "application/json": { schema: LeadSchema } } },
    ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429, 503),
    409: problem("`lead-not-closed`: the lead is not not_interested"),
  },
});

/**
 * Routes of the lead actions; `guard` as for {@linkcode leadRoutes}. With a
 * `scorer`, a transition or a reopen rescores the lead in its transaction.
 */
export function leadActionRoutes(
  deps: Pick<Deps, "sql" | "now">,
  guard: Guard | null,
  options: { scorer?: LeadScorer } = {},
): OpenAPIHono<AppEnv> {
  const scoring = () => options.scorer ? { scorer: options.scorer, now: deps.now() } : {};
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const actor = (sub: string) => `api:${sub}`;

  app.openapi(transitionRoute, async (c) => {
    const { to, reason } = c.req.valid("json");
    const id = c.req.valid("param").id;
    const source = actor(c.get("principal").sub);
    const out = await runWrite(
      c,
      { guard, payload: null },
      () =>
        transitionLead(deps.sql, id, to, source, {
          data: reason === undefined ? {} : { reason },
          ...scoring(),
        }),
    );
    if (out instanceof Response) return out as never;
    return c.json({ from: out.from, to, changed: out.changed, lead: leadView(out.lead) }, 200);
  });

  app.openapi(noteRoute, async (c) => {
    const { text } = c.req.valid("json");
    const id = c.req.valid("param").id;
    const source = actor(c.get("principal").sub);
    const event = await runWrite(
      c,
      { guard, payload: null },
      () => addLeadNote(deps.sql, id, text, source),
    );
    if (event instanceof Response) return event as never;
    return c.json(eventView(event), 201);
  });

  app.openapi(reopenRoute, async (c) => {
    const { reason, to } = c.req.valid("json");
    const id = c.req.valid("param").id;
    const source = actor(c.get("principal").sub);
    const lead = await runWrite(c, { guard, payload: null }, () =>
      reopenLead(deps.sql, id, {
        reason,
        source,
        ...scoring(),
        ...(to === undefined ? {} : { to: to as (typeof PIPELINE)[number] }),
      }));
    if (lead instanceof Response) return lead as never;
    return c.json(leadView(lead), 200);
  });

  return app;
}
