/**
 * The lead-scoring model registry (docs/lead-scoring.md):
 *
 * - `GET /v1/models`, `GET /v1/models/:version`: runs with their metrics,
 *   status and reason (admin, operator, viewer);
 * - `POST /v1/models/retrain`: queues a `retrain_lead_model` task (admin;
 *   Idempotency-Key required: a retry returns the first task);
 * - `POST /v1/models/:version/activate`, `POST /v1/models/rollback`: switch
 *   the champion in one transaction, queue the rescoring and notify (admin).
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Deps } from "../../shared/deps.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import { afterSwitch } from "../../shared/scoring/deploy.ts";
import type { ModelNotifier } from "../../shared/scoring/notify.ts";
import {
  activateModel,
  type ChampionSwitch,
  getRun,
  listRuns,
  type ModelRun,
  rollbackChampion,
} from "../../shared/scoring/registry.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { enqueueTask, queuedBody, queuedResponse } from "./queued.ts";
import { problemResponses } from "./schemas.ts";
import { POPULATIONS } from "../../shared/scoring/features.ts";

const json = z.record(z.string(), z.unknown());
const population = z.enum(POPULATIONS).openapi({
  description:
    "The leads a model serves: `pre_reply` (no reply recorded yet) or `replied` (a response time recorded); docs/lead-scoring.md §Populations",
});
const ModelSchema = z.object({
  version: z.number().int(),
  population,
  status: z.enum(["candidate", "champion", "retired", "rejected"]),
  status_reason: z.string().openapi({
    description: "Why it has this status (gate result, refusal, who switched it)",
  }),
  task_id: z.string().nullable(),
  params: json,
  window_start: z.string().nullable(),
  window_end: z.string(),
  row_counts: json,
  metrics: json.nullable().openapi({
    description:
      "Holdout metrics: model, majority baseline, heuristic ROC AUC, importances, champion comparison",
  }),
  feature_names: z.array(z.string()),
  mlflow_run_id: z.string().nullable(),
  created_at: z.string(),
  activated_at: z.string().nullable(),
  retired_at: z.string().nullable(),
}).openapi("Model");

const SwitchSchema = z.object({
  version: z.number().int().openapi({ description: "The champion now" }),
  population,
  previous: z.number().int().nullable().openapi({ description: "The champion it replaced" }),
  action: z.enum(["activate", "rollback"]),
  activation_id: z.number().int().nullable().openapi({
    description: "Its rescoring is the `rescore_leads` task for this id; null when nothing changed",
  }),
}).openapi("ChampionSwitch");

const Version = z.object({
  version: z.coerce.number().int().positive().openapi({
    param: { name: "version", in: "path" },
    example: 3,
  }),
});
const RequiredKey = z.object({
  "idempotency-key": z.string().min(1).max(255).openapi({
    description: "Required: a retry with the same key returns the first task",
  }),
});

const tags = ["models"];
const security = [{ bearer: [] }];
const listRoute = createRoute({
  method: "get",
  path: "/v1/models",
  operationId: "listModels",
  tags,
  security,
  summary: "Training runs, newest first (admin, operator, viewer)",
  request: { query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50) }) },
  responses: {
    200: {
      description: "Runs",
      content: { "application/json": { schema: z.object({ data: z.array(ModelSchema) }) } },
    },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});
const getRoute = createRoute({
  method: "get",
  path: "/v1/models/{version}",
  operationId: "getModel",
  tags,
  security,
  summary: "One training run (admin, operator, viewer)",
  request: { params: Version },
  responses: {
    200: { description: "The run", content: { "application/json": { schema: ModelSchema } } },
    ...problemResponses(400, 401, 403, 404, 429, 503),
  },
});
const retrainRoute = createRoute({
  method: "post",
  path: "/v1/models/retrain",
  operationId: "retrainModel",
  tags,
  security,
  summary: "Queue a training run (admin)",
  request: { headers: RequiredKey },
  responses: {
    ...queuedResponse("Queued as a `retrain_lead_model` task"),
    ...problemResponses(400, 401, 403, 409, 422, 429, 503),
  },
});
const activateRoute = createRoute({
  method: "post",
  path: "/v1/models/{version}/activate",
  operationId: "activateModel",
  tags,
  security,
  summary: "Make a candidate or retired model the champion (admin)",
  request: { params: Version },
  responses: {
    200: { description: "The switch", content: { "application/json": { schema: SwitchSchema } } },
    ...problemResponses(400, 401, 403, 404, 409, 429, 503),
  },
});
const rollbackRoute = createRoute({
  method: "post",
  path: "/v1/models/rollback",
  operationId: "rollbackModel",
  tags,
  security,
  summary: "Return a population to the champion the current one replaced (admin)",
  request: {
    query: z.object({
      population: z.enum(POPULATIONS).optional().openapi({
        description: "Whose champion; default: the population of the latest switch",
      }),
    }),
  },
  responses: {
    200: { description: "The switch", content: { "application/json": { schema: SwitchSchema } } },
    ...problemResponses(400, 401, 403, 409, 429, 503),
  },
});

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

function view(run: ModelRun) {
  return {
    ...run,
    window_start: iso(run.window_start),
    window_end: run.window_end.toISOString(),
    created_at: run.created_at.toISOString(),
    activated_at: iso(run.activated_at),
    retired_at: iso(run.retired_at),
  };
}

/** Collaborators of {@linkcode modelRoutes}. */
export interface ModelRouteOptions {
  queue: TaskQueue;
  notify: ModelNotifier;
}

/** Routes of `/v1/models`. */
export function modelRoutes(
  deps: Pick<Deps, "sql">,
  options: ModelRouteOptions,
): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const deploy = {
    notify: options.notify,
    enqueueRescore: (id: number) => options.queue.enqueue("rescore_leads", { activation_id: id }),
  };
  const switched = async (done: ChampionSwitch, actor: string) => {
    await afterSwitch(deploy, done, actor);
    return done;
  };

  app.openapi(listRoute, async (c) => {
    const runs = await listRuns(deps.sql, c.req.valid("query").limit);
    return c.json({ data: runs.map(view) }, 200);
  });

  app.openapi(
    getRoute,
    async (c) => c.json(view(await getRun(deps.sql, c.req.valid("param").version)), 200),
  );

  app.openapi(retrainRoute, async (c) => {
    const sub = c.get("principal").sub;
    const key = c.req.valid("header")["idempotency-key"];
    const result = await enqueueTask(options.queue, {
      type: "retrain_lead_model",
      payload: { trigger: "api", actor: `api:${sub}` },
      principal: sub,
      options: { idempotencyKey: `retrain:${sub}:${key}` },
    });
    return c.json(queuedBody(c, result), 202);
  });

  app.openapi(activateRoute, async (c) => {
    const actor = `api:${c.get("principal").sub}`;
    const done = await activateModel(deps.sql, c.req.valid("param").version, actor);
    return c.json(await switched(done, actor), 200);
  });

  app.openapi(rollbackRoute, async (c) => {
    const actor = `api:${c.get("principal").sub}`;
    const done = await rollbackChampion(deps.sql, actor, c.req.valid("query").population);
    return c.json(await switched(done, actor), 200);
  });

  return app;
}
