/**
 * `retrain_lead_model`: one training run per population
 * (shared/scoring/pipeline.ts, docs/lead-scoring.md §Populations) — train,
 * gate, record, activate when it passed, notify, queue the rescoring. A
 * redelivered task finds its recorded runs (keyed by task id and
 * population) and does not train twice.
 *
 * @module
 */
import type { z } from "zod";
import type { Config } from "../../shared/config/mod.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import { createMlflowClient } from "../../shared/scoring/mlflow.ts";
import { createModelNotifier, type DeploymentAlert } from "../../shared/scoring/notify.ts";
import { runTrainings, type TrainingResult } from "../../shared/scoring/pipeline.ts";
import type { RetrainLeadModelPayload } from "../../shared/tasks/catalog.ts";
import { createFeedPublisher } from "../../shared/ws/publisher.ts";
import type { TaskContext } from "../runner.ts";

/** What the handler needs besides the task context. */
export interface RetrainServices {
  ml: Config["ml"];
  queue: TaskQueue;
  /** The alert webhook's call point (shared/alerts/producers.ts). @default none */
  sendDeploymentAlert?: DeploymentAlert;
}

/** Queues the rescoring of one activation (shared by the routes and this task). */
export function rescoreEnqueuer(queue: TaskQueue) {
  return (activationId: number) => queue.enqueue("rescore_leads", { activation_id: activationId });
}

/** Builds the handler; the task result is each population's run: version, status and reason. */
export function retrainLeadModelHandler(s: RetrainServices) {
  const mlflow = s.ml.mlflow ? createMlflowClient(s.ml.mlflow) : null;
  return async function retrainLeadModelTask(
    payload: z.output<typeof RetrainLeadModelPayload>,
    ctx: TaskContext,
  ): Promise<{ runs: TrainingResult[] }> {
    const feed = createFeedPublisher({ redis: ctx.deps.redis, instanceId: "worker" });
    const runs = await runTrainings({
      sql: ctx.deps.sql,
      log: ctx.log,
      now: ctx.deps.now,
      ml: s.ml,
      notify: createModelNotifier({
        log: ctx.log,
        feed,
        ...(s.sendDeploymentAlert ? { sendDeploymentAlert: s.sendDeploymentAlert } : {}),
      }),
      enqueueRescore: rescoreEnqueuer(s.queue),
      mlflow,
    }, {
      taskId: ctx.taskId,
      trigger: payload.trigger,
      actor: payload.actor ?? `task:${payload.trigger}`,
    });
    return { runs };
  };
}
