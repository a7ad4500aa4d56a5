/**
 * `rescore_leads`: rescores every open lead with the model of one champion
 * switch, in chunks of `ML_RESCORE_CHUNK` (shared/scoring/scores.ts). A
 * retry after a timeout or a crash resumes after the last committed chunk;
 * a later switch makes it stop early (its own task rescores).
 *
 * @module
 */
import type { z } from "zod";
import type { Logger } from "../../shared/log.ts";
import { createModelNotifier } from "../../shared/scoring/notify.ts";
import { rescoreOpenLeads, type RescoreResult } from "../../shared/scoring/scores.ts";
import type { RescoreLeadsPayload } from "../../shared/tasks/catalog.ts";
import { createFeedPublisher } from "../../shared/ws/publisher.ts";
import type { TaskContext } from "../runner.ts";

/** Builds the handler; the task result is the rescoring summary. */
export function rescoreLeadsHandler(s: { chunkSize: number }) {
  return async function rescoreLeadsTask(
    payload: z.output<typeof RescoreLeadsPayload>,
    ctx: TaskContext,
  ): Promise<RescoreResult> {
    const result = await rescoreOpenLeads(ctx.deps.sql, payload.activation_id, ctx.deps.now, {
      chunkSize: s.chunkSize,
      signal: ctx.signal,
    });
    if (!result.superseded && result.rows > 0) {
      await notifyDone(ctx.log, ctx, payload.activation_id, result);
    }
    return result;
  };
}

async function notifyDone(
  log: Logger,
  ctx: TaskContext,
  activationId: number,
  result: RescoreResult,
) {
  const { rows } = await ctx.deps.sql.query<{ version: number }>(
    "SELECT version FROM ml_model_activations WHERE id = $1",
    [activationId],
  );
  const feed = createFeedPublisher({ redis: ctx.deps.redis, instanceId: "worker" });
  await createModelNotifier({ log, feed })({
    type: "model.rescored",
    version: rows[0]!.version,
    rows: result.total,
  });
}
