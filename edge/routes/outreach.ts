/**
 * Outreach: `POST /v1/outreach/emails` queues one templated email to a lead
 * (a `send_email` task, run by workers/tasks/send_email.ts).
 *
 * Everything the worker would refuse for good is refused here first, before
 * anything is queued: an unknown lead (404), an unknown template or missing
 * or invalid variables (422, found by rendering the template exactly as the
 * worker will, with a stand-in unsubscribe link), a lead without an
 * address when no `to` is given (422), a lead that is `not_interested` (409
 * `lead-not-interested`) and a recipient on the suppression list (422
 * `recipient-suppressed`, recorded as an `email_suppressed` lead event). The
 * worker checks the last two again when it runs.
 *
 * Idempotency: the task's queue key is the send ledger's once-per-day rule,
 * see {@linkcode outreachEmailKey}; an `Idempotency-Key` header additionally
 * replays the HTTP response (gateway middleware).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import { sha256Hex } from "../../shared/hash.ts";
import { AppError } from "../../shared/errors.ts";
import {
  isTemplateName,
  renderTemplate,
  TEMPLATE_NAMES,
  TEMPLATES,
  UnknownTemplateError,
} from "../../shared/email/templates.ts";
import { VARIABLE_EXAMPLES } from "../../shared/email/template_examples.ts";
import { assertContactable } from "../../shared/leads/actions.ts";
import { recordLeadEvent } from "../../shared/leads/events.ts";
import type { Queryable } from "../../shared/leads/transaction.ts";
import { getLead } from "../../shared/leads/repository.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import { SendEmailPayload } from "../../shared/tasks/catalog.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { orDatabaseUnavailable } from "./database_failure.ts";
import { enqueueTask, queuedBody, queuedResponse } from "./queued.ts";
import { problemResponses, ProblemSchema } from "./schemas.ts";

const templateDoc = TEMPLATE_NAMES.map((name) => {
  const spec = TEMPLATES[name];
  return `\`${name}\`: ${spec.description}; requires ${
    Object.keys(spec.required).join(", ")
  }; optional ${Object.keys(spec.optional).join(", ")}`;
}).join(". ");

// The same constraints as SendEmailPayload (shared/tasks/catalog.ts), which
// the queue checks again at enqueue. Declared here rather than reusing the
// catalog's field schemas: zod 4 adds `.openapi()` per instance, so schemas
// built before @hono/zod-openapi loaded may lack it.
const SendEmailBody = z.object({
  lead_id: z.uuid(),
  template: z.string().min(1).max(64).openapi({
    description: `One of ${TEMPLATE_NAMES.join(", ")}. ${templateDoc}.`,
    example: "intro",
  }),
  variables: z.record(z.string(), z.union([z.string().max(2000), z.number()])).default({})
    .openapi({
      description:
        "Template variables (text or numbers). `business_name` and `city` default to the lead's name and city.",
      // Values from the template previews (shared/email/template_examples.ts), so the
      // documented request renders as a person would write it.
      example: {
        sender_name: VARIABLE_EXAMPLES.sender_name!,
        booking_url: VARIABLE_EXAMPLES.booking_url!,
      },
    }),
  to: z.email().max(254).optional().openapi({
    description: "Recipient; default: the lead's email",
  }),
}).strict().openapi("SendOutreachEmailRequest");

const OptionalKey = z.object({
  "idempotency-key": z.string().min(1).max(255).optional().openapi({
    description: "Optional: replays this response to a retry (Stripe semantics)",
  }),
});

const problems = (status: number, description: string) => ({
  [status]: { description, content: { "application/problem+json": { schema: ProblemSchema } } },
});

const sendRoute = createRoute({
  method: "post",
  path: "/v1/outreach/emails",
  operationId: "sendOutreachEmail",
  tags: ["outreach"],
  summary:
    "Queue one templated email to a lead (at most one per recipient, template, lead and day)",
  description:
    "Who: services sa:minerva and sa:api-gateway, users with role admin or operator. The templates, their variables and a rendered preview: `GET /v1/outreach/templates`; what was sent: `GET /v1/outreach/emails`. A recipient on the suppression list (`/v1/admin/suppressions`) is refused with 422 `recipient-suppressed`.",
  security: [{ bearer: [] }],
  request: {
    headers: OptionalKey,
    body: { required: true, content: { "application/json": { schema: SendEmailBody } } },
  },
  responses: {
    ...queuedResponse(
      "Queued as a `send_email` task; the same email to the same lead on the same UTC day returns the first task",
    ),
    ...problemResponses(400, 401, 403, 413, 415, 429, 503),
    ...problems(404, "`lead-not-found`"),
    ...problems(
      409,
      "`lead-not-interested` (an admin can reopen the lead), or this Idempotency-Key is in progress",
    ),
    ...problems(
      422,
      "`unknown-template`, `missing-template-variables`, `invalid-template-variables`, `lead-has-no-email`, `recipient-suppressed`, or an Idempotency-Key reused with another request",
    ),
  },
});

/**
 * Stand-in unsubscribe link for validation renders: the worker signs the real
 * one per recipient; rendering only needs a well-formed http(s) URL.
 */
const VALIDATION_UNSUBSCRIBE_URL = "https://unsubscribe.invalid/v1/unsubscribe?token=validation";

/**
 * The queue key of an outreach email: the send ledger's once-per-day rule
 * (recipient, template, lead, UTC day), so repeating a request that day
 * returns the first task instead of queueing another. Variables are not part
 * of it, as they are not part of the ledger's rule: the first request of the
 * day wins. The queue remembers a key for QUEUE_IDEMPOTENCY_WINDOW_MS (1 h by
 * default); a repeat after that queues a task that the worker's ledger
 * answers with `already_sent` without sending. The address is hashed because
 * keys are at most 200 printable ASCII characters.
 */
export async function outreachEmailKey(
  email: { leadId: string; template: string; to: string; now: number },
): Promise<string> {
  const day = new Date(email.now).toISOString().slice(0, 10);
  const to = (await sha256Hex(email.to.trim().toLowerCase())).slice(0, 32);
  return `send_email:${email.leadId.toLowerCase()}:${email.template}:${to}:${day}`;
}

/** True when `address` is on the suppression list (`email_suppressions`). */
async function isSuppressed(sql: Queryable, address: string): Promise<boolean> {
  const { rows } = await sql.query<{ found: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM email_suppressions WHERE address = lower($1)) AS found",
    [address],
  );
  return rows[0]?.found === true;
}

/** Routes of `/v1/outreach`. */
export function outreachRoutes(
  deps: Pick<Deps, "sql" | "now">,
  queue: TaskQueue,
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(sendRoute, async (c) => {
    const body = c.req.valid("json");
    if (!isTemplateName(body.template)) throw new UnknownTemplateError(body.template);
    const lead = await orDatabaseUnavailable(
      c,
      "The lead store did not answer",
      () => getLead(deps.sql, body.lead_id),
    );
    assertContactable(lead, "emailed");
    const to = (body.to ?? lead.email ?? "").trim();
    if (!SendEmailPayload.shape.to.safeParse(to).success) {
      throw new AppError("lead-has-no-email", 422, "No recipient address", {
        details: {
          detail: lead.email
            ? `The lead's email ${JSON.stringify(lead.email)} is not a usable address; send "to"`
            : `Lead ${lead.id} has no email address; send "to"`,
          lead_id: lead.id,
        },
      });
    }
    if (
      await orDatabaseUnavailable(
        c,
        "The lead store did not answer",
        () => isSuppressed(deps.sql, to),
      )
    ) {
      await orDatabaseUnavailable(
        c,
        "The lead store did not answer",
        () =>
          recordLeadEvent(deps.sql, {
            lead_id: lead.id,
            event_type: "email_suppressed",
            event_data: { template: body.template, refused_by: "api" },
            source: `api:${c.get("principal").sub}`,
          }),
      );
      throw new AppError("recipient-suppressed", 422, "The recipient unsubscribed", {
        details: {
          detail: `The recipient of lead ${lead.id} is on the suppression list: nothing was queued`,
          lead_id: lead.id,
        },
      });
    }
    // The worker merges the same defaults before rendering (workers/tasks/send_email.ts).
    renderTemplate(body.template, {
      business_name: lead.name,
      ...(lead.city ? { city: lead.city } : {}),
      ...body.variables,
    }, { unsubscribeUrl: VALIDATION_UNSUBSCRIBE_URL });

    const result = await enqueueTask(queue, {
      type: "send_email",
      principal: c.get("principal").sub,
      payload: {
        lead_id: lead.id,
        template: body.template,
        variables: body.variables,
        ...(body.to === undefined ? {} : { to: body.to }),
      },
      options: {
        idempotencyKey: await outreachEmailKey({
          leadId: lead.id,
          template: body.template,
          to,
          now: deps.now(),
        }),
      },
    });
    return c.json(queuedBody(c, result), 202);
  });

  return app;
}
