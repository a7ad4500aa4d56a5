/**
 * Where alert events come from, besides the DLQ (whose scripts queue their
 * own, includes/dead_letter_alert.lua): breaker openings and model
 * deployments. Each is queued as a `deliver_alert` task under the event's id
 * as idempotency key, so every process may produce the same event and the
 * queue keeps one.
 *
 * @module
 */
import type { BreakerRegistry } from "../breakers/registry.ts";
import type { BreakerTransition } from "../breakers/types.ts";
import type { Logger } from "../log.ts";
import { DEAD_LETTER_ALERT_TYPE, type EnqueueResult, type TaskQueue } from "../queue/queue.ts";
import type { DeploymentAlert, ModelEvent } from "../scoring/notify.ts";
import type { AlertEvent } from "./body.ts";

/** Queues one event's delivery (once per event id). */
export async function enqueueAlert(queue: TaskQueue, event: AlertEvent): Promise<EnqueueResult> {
  return await queue.enqueue(DEAD_LETTER_ALERT_TYPE, event, {
    idempotencyKey: `alert:${event.event_id}`,
  });
}

/**
 * The event of a breaker opening, or null for any other transition. Only
 * shared transitions count: every instance observes them with the same
 * epoch (one event), while a local one is decided without Redis, where the
 * queue lives too. A re-opening after a failed probe (half_open → open) is
 * the same outage and raises no new alert.
 */
export function breakerOpenEvent(t: BreakerTransition): AlertEvent | null {
  if (t.source !== "redis" || t.from === "half_open") return null;
  if (t.to !== "open" && t.to !== "forced_open") return null;
  const forced = t.to === "forced_open";
  return {
    event_id: `breaker:${t.name}:${t.to}:${t.epoch}`,
    alert: "BreakerOpened",
    severity: forced ? "ticket" : "page",
    summary: `Circuit breaker ${t.name} ${forced ? "was forced open" : "opened"}`,
    description: `From ${t.from}; reason: ${t.reason ?? "unknown"}`,
    labels: { breaker: t.name, to: t.to, reason: t.reason ?? "unknown" },
    at_ms: t.at,
  };
}

/** Queues an alert for every breaker opening the registry observes; returns the unsubscribe. */
export function alertOnBreakerOpen(
  breakers: Pick<BreakerRegistry, "events">,
  queue: TaskQueue,
  log: Logger,
): () => void {
  const listener: EventListener = (e) => {
    const event = breakerOpenEvent((e as CustomEvent<BreakerTransition>).detail);
    if (event === null) return;
    enqueueAlert(queue, event).catch((err) =>
      log.warn("breaker alert not queued", { breaker: event.labels.breaker, err })
    );
  };
  breakers.events.addEventListener("transition", listener);
  return () => breakers.events.removeEventListener("transition", listener);
}

/** The event of a model deployment notice (not called for `model.rescored`). */
export function modelEvent(event: ModelEvent, atMs: number): AlertEvent {
  const base = { at_ms: atMs, labels: { version: String(event.version) } };
  switch (event.type) {
    case "model.activated":
    case "model.rolled_back": {
      const verb = event.type === "model.activated" ? "activated" : "rolled back to";
      return {
        ...base,
        event_id: `model:${event.type}:${event.version}:${atMs}`,
        alert: event.type === "model.activated" ? "ModelActivated" : "ModelRolledBack",
        severity: "info",
        summary: `Lead-scoring model ${verb} version ${event.version} (${event.population} leads)`,
        description: `Previous champion: ${event.previous ?? "none"}; by ${event.actor}`,
        labels: {
          ...base.labels,
          population: event.population,
          previous: String(event.previous ?? "none"),
        },
      };
    }
    case "model.trained":
      return {
        ...base,
        event_id: `model:trained:${event.version}`,
        alert: "ModelTrained",
        severity: event.status === "rejected" ? "ticket" : "info",
        summary:
          `Lead-scoring training run ${event.version} (${event.population} leads): ${event.status}`,
        description: `${event.reason}; ROC AUC ${event.roc_auc ?? "n/a"}`.slice(0, 4000),
        labels: { ...base.labels, population: event.population, status: event.status },
      };
    case "model.rescored":
      return {
        ...base,
        event_id: `model:rescored:${event.version}:${atMs}`,
        alert: "ModelRescored",
        severity: "info",
        summary: `Lead-scoring version ${event.version} rescored ${event.rows} leads`,
      };
  }
}

/** The `sendDeploymentAlert` of shared/scoring/notify.ts: queues the event's delivery. */
export function deploymentAlertSender(
  queue: TaskQueue,
  now: () => number = Date.now,
): DeploymentAlert {
  return async (event) => {
    await enqueueAlert(queue, modelEvent(event, now()));
  };
}
