/**
 * The email templates as data: `GET /v1/outreach/templates` lists every
 * template (name, purpose, variables with a description and an example) with
 * a preview rendered from the example values, and
 * `GET /v1/outreach/templates/{name}` answers one. Who: the control API's
 * readers (edge/auth/policy.ts: services sa:minerva and sa:api-gateway, users
 * with role admin, operator or viewer).
 *
 * The preview is exactly what send_email would send with those variables,
 * except for the unsubscribe link, which the worker signs per recipient (the
 * preview's token is `preview`, which the unsubscribe page refuses).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import { AppError } from "../../shared/errors.ts";
import { templateExample } from "../../shared/email/template_examples.ts";
import {
  isTemplateName,
  renderTemplate,
  TEMPLATE_NAMES,
  type TemplateName,
  TEMPLATES,
} from "../../shared/email/templates.ts";
import { unsubscribeUrl } from "../../shared/email/unsubscribe.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { pageSchema } from "./list_page.ts";
import { problemResponses, ProblemSchema } from "./schemas.ts";

const ValueSchema = z.union([z.string(), z.number()]);

const TemplateVariableSchema = z.object({
  name: z.string().openapi({ example: "sender_name" }),
  required: z.boolean(),
  description: z.string(),
  example: ValueSchema.openapi({ description: "The value the preview uses", example: "Maya" }),
}).openapi("TemplateVariable");

const TemplateSchema = z.object({
  name: z.enum(TEMPLATE_NAMES),
  description: z.string(),
  variables: z.array(TemplateVariableSchema).openapi({
    description: "Required ones first. `business_name` and `city` default to the lead's",
  }),
  preview: z.object({
    variables: z.record(z.string(), ValueSchema).openapi({
      description: "The example values rendered below",
    }),
    subject: z.string(),
    text: z.string(),
    html: z.string(),
  }).openapi({
    description:
      "The email rendered with the example values; the real unsubscribe link is signed per recipient",
  }),
}).openapi("EmailTemplate");

const TemplateListSchema = pageSchema(TemplateSchema, "EmailTemplateList", {
  total: "Number of templates",
});

const NameParam = z.object({
  name: z.string().min(1).max(64).openapi({ example: "intro" }),
});

const WHO =
  "Who: services sa:minerva and sa:api-gateway, users with role admin, operator or viewer.";

const listRoute = createRoute({
  method: "get",
  path: "/v1/outreach/templates",
  operationId: "listOutreachTemplates",
  tags: ["outreach"],
  summary: "Every email template: its variables and a preview rendered from example values",
  description: `${WHO} One page: \`next_cursor\` is always null.`,
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "The templates",
      content: { "application/json": { schema: TemplateListSchema } },
    },
    ...problemResponses(400, 401, 403, 429),
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/v1/outreach/templates/{name}",
  operationId: "getOutreachTemplate",
  tags: ["outreach"],
  summary: "One email template: its variables and a preview rendered from example values",
  description: WHO,
  security: [{ bearer: [] }],
  request: { params: NameParam },
  responses: {
    200: {
      description: "The template",
      content: { "application/json": { schema: TemplateSchema } },
    },
    ...problemResponses(400, 401, 403, 429),
    404: {
      description: "`template-not-found` (lists `known_templates`)",
      content: { "application/problem+json": { schema: ProblemSchema } },
    },
  },
});

/** A template as the API shows it, its preview rendered with `unsubscribe` as the link. */
export function templateView(name: TemplateName, unsubscribe: string) {
  const spec = TEMPLATES[name];
  const example = templateExample(name);
  const variables = [
    ...Object.entries(spec.required).map(([key, description]) => ({ key, description, req: true })),
    ...Object.entries(spec.optional).map(([key, description]) => ({
      key,
      description,
      req: false,
    })),
  ].map((v) => ({
    name: v.key,
    required: v.req,
    description: v.description,
    example: example[v.key]!,
  }));
  const rendered = renderTemplate(name, example, { unsubscribeUrl: unsubscribe });
  return {
    name,
    description: spec.description,
    variables,
    preview: { variables: example, ...rendered },
  };
}

/** Routes of `/v1/outreach/templates`. */
export function outreachTemplateRoutes(
  deps: Pick<Deps, "config">,
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const unsubscribe = unsubscribeUrl(`${deps.config.publicBaseUrl}/v1`, "preview");

  app.openapi(listRoute, (c) => {
    const data = TEMPLATE_NAMES.map((n) => templateView(n, unsubscribe));
    return c.json({ data, next_cursor: null, total: data.length }, 200);
  });

  app.openapi(getRoute, (c) => {
    const { name } = c.req.valid("param");
    if (!isTemplateName(name)) {
      throw new AppError("template-not-found", 404, "No such email template", {
        details: {
          detail: `There is no email template "${name}"; known templates: ${
            TEMPLATE_NAMES.join(", ")
          }`,
          known_templates: [...TEMPLATE_NAMES],
        },
      });
    }
    return c.json(templateView(name, unsubscribe), 200);
  });

  return app;
}
