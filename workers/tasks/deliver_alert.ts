/**
 * `deliver_alert`: one alert event to the alert webhook (shared/alerts/).
 *
 * Once per event: the task's idempotency key is the event id, so an event
 * is queued once however many processes produce it; the Redis mark
 * `alerts:delivered:<event id>` is set after the receiver's 2xx, so a later
 * attempt (a retry, a lease-expired redelivery, a DLQ replay) does not call
 * it again. A worker killed between the receiver's 2xx and the mark leaves
 * the one case of a second call, and that call carries the same
 * `Idempotency-Key` (the event id): the receiver recognises it.
 *
 * Every attempt is counted in `alert_deliveries_total{outcome}`.
 *
 * @module
 */
import type { z } from "zod";
import type { Config } from "../../shared/config/mod.ts";
import { alertKeys } from "../../shared/redis/keys.ts";
import { PermanentTaskError } from "../../shared/queue/errors.ts";
import type { DeliverAlertPayload } from "../../shared/tasks/catalog.ts";
import { failureKind, postAlert, type PostOptions } from "../../shared/alerts/webhook.ts";
import type { TaskContext } from "../runner.ts";

/** How long the delivered mark is kept: longer than any retry or replay of one event. */
const DELIVERED_TTL_MS = 30 * 86_400_000;

/** What the handler is built from. */
export interface DeliverAlertServices {
  /** Read at each attempt, so a rotated URL or token is used at once. */
  config: () => Pick<Config, "alerts" | "env" | "publicBaseUrl">;
  /** Key namespace of the queue. @default "pc" */
  namespace?: string;
  /** Test seam for the DNS lookup only; the call itself is real. */
  resolve?: PostOptions["resolve"];
}

/** Builds the handler. */
export function deliverAlertHandler(s: DeliverAlertServices) {
  const keys = alertKeys(s.namespace);
  return async function deliverAlert(
    payload: z.output<typeof DeliverAlertPayload>,
    ctx: TaskContext,
  ): Promise<{ status: "delivered" | "already_delivered"; http_status?: number }> {
    const count = (outcome: string) => ctx.deps.metrics.alertDeliveries.inc({ outcome });
    const mark = keys.delivered(payload.event_id);
    if ((await ctx.deps.redis.get(mark)) !== null) {
      count("already_delivered");
      return { status: "already_delivered" };
    }
    const config = s.config();
    if (config.alerts.webhookUrl === null) {
      count("refused");
      throw new PermanentTaskError("The alert webhook is not configured (ALERT_WEBHOOK_URL)");
    }
    let status: number;
    try {
      status = await postAlert(payload, {
        url: config.alerts.webhookUrl,
        format: config.alerts.format,
        authorization: config.alerts.authorization,
        timeoutMs: config.alerts.timeoutMs,
        allowPrivate: config.env !== "production",
        externalUrl: config.publicBaseUrl,
      }, { signal: ctx.signal, ...(s.resolve ? { resolve: s.resolve } : {}) });
    } catch (err) {
      const kind = failureKind(err);
      count(kind === "retry" ? "failed" : kind);
      throw err;
    }
    await ctx.deps.redis.set(mark, ctx.taskId, { px: DELIVERED_TTL_MS });
    count("delivered");
    return { status: "delivered", http_status: status };
  };
}
