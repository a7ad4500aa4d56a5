/**
 * Lead sourcing: `POST /v1/scrape-jobs` queues a Places search and
 * `POST /v1/leads/import` queues a file import (CSV or a JSON array), both as
 * `scrape_leads` tasks (workers/tasks/scrape_leads.ts).
 *
 * An import is checked only as a whole here: it must be UTF-8 and a CSV must
 * start with a header row naming a `name` column (read with the worker's own
 * parser, on the first record only) and JSON must be an array. Rows are
 * validated by the worker, which reports each rejected row with its line.
 * Size is bounded twice: the gateway's MAX_BODY_BYTES (413) and the queue's
 * QUEUE_MAX_PAYLOAD_BYTES for the task carrying the file (413
 * `payload-too-large` naming `limit`).
 *
 * A search on a deployment without PLACES_API_KEY is 503
 * `places-not-configured` at once (it could only fail in the worker).
 *
 * Idempotency: queue keys are derived from the payload, so the same search or
 * the same file repeated within QUEUE_IDEMPOTENCY_WINDOW_MS returns the first
 * task.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { AppError } from "../../shared/errors.ts";
import { LEAD_COLUMNS, parseLeadCsv } from "../../shared/leads/sourcing/csv.ts";
import { LeadImportError } from "../../shared/leads/sourcing/errors.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { AppEnv } from "../app_env.ts";
import { readingBody } from "../request_body.ts";
import { validationHook } from "../validation.ts";
import { enqueueTask, queuedBody, queuedResponse } from "./queued.ts";
import { problemResponses, ProblemSchema } from "./schemas.ts";

const ScrapeJobBody = z.object({
  query: z.string().trim().min(1).max(200).openapi({ example: "bakeries" }),
  location: z.string().trim().min(1).max(200).optional().openapi({ example: "Portland, ME" }),
  provider: z.literal("places", {
    error: 'only "places" is searched here; upload files to POST /v1/leads/import',
  }).optional().openapi({ description: 'Lead provider; default "places"' }),
  max_pages: z.number().int().min(1).max(10).optional().openapi({
    description: "Result pages fetched (20 places each); default 3",
  }),
}).strict().openapi("ScrapeJobRequest");

const OptionalKey = z.object({
  "idempotency-key": z.string().min(1).max(255).optional().openapi({
    description: "Optional: replays this response to a retry (Stripe semantics)",
  }),
});

const ImportQuery = z.object({
  filename: z.string().min(1).max(255).optional().openapi({
    description: "Name of the uploaded file, kept with the import run",
    example: "leads-march.csv",
  }),
});

const problems = (status: number, description: string) => ({
  [status]: { description, content: { "application/problem+json": { schema: ProblemSchema } } },
});

const scrapeRoute = createRoute({
  method: "post",
  path: "/v1/scrape-jobs",
  operationId: "createScrapeJob",
  tags: ["leads"],
  summary: "Queue a lead search with the Places provider",
  security: [{ bearer: [] }],
  request: {
    headers: OptionalKey,
    body: { required: true, content: { "application/json": { schema: ScrapeJobBody } } },
  },
  responses: {
    ...queuedResponse("Queued as a `scrape_leads` task"),
    ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
  },
});

const importRoute = createRoute({
  method: "post",
  path: "/v1/leads/import",
  operationId: "importLeads",
  tags: ["leads"],
  summary: "Queue an import of leads from a CSV file or a JSON array",
  description: `CSV: a header row naming the columns (case-insensitive; \`name\` required): ${
    LEAD_COLUMNS.join(", ")
  }. JSON: an array of objects with the same keys. Rows are validated by the worker; the task's result lists each rejected row with its line and reason.`,
  security: [{ bearer: [] }],
  request: {
    headers: OptionalKey,
    query: ImportQuery,
    body: {
      required: true,
      content: {
        "text/csv": {
          schema: z.string().openapi({
            example: "name,city,email\nHarbor Bakery,Portland,hi@x.example\n",
          }),
        },
        // A plain JSON Schema, not zod: the upload is read as text and handed on
        // as-is, so no JSON validator may consume (or reject) it first.
        "application/json": {
          schema: { type: "array", items: { type: "object", additionalProperties: true } },
        },
      },
    },
  },
  responses: {
    ...queuedResponse("Queued as a `scrape_leads` task with provider `file`"),
    ...problemResponses(401, 403, 409, 415, 422, 429, 503),
    ...problems(400, "`invalid-csv` (no header row with a `name` column), `invalid-json`"),
    ...problems(413, "`payload-too-large`: the body or the queued task exceeds its limit"),
  },
});

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/**
 * The text up to the end of the first non-blank CSV record. A newline inside
 * a quoted field does not end a record (an odd number of quotes so far means
 * "inside"; an escaped quote `""` flips twice).
 */
export function firstCsvRecord(text: string): string {
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 34) quoted = !quoted;
    else if (ch === 10 && !quoted) {
      if (text.slice(start, i).trim() !== "") return text.slice(0, i);
      start = i + 1;
    }
  }
  return text;
}

async function checkContent(content: string, format: "csv" | "json"): Promise<void> {
  if (format === "csv") {
    // Throws invalid-csv unless the first record is a header naming `name`.
    await parseLeadCsv(firstCsvRecord(content), { source: "file", maxRows: 0 });
    return;
  }
  let items: unknown;
  try {
    items = JSON.parse(content);
  } catch (err) {
    throw new LeadImportError("invalid-json", `JSON cannot be parsed: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (!Array.isArray(items)) {
    throw new LeadImportError("invalid-json", "JSON import must be an array of lead objects");
  }
}

function importFormat(contentType: string | undefined): "csv" | "json" {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "text/csv") return "csv";
  if (type === "application/json" || /^application\/[\w.+-]+\+json$/.test(type)) return "json";
  throw new AppError("unsupported-media-type", 415, "Unsupported content type", {
    details: { detail: "Send the file as text/csv or application/json" },
  });
}

/** Options of {@linkcode scrapeJobRoutes}. */
export interface ScrapeJobRouteOptions {
  /**
   * Whether PLACES_API_KEY is set (workers read the same configuration):
   * without it a search is 503 `places-not-configured`, not a task that fails later.
   */
  placesConfigured: boolean;
}

/** Routes of `/v1/scrape-jobs` and `POST /v1/leads/import`. */
export function scrapeJobRoutes(
  queue: TaskQueue,
  options: ScrapeJobRouteOptions,
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.openapi(scrapeRoute, async (c) => {
    if (!options.placesConfigured) {
      throw new AppError("places-not-configured", 503, "Lead search is not configured", {
        details: {
          detail:
            "PLACES_API_KEY is not set on this deployment; import files with POST /v1/leads/import instead",
        },
      });
    }
    const { provider: _provider, ...body } = c.req.valid("json");
    const result = await enqueueTask(queue, {
      type: "scrape_leads",
      principal: c.get("principal").sub,
      payload: { provider: "places", ...body },
    });
    return c.json(queuedBody(c, result), 202);
  });

  app.openapi(importRoute, async (c) => {
    const format = importFormat(c.req.header("content-type"));
    let content: string;
    try {
      content = UTF8.decode(await readingBody(() => c.req.arrayBuffer()));
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      throw new LeadImportError(`invalid-${format}`, `The ${format} file is not valid UTF-8`, {
        cause: err,
      });
    }
    await checkContent(content, format);
    const { filename } = c.req.valid("query");
    const result = await enqueueTask(queue, {
      type: "scrape_leads",
      principal: c.get("principal").sub,
      payload: { provider: "file", format, content, ...(filename ? { filename } : {}) },
    });
    return c.json(queuedBody(c, result), 202);
  });

  return app;
}
