/**
 * The emails sent (or being sent) to leads, read from the send ledger
 * (shared/leads/sent_emails.ts):
 *
 * - `GET /v1/outreach/emails` — every lead's, filtered by `lead_id`,
 *   `status`, `template` and a creation range;
 * - `GET /v1/leads/{id}/emails` — one lead's (404 for an unknown lead);
 * - `GET /v1/outreach/emails/{id}` — one ledger row.
 *
 * Lists answer the list envelope, newest first, in keyset pages
 * (edge/routes/list_page.ts). Who: the control API's readers (services
 * sa:minerva and sa:api-gateway, users with role admin, operator or viewer),
 * as for the leads these emails went to.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import { AppError } from "../../shared/errors.ts";
import { LeadNotFoundError } from "../../shared/leads/errors.ts";
import {
  getSentEmail,
  listSentEmails,
  SENT_EMAIL_STATUSES,
  type SentEmailStatus,
} from "../../shared/leads/sent_emails.ts";
import type { AppEnv } from "../app_env.ts";
import { RequestValidationError, validationHook } from "../validation.ts";
import {
  decodePageCursor,
  encodePageCursor,
  MICROS_TIMESTAMP,
  pageQuery,
  pageSchema,
} from "./list_page.ts";
import { orDatabaseUnavailable } from "./database_failure.ts";
import { problemResponses, ProblemSchema } from "./schemas.ts";

const WHO =
  "Who: services sa:minerva and sa:api-gateway, users with role admin, operator or viewer.";

const SentEmailSchema = z.object({
  id: z.uuid().openapi({ description: "The ledger row; also the provider idempotency key" }),
  lead_id: z.uuid(),
  to: z.string().openapi({ description: "Recipient (lower case)" }),
  template: z.string(),
  subject: z.string(),
  status: z.enum(SENT_EMAIL_STATUSES).openapi({
    description:
      "`pending`/`sending`: in flight (a send claims the row before calling the provider); `sent`; `failed`",
  }),
  provider: z.string().openapi({ example: "file" }),
  message_id: z.string().openapi({ description: "The Message-ID header" }),
  provider_response: z.string().nullable(),
  task_id: z.string().nullable().openapi({ description: "The send_email task" }),
  attempts: z.number().int(),
  send_day: z.string().openapi({
    description: "The once-per-day rule's UTC day (YYYY-MM-DD)",
    example: "2026-03-03",
  }),
  created_at: z.string(),
  sent_at: z.string().nullable(),
}).openapi("SentEmail");

const SentEmailListSchema = pageSchema(SentEmailSchema, "SentEmailList");

const statusPattern = `(${SENT_EMAIL_STATUSES.join("|")})`;
const instant = (description: string) =>
  z.iso.datetime({ offset: true }).optional().openapi({
    description: `${description}; ISO 8601 with an offset`,
    example: "2026-03-01T00:00:00Z",
  });

const filters = {
  status: z.string().regex(
    new RegExp(`^${statusPattern}(,${statusPattern})*$`),
    `one or more of ${SENT_EMAIL_STATUSES.join(", ")}, comma-separated`,
  ).optional().openapi({ example: "sent,failed" }),
  template: z.string().min(1).max(64).optional().openapi({ example: "intro" }),
  created_after: instant("Created at or after this instant (inclusive)"),
  created_before: instant("Created before this instant (exclusive)"),
  ...pageQuery({ defaultLimit: 50, maxLimit: 200 }),
};
const ListQuery = z.object({
  lead_id: z.uuid().optional().openapi({ description: "Only this lead's emails" }),
  ...filters,
});
const LeadListQuery = z.object(filters);
const Cursor = z.tuple([MICROS_TIMESTAMP, z.uuid()]);

const listRoute = createRoute({
  method: "get",
  path: "/v1/outreach/emails",
  operationId: "listSentEmails",
  tags: ["outreach"],
  summary: "Emails sent to leads, newest first (filters: lead, status, template, creation range)",
  description:
    `${WHO} One row per send-ledger entry: at most one per recipient, template, lead and UTC day.`,
  security: [{ bearer: [] }],
  request: { query: ListQuery },
  responses: {
    200: {
      description: "A page of emails",
      content: { "application/json": { schema: SentEmailListSchema } },
    },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

const leadListRoute = createRoute({
  method: "get",
  path: "/v1/leads/{id}/emails",
  operationId: "listLeadEmails",
  tags: ["outreach"],
  summary: "The emails sent to one lead, newest first",
  description: WHO,
  security: [{ bearer: [] }],
  request: { params: z.object({ id: z.uuid() }), query: LeadListQuery },
  responses: {
    200: {
      description: "A page of the lead's emails",
      content: { "application/json": { schema: SentEmailListSchema } },
    },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/v1/outreach/emails/{id}",
  operationId: "getSentEmail",
  tags: ["outreach"],
  summary: "One sent email (a send-ledger row)",
  description: WHO,
  security: [{ bearer: [] }],
  request: { params: z.object({ id: z.uuid() }) },
  responses: {
    200: { description: "The email", content: { "application/json": { schema: SentEmailSchema } } },
    ...problemResponses(400, 401, 403, 429, 503),
    404: {
      description: "`email-not-found`",
      content: { "application/problem+json": { schema: ProblemSchema } },
    },
  },
});

const STORE = "The send ledger did not answer";

type Query = z.output<typeof LeadListQuery> & { lead_id?: string | undefined };

function filterOf(q: Query) {
  const from = q.created_after === undefined ? undefined : new Date(q.created_after);
  const to = q.created_before === undefined ? undefined : new Date(q.created_before);
  if (from && to && from > to) {
    throw new RequestValidationError([{
      field: "query.created_before",
      message: "must not be before created_after",
    }]);
  }
  return {
    ...(q.lead_id === undefined ? {} : { leadId: q.lead_id }),
    ...(q.status === undefined ? {} : { statuses: q.status.split(",") as SentEmailStatus[] }),
    ...(q.template === undefined ? {} : { template: q.template }),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    ...(q.cursor === undefined ? {} : { after: decodePageCursor(q.cursor, Cursor) }),
    limit: q.limit,
  };
}

/** Routes of the sent-email listings. */
export function sentEmailRoutes(deps: Pick<Deps, "sql">): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(listRoute, async (c) => {
    const filter = filterOf(c.req.valid("query"));
    const page = await orDatabaseUnavailable(c, STORE, () => listSentEmails(deps.sql, filter));
    const next_cursor = page.next ? encodePageCursor(page.next) : null;
    return c.json({ data: page.rows, next_cursor }, 200);
  });

  app.openapi(leadListRoute, async (c) => {
    const { id } = c.req.valid("param");
    const filter = filterOf({ ...c.req.valid("query"), lead_id: id });
    const page = await orDatabaseUnavailable(c, STORE, async () => {
      const { rows } = await deps.sql.query("SELECT 1 FROM businesses WHERE id = $1", [id]);
      if (rows.length === 0) throw new LeadNotFoundError(id);
      return await listSentEmails(deps.sql, filter);
    });
    const next_cursor = page.next ? encodePageCursor(page.next) : null;
    return c.json({ data: page.rows, next_cursor }, 200);
  });

  app.openapi(getRoute, async (c) => {
    const { id } = c.req.valid("param");
    const email = await orDatabaseUnavailable(c, STORE, () => getSentEmail(deps.sql, id));
    if (email === null) {
      throw new AppError("email-not-found", 404, "No such email", {
        details: { detail: `No sent email has id ${id}`, email_id: id },
      });
    }
    return c.json(email, 200);
  });

  return app;
}
